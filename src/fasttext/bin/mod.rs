//! Facebook fastText's `.bin` model files (what `fasttext skipgram/cbow` writes and
//! `fasttext print-word-vectors` reads), little-endian:
//!
//! ```text
//! magic i32 = 793712314, version i32 (<= 12)          absent in the old format (before v11)
//! args:  dim ws epoch min_count neg word_ngrams loss model bucket minn maxn lr_update_rate: i32
//!        t: f64                                         (old format: dim and ws take the magic's
//!                                                        and version's places)
//! dict:  size nwords nlabels: i32, ntokens: i64, pruneidx_size: i64 (new format only)
//!        size x { word bytes, NUL, count: i64, type: i8 }, pruneidx_size x (i32, i32)
//! input:  quant: u8 (new format only), rows: i64, cols: i64, rows*cols f32   rows = nwords + bucket
//! output: qout: u8 (new format only),  rows: i64, cols: i64, rows*cols f32   rows = nwords
//! ```
//!
//! Sources: fastText `src/fasttext.cc` (`saveModel`, `loadModel`, `checkModel`), `src/args.cc`
//! (`Args::save`), `src/dictionary.cc` (`Dictionary::save`), `src/densematrix.cc`
//! (`DenseMatrix::save`); gensim `models/_fasttext_bin.py` for the old format.
//!
//! [`read`] validates everything before it trusts it: every count and size is bounded by the
//! bytes left in the file before anything is allocated (a forged header cannot ask for a huge
//! buffer), every value is range-checked, matrix shapes must agree with the header, weights
//! must be finite, and the file must end exactly after the output matrix. Supervised
//! (labelled), quantized and pruned models are refused: they hold no word-vector table this
//! crate can use (gensim refuses them too). [`write()`] writes the new format (version 12,
//! unpruned, unquantized), atomically.

mod read;
mod write;

pub use read::{read, read_from, MAX_WORD_BYTES};
pub use write::write;

use super::subwords::{Subwords, MAX_NGRAM_CHARS};
use crate::Result;

/// The first `int32` of a new-format file.
pub const MAGIC: i32 = 793_712_314;
/// The format version this module writes (and the newest it reads).
pub const VERSION: i32 = 12;

/// `args.loss` values (fastText's `loss_name`).
pub mod loss {
    /// Hierarchical softmax.
    pub const HS: i32 = 1;
    /// Negative sampling.
    pub const NS: i32 = 2;
    /// Full softmax.
    pub const SOFTMAX: i32 = 3;
    /// One-vs-all (supervised).
    pub const OVA: i32 = 4;
}

/// `args.model` values (fastText's `model_name`).
pub mod model {
    /// Continuous bag of words.
    pub const CBOW: i32 = 1;
    /// Skip-gram.
    pub const SG: i32 = 2;
    /// Supervised classifier.
    pub const SUP: i32 = 3;
}

/// The training arguments at the head of a `.bin` file, in `Args::save` order.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    /// Vector size.
    pub dim: i32,
    /// Context window.
    pub ws: i32,
    /// Epochs.
    pub epoch: i32,
    /// Minimum word count.
    pub min_count: i32,
    /// Negatives per positive.
    pub neg: i32,
    /// Word n-gram length (1 for unsupervised models).
    pub word_ngrams: i32,
    /// [`loss`] kind.
    pub loss: i32,
    /// [`model`] kind.
    pub model: i32,
    /// Number of n-gram buckets.
    pub bucket: i32,
    /// Shortest character n-gram.
    pub minn: i32,
    /// Longest character n-gram.
    pub maxn: i32,
    /// Learning-rate update period (fastText's `-lrUpdateRate`).
    pub lr_update_rate: i32,
    /// Subsampling threshold.
    pub t: f64,
}

impl Args {
    /// The header's twelve `i32` fields by fastText's names, in file order (before `t`).
    pub fn ints(&self) -> [(&'static str, i32); 12] {
        [
            ("dim", self.dim),
            ("ws", self.ws),
            ("epoch", self.epoch),
            ("min_count", self.min_count),
            ("neg", self.neg),
            ("word_ngrams", self.word_ngrams),
            ("loss", self.loss),
            ("model", self.model),
            ("bucket", self.bucket),
            ("minn", self.minn),
            ("maxn", self.maxn),
            ("lr_update_rate", self.lr_update_rate),
        ]
    }

    /// Why these arguments cannot describe an unsupervised model, if they cannot: `dim >= 1`,
    /// every count and size `>= 0`, n-grams of at most [`MAX_NGRAM_CHARS`] characters, a known
    /// loss (1 to 4), a cbow or skip-gram model (a supervised one has no word-vector table), a
    /// finite `t >= 0`.
    pub fn problem(&self) -> Option<String> {
        if self.dim < 1 {
            return Some(format!("dim must be >= 1, got {}", self.dim));
        }
        // Every count and size: all the integer fields but dim (above), loss and model (below).
        let mut non_negative = self
            .ints()
            .into_iter()
            .filter(|&(name, _)| !matches!(name, "dim" | "loss" | "model"));
        if let Some((name, v)) = non_negative.find(|&(_, v)| v < 0) {
            return Some(format!("{name} must be >= 0, got {v}"));
        }
        if self.maxn as usize > MAX_NGRAM_CHARS || self.minn as usize > MAX_NGRAM_CHARS {
            return Some(format!(
                "minn {} / maxn {}: n-grams longer than {MAX_NGRAM_CHARS} characters are not \
                 supported",
                self.minn, self.maxn
            ));
        }
        if !(loss::HS..=loss::OVA).contains(&self.loss) {
            return Some(format!("unknown loss {} (expected 1 to 4)", self.loss));
        }
        match self.model {
            model::CBOW | model::SG => {}
            model::SUP => {
                return Some(
                    "supervised (classifier) models are not supported: they hold label \
                     vectors, not a word-vector table"
                        .into(),
                )
            }
            m => return Some(format!("unknown model kind {m} (expected 1 to 3)")),
        }
        if !(self.t.is_finite() && self.t >= 0.0) {
            return Some(format!("t must be finite and >= 0, got {}", self.t));
        }
        None
    }

    /// The subword settings (`minn`, `maxn`, `bucket`); an error only when [`Args::problem`]
    /// has one.
    pub fn subwords(&self) -> Result<Subwords> {
        let get = |v: i32| usize::try_from(v).unwrap_or(0);
        Subwords::new(get(self.minn), get(self.maxn), get(self.bucket))
    }
}

/// A dense row-major `f32` matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub data: Vec<f32>,
}

/// A borrowed dense row-major `f32` matrix (`data.len() == rows * cols`).
#[derive(Clone, Copy, Debug)]
pub struct MatrixView<'a> {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub data: &'a [f32],
}

impl Matrix {
    /// This matrix, borrowed.
    pub fn view(&self) -> MatrixView<'_> {
        MatrixView {
            rows: self.rows,
            cols: self.cols,
            data: &self.data,
        }
    }
}

/// Everything a `.bin` file holds for an unsupervised model.
#[derive(Clone, Debug, PartialEq)]
pub struct FacebookModel {
    /// The format version; `None` for the old format (no magic number).
    pub version: Option<i32>,
    /// The training arguments.
    pub args: Args,
    /// Tokens in the training corpus.
    pub ntokens: i64,
    /// The vocabulary's words as stored (bytes; fastText writes UTF-8).
    pub words: Vec<Vec<u8>>,
    /// Each word's corpus count.
    pub counts: Vec<i64>,
    /// The input matrix, `(nwords + bucket, dim)`: word rows, then n-gram rows.
    pub input: Matrix,
    /// The output matrix, `(nwords, dim)`; `None` when read without it.
    pub output: Option<Matrix>,
}

/// The parts of a model [`write()`] needs, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct ModelRef<'a> {
    /// The training arguments (`dim` and `bucket` must match the matrices).
    pub args: &'a Args,
    /// Tokens in the training corpus.
    pub ntokens: i64,
    /// The vocabulary's words (no NUL byte in any).
    pub words: &'a [Vec<u8>],
    /// Each word's corpus count (`>= 0`).
    pub counts: &'a [i64],
    /// `(nwords + bucket, dim)`.
    pub input: MatrixView<'a>,
    /// `(nwords, dim)`.
    pub output: MatrixView<'a>,
}

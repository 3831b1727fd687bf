//! A trainable word2vec model: hyper-parameters, vocabulary and the three weight tables
//! (gensim's `wv.vectors` = `syn0`, `syn1` for hierarchical softmax, `syn1neg` for negative
//! sampling), plus the position of its random stream, so training resumes where it stopped.

use candle_core::DType;

use super::huffman::Huffman;
use super::vocab::Vocab;
use crate::alloc::{check_table_size, try_alloc, try_collect, try_with_capacity};
use crate::rng::Rng;
use crate::{Error, Result};

/// Stream of the initial vectors in [`Rng::new`]; row `r` draws from stream `INIT_STREAM + r`.
const INIT_STREAM: u64 = 0x5EED_0000_0000_0000;

/// Model hyper-parameters that shape the tables and the updates (gensim's names).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Dimension of the vectors.
    pub vector_size: usize,
    /// Skip-gram (`true`) or CBOW.
    pub sg: bool,
    /// Hierarchical softmax.
    pub hs: bool,
    /// Noise words per target (0: no negative sampling).
    pub negative: usize,
    /// CBOW input: mean (`true`) or sum of the window's vectors.
    pub cbow_mean: bool,
    /// Largest distance between a word and its context.
    pub window: usize,
    /// Draw each position's window in `1..=window` (gensim's `shrink_windows`).
    pub shrink_windows: bool,
    /// Exponent of the noise distribution.
    pub ns_exponent: f64,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            vector_size: 100,
            sg: true,
            hs: false,
            negative: 5,
            cbow_mean: true,
            window: 5,
            shrink_windows: true,
            ns_exponent: 0.75,
            seed: 1,
        }
    }
}

impl Params {
    /// Positive sizes, `window <= 10 000`, and at least one of `hs` and `negative` (gensim:
    /// "there will be no training" otherwise).
    pub fn validate(&self) -> Result<()> {
        if self.vector_size == 0 {
            return Err(Error::invalid("vector_size must be >= 1, got 0"));
        }
        if self.window == 0 || self.window > 10_000 {
            return Err(Error::invalid(format!(
                "window must be in [1, 10000], got {}",
                self.window
            )));
        }
        if self.negative > 1_000_000 {
            return Err(Error::invalid(format!(
                "negative must be <= 1000000, got {}",
                self.negative
            )));
        }
        if !self.hs && self.negative == 0 {
            return Err(Error::invalid(
                "set hs=1 or negative > 0: with hs=0 and negative=0 there is nothing to train",
            ));
        }
        if !self.ns_exponent.is_finite() {
            return Err(Error::invalid("ns_exponent must be finite"));
        }
        Ok(())
    }
}

/// The model: parameters, vocabulary, tables.
#[derive(Debug, Clone)]
pub struct Model {
    /// Hyper-parameters.
    pub params: Params,
    /// The vocabulary (row `i` of every table is word `i`).
    pub vocab: Vocab,
    /// Huffman codes (empty without `hs`).
    pub huffman: Huffman,
    /// Input vectors, `(V, vector_size)`.
    pub syn0: Vec<f32>,
    /// Inner nodes of the Huffman tree, `(V, vector_size)` (empty without `hs`).
    pub syn1: Vec<f32>,
    /// Output vectors of negative sampling, `(V, vector_size)` (empty without it).
    pub syn1neg: Vec<f32>,
    /// Lock factor per word (length 1: one for all), gensim's `vectors_lockf`.
    pub lockf: Vec<f32>,
    /// Training jobs run so far: job `k` of the model's life draws from stream `k`.
    pub jobs_done: u64,
}

/// Initial input vectors of rows `start..rows`: uniform in `[-1/D, 1/D)` (gensim 4's
/// `prep_vectors`), row `r` from its own stream of `seed`, so growing a vocabulary keeps the
/// rows it had. A table too large for memory is [`Error::Memory`].
pub fn init_rows(start: usize, rows: usize, dim: usize, seed: u64) -> Result<Vec<f32>> {
    let n = check_table_size(rows.saturating_sub(start), dim, DType::F32)?;
    let mut out: Vec<f32> = try_with_capacity(n)?;
    for r in start..rows {
        let mut rng = Rng::new(seed, INIT_STREAM.wrapping_add(r as u64));
        out.extend((0..dim).map(|_| ((rng.uniform() * 2.0 - 1.0) / dim as f64) as f32));
    }
    Ok(out)
}

/// Initial input vectors of a `(rows, dim)` table (see [`init_rows`]).
pub fn init_vectors(rows: usize, dim: usize, seed: u64) -> Result<Vec<f32>> {
    init_rows(0, rows, dim, seed)
}

impl Model {
    /// A fresh model on `vocab`: random input vectors, zero output tables.
    pub fn new(params: Params, vocab: Vocab) -> Result<Self> {
        params.validate()?;
        let (v, d) = (vocab.len(), params.vector_size);
        let total = check_table_size(v, d, DType::F32)?;
        let syn0 = init_vectors(v, d, params.seed)?;
        let syn1 = if params.hs {
            try_alloc(total)?
        } else {
            Vec::new()
        };
        let syn1neg = if params.negative > 0 {
            try_alloc(total)?
        } else {
            Vec::new()
        };
        Self::from_parts(params, vocab, [syn0, syn1, syn1neg], vec![1.0], 0)
    }

    /// A model from its parts (a fresh one, or one read from a file): `tables` are `syn0`,
    /// `syn1`, `syn1neg`; the Huffman tree is built from the vocabulary's counts when `hs`.
    pub fn from_parts(
        params: Params,
        vocab: Vocab,
        [syn0, syn1, syn1neg]: [Vec<f32>; 3],
        lockf: Vec<f32>,
        jobs_done: u64,
    ) -> Result<Self> {
        let huffman = match params.hs {
            true => Huffman::build(&vocab.counts)?,
            false => Huffman::default(),
        };
        Ok(Model {
            params,
            vocab,
            huffman,
            syn0,
            syn1,
            syn1neg,
            lockf,
            jobs_done,
        })
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.vocab.len()
    }

    /// True without words.
    pub fn is_empty(&self) -> bool {
        self.vocab.is_empty()
    }

    /// gensim's `update_weights` after a vocabulary update: known rows kept, new input rows
    /// random, new output rows zero; the Huffman tree rebuilt from the new counts.
    pub fn grow(&mut self, vocab: Vocab) -> Result<()> {
        let (old, new, d) = (self.vocab.len(), vocab.len(), self.params.vector_size);
        if new < old || vocab.words[..old] != self.vocab.words[..] {
            return Err(Error::invalid(
                "a vocabulary update must keep the known words in place",
            ));
        }
        let total = check_table_size(new, d, DType::F32)?;
        let extra = init_rows(old, new, d, self.params.seed)?;
        let grow_zero = |t: &mut Vec<f32>| -> Result<()> {
            if !t.is_empty() {
                t.try_reserve_exact(total - t.len())
                    .map_err(|_| Error::Memory(format!("cannot grow a table to {total} floats")))?;
                t.resize(total, 0.0);
            }
            Ok(())
        };
        let huffman = if self.params.hs {
            Huffman::build(&vocab.counts)?
        } else {
            Huffman::default()
        };
        self.syn0
            .try_reserve_exact(extra.len())
            .map_err(|_| Error::Memory(format!("cannot grow a table to {total} floats")))?;
        grow_zero(&mut self.syn1)?;
        grow_zero(&mut self.syn1neg)?;
        self.syn0.extend_from_slice(&extra);
        self.huffman = huffman;
        self.vocab = vocab;
        if self.lockf.len() != 1 {
            self.lockf.resize(new, 1.0);
        }
        Ok(())
    }

    /// Replace the input vectors (`(V, vector_size)` values) and lock factors (length 1 or V).
    pub fn set_inputs(&mut self, syn0: &[f32], lockf: &[f32]) -> Result<()> {
        let n = self.len() * self.params.vector_size;
        if syn0.len() != n {
            return Err(Error::shape(format!(
                "vectors must have {} x {} values, got {}",
                self.len(),
                self.params.vector_size,
                syn0.len()
            )));
        }
        if !(lockf.len() == 1 || lockf.len() == self.len()) {
            return Err(Error::shape(format!(
                "vectors_lockf must have 1 or {} values, got {}",
                self.len(),
                lockf.len()
            )));
        }
        self.syn0.copy_from_slice(syn0);
        self.lockf = try_collect(lockf.iter().copied())?;
        Ok(())
    }
}

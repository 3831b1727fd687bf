//! FastText training on the word2vec trainer ([`crate::word2vec`]): the same jobs, windows,
//! subsampling, learning-rate schedule, negative sampling and hierarchical softmax, with a
//! word's input vector a *bag of rows* ([`BagRows`]) instead of one row.
//!
//! fastText's rule (fastText `Model::computeHidden` / `Model::update`, gensim's
//! `fasttext_inner.pyx`): with `B(w)` the bag of word `w` (its own row, then the rows
//! `nwords + hash(g) % bucket` of its n-grams `g`, [`super::subwords`]),
//!
//! - skip-gram: the input is the *centre* word's bag mean `h = mean_{r in B(w)} T[r]`,
//!   recomputed for every (centre, context) pair, and each context word a target; the input
//!   gradient `work` is added, unscaled, to every row of `B(w)` ([`sg_sentence_on_tables`]
//!   runs this loop for the tests);
//! - CBOW: `neu1` is the sum of every row of every context word's bag, divided by the total
//!   number of rows when `cbow_mean` (gensim counts rows, not words); `work` (divided by that
//!   count for a sum) is added to every row of every context bag.
//!
//! The output side (`syn1neg`, `syn1`) is word2vec's, row for row.
//!
//! Where the two references differ, this follows fastText: gensim's skip-gram
//! (`fasttext_fast_sentence_sg_neg` / `_sg_hs`) sums the word's row and its n-gram rows but
//! divides by the number of n-grams alone (`norm_factor = ONEF / subwords_len`), fastText's
//! `Model::computeHidden` (and gensim's own `adjust_vectors` for the final vectors) by the whole
//! bag; and the sigmoid is word2vec's table (1000 points on `[-6, 6)`, pairs outside skipped),
//! where gensim's `fasttext_inner.pyx` and fastText use 512 points on `[-8, 8]`. Measured on
//! head500 (3 seeds, BENCHMARKS.md, sixth session): gensim's normalisation would add about
//! 0.01 to both scores, the table nothing.

use std::marker::PhantomData;

use candle_core::DType;

use super::subwords::{Subwords, WordBags};
use crate::alloc::check_table_size;
use crate::rng::Rng;
use crate::word2vec::huffman::Huffman;
use crate::word2vec::job::{Block, Prepared, Scratch, Shared};
use crate::word2vec::kernels::{axpy, Ctx, InputVectors, OutputRows, RowTable, SigmoidTables};
use crate::word2vec::model::{init_rows, Model, Params};
use crate::word2vec::{train_epoch_with, Corpus, EpochPlan, EpochStats, TrainMode, Vocab};
use crate::{Error, Result};

/// fastText's input vectors: bag `w` of a `(rows, dim)` table, shared by the workers
/// (Hogwild).
pub struct BagRows<'a> {
    table: OutputRows,
    bags: &'a WordBags,
    _table: PhantomData<&'a mut [f32]>,
}

// SAFETY: the workers read and write rows concurrently on purpose (Hogwild, as fastText and
// gensim); the table is borrowed for `'a`, so it outlives them.
unsafe impl Send for BagRows<'_> {}
unsafe impl Sync for BagRows<'_> {}

impl<'a> BagRows<'a> {
    /// The bags `bags` over `table` (`(rows, dim)` row-major): every row id is checked to be
    /// `< rows`, so the trainer's unchecked reads stay in the table.
    pub fn new(table: &'a mut [f32], dim: usize, bags: &'a WordBags) -> Result<Self> {
        if dim == 0 || table.len() % dim != 0 {
            return Err(Error::shape(format!(
                "a table of {} values is not (rows, {dim})",
                table.len()
            )));
        }
        let rows = table.len() / dim;
        if let Some(&bad) = bags.ids.iter().find(|&&r| r as usize >= rows) {
            return Err(Error::IndexOutOfRange {
                what: "bag row",
                index: bad as i128,
                container: "the input table",
                size: rows,
            });
        }
        Ok(BagRows {
            table: OutputRows::of(table, dim),
            bags,
            _table: PhantomData,
        })
    }
}

unsafe impl InputVectors for BagRows<'_> {
    const CENTRE_INPUT: bool = true;

    fn table(&self) -> OutputRows {
        self.table
    }

    #[inline(always)]
    unsafe fn input<'b, T: RowTable>(&self, rows: &T, w: u32, buf: &'b mut [f32]) -> &'b [f32] {
        let bag = self.bags.bag(w as usize);
        buf.fill(0.0);
        for &r in bag {
            axpy(1.0, rows.read(r), buf);
        }
        if !bag.is_empty() {
            let inv = 1.0 / bag.len() as f32;
            buf.iter_mut().for_each(|x| *x *= inv);
        }
        buf
    }

    #[inline(always)]
    unsafe fn add_input_to<T: RowTable>(&self, rows: &T, w: u32, acc: &mut [f32]) -> f32 {
        let bag = self.bags.bag(w as usize);
        for &r in bag {
            axpy(1.0, rows.read(r), acc);
        }
        bag.len() as f32
    }

    #[inline(always)]
    unsafe fn update<T: RowTable>(&self, rows: &T, w: u32, grad: &[f32]) {
        for &r in self.bags.bag(w as usize) {
            axpy(1.0, grad, rows.grad(r));
        }
    }
}

/// What [`train`] runs: the word2vec model settings, the n-grams, the schedule.
#[derive(Debug, Clone)]
pub struct FastTextConfig {
    /// Architecture, loss(es), window, vector size, seed (word2vec's [`Params`]).
    pub params: Params,
    /// The n-gram lengths and buckets.
    pub subwords: Subwords,
    /// Passes over the corpus.
    pub epochs: u64,
    /// Initial learning rate.
    pub alpha: f64,
    /// Final learning rate (decayed linearly over the examples of every epoch).
    pub min_alpha: f64,
    /// Training threads (1: bit-identical for a seed).
    pub workers: usize,
    /// Largest job, in raw words.
    pub batch_words: usize,
    /// How the threads share the tables.
    pub mode: TrainMode,
}

/// The trained tables and what training did.
pub struct Trained {
    /// fastText's input table, `(nwords + bucket, dim)`: word rows then n-gram rows.
    pub input: Vec<f32>,
    /// Hierarchical-softmax output rows, `(nwords, dim)` (empty without `hs`).
    pub syn1: Vec<f32>,
    /// Negative-sampling output rows, `(nwords, dim)` (empty without `negative`).
    pub syn1neg: Vec<f32>,
    /// The epochs' statistics, summed.
    pub stats: EpochStats,
}

/// The bags of every vocabulary word: its own row and its n-gram rows.
pub fn vocab_bags(vocab: &Vocab, subwords: &Subwords) -> Result<WordBags> {
    let words = vocab.words.iter().enumerate();
    subwords.bags(words.map(|(i, w)| (Some(i), w.as_bytes())), vocab.len())
}

/// Train FastText on `corpus` from scratch over `vocab`: every row of the input table uniform
/// in `[-1/dim, 1/dim)` (fastText and gensim; word2vec's seeded [`init_rows`]), the output
/// rows zero, then `epochs` epochs of [`train_epoch_with`] on [`BagRows`].
/// `progress(raw_words_done, raw_words_total)` as in [`crate::word2vec::train_epoch`].
pub fn train(
    corpus: &Corpus,
    vocab: Vocab,
    cfg: &FastTextConfig,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Trained> {
    let mut plan = EpochPlan {
        epoch: 0,
        epochs: cfg.epochs,
        start_alpha: cfg.alpha,
        end_alpha: cfg.min_alpha,
        total_examples: Some(corpus.num_examples()),
        total_words: None,
        batch_words: cfg.batch_words,
        compute_loss: false,
        workers: cfg.workers,
        mode: cfg.mode,
        minibatch: false,
    };
    plan.validate()?;
    let raw_all = corpus.words_times(cfg.epochs)?;
    let bags = vocab_bags(&vocab, &cfg.subwords)?;
    let mut model = Model::new(cfg.params.clone(), vocab)?;
    let (nwords, dim) = (model.len(), cfg.params.vector_size);
    let rows = nwords.checked_add(cfg.subwords.bucket).ok_or_else(|| {
        Error::Memory(format!("{nwords} words + {} buckets", cfg.subwords.bucket))
    })?;
    check_table_size(rows, dim, DType::F32)?;
    // Rows 0..nwords are the model's own (same streams); the bucket rows follow.
    let mut input = std::mem::take(&mut model.syn0);
    let ngrams = init_rows(nwords, rows, dim, cfg.params.seed)?;
    input
        .try_reserve_exact(ngrams.len())
        .map_err(|_| Error::Memory(format!("cannot hold a ({rows}, {dim}) input table")))?;
    input.extend_from_slice(&ngrams);
    drop(ngrams);
    let mut stats = EpochStats::default();
    for epoch in 0..cfg.epochs {
        plan.epoch = epoch;
        let before = stats.raw_words;
        let rows = BagRows::new(&mut input, dim, &bags)?;
        let s = train_epoch_with(&mut model, rows, corpus, &plan, &mut |d| {
            progress(before + d, raw_all)
        })?;
        stats.examples += s.examples;
        stats.effective_words += s.effective_words;
        stats.raw_words += s.raw_words;
        stats.loss += s.loss;
        stats.jobs += s.jobs;
    }
    progress(stats.raw_words, raw_all);
    Ok(Trained {
        input,
        syn1: model.syn1,
        syn1neg: model.syn1neg,
        stats,
    })
}

/// Skip-gram with negative sampling over one `sentence` (vocabulary ids) on `input` (the
/// `(rows, dim)` input table whose rows `bags` name) and `syn1neg` (`(bags.len(), dim)`), run by
/// the trainer's own loop ([`Shared::job`] on [`BagRows`]) without its random draws: every
/// window is the full `window` (none shrunk), nothing is subsampled, and every noise word is
/// word 0 (a one-entry noise table). A test hook: the suite checks it against a NumPy
/// transcription of fastText's / gensim's update (`python/tests/test_fasttext_step.py`).
pub fn sg_sentence_on_tables(
    input: &mut [f32],
    syn1neg: &mut [f32],
    (dim, bags): (usize, &WordBags),
    sentence: &[u32],
    (window, negative, alpha): (usize, usize, f32),
) -> Result<()> {
    let nwords = bags.len();
    if nwords == 0 || Some(syn1neg.len()) != nwords.checked_mul(dim) {
        return Err(Error::shape(format!(
            "syn1neg of {} values is not ({nwords} words, {dim})",
            syn1neg.len()
        )));
    }
    if let Some(&bad) = sentence.iter().find(|&&w| w as usize >= nwords) {
        return Err(Error::IndexOutOfRange {
            what: "word",
            index: bad as i128,
            container: "the bags",
            size: nwords,
        });
    }
    let params = Params {
        vector_size: dim,
        window,
        negative,
        shrink_windows: false,
        ..Params::default()
    };
    params.validate()?;
    let rows = BagRows::new(input, dim, bags)?;
    let (tables, huffman) = (SigmoidTables::default(), Huffman::default());
    let sh = Shared {
        input: &rows,
        syn0: rows.table(),
        syn1: OutputRows::of(&mut [], dim),
        syn1neg: OutputRows::of(syn1neg, dim),
        params: &params,
        huffman: &huffman,
        sample_int: None,
        ctx: Ctx {
            tables: &tables,
            cum_table: &[1],
            negative,
            compute_loss: false,
        },
        minibatch: false,
    };
    let p = Prepared {
        ids: sentence.to_vec(),
        offsets: vec![0, sentence.len()],
        jobs: Vec::new(),
        raw_total: sentence.len() as u64,
    };
    let block = Block {
        sent_lo: 0,
        sent_hi: 1,
        ids_lo: 0,
        ids_hi: sentence.len(),
    };
    let (mut scratch, mut rng) = (Scratch::new(dim), Rng::new(0, 0));
    // SAFETY: every row is checked in range (`BagRows::new`, the ids above); one thread.
    unsafe { sh.job(&mut scratch, &p, block, alpha, &mut rng) };
    Ok(())
}

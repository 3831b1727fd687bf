//! **Interim** FastText training (skip-gram or CBOW with negative sampling), until the word2vec
//! trainer (`crate::word2vec`, issue 14 items 3 and 5) takes a bag of rows as a word's input;
//! then this file goes and `FastText` trains there.
//!
//! fastText's rule (fastText `Model::computeHidden` and `Model::update`, unsupervised): the
//! input vector of a word is the mean `h` of its bag's rows (its own row, then its n-gram rows:
//! [`super::subwords`]); each (input, target) pair makes `1 + negative` logistic updates of the
//! output rows against `h`, and the accumulated input gradient is added, unscaled, to *every*
//! row of the bag. Skip-gram: the input is the centre word's bag and each context word in the
//! window a target. CBOW: the input is the mean (`cbow_mean`) or sum of every row of every
//! context word's bag and the centre word the target; with the sum, the gradient is divided by
//! the row count (gensim). The rest is word2vec as gensim runs it, from the same vocabulary
//! tables ([`Vocab`]): subsampling, window shrinking, the `count^0.75` noise table, the sigmoid
//! table on `[-6, 6]`, a learning rate decayed linearly per job of at most 10 000 words,
//! lock-free (Hogwild) threads; one worker and a seed give bit-identical tables.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use candle_core::DType;

use super::subwords::{Subwords, WordBags};
use crate::alloc::{check_table_size, checked_count, try_alloc, try_with_capacity};
use crate::rng::Rng;
use crate::word2vec::corpus::{Corpus, MAX_SENTENCE_LEN};
use crate::word2vec::sgns::init_vectors;
use crate::word2vec::{TrainConfig, Vocab};
use crate::{Error, Result};

const EXP_TABLE_SIZE: usize = 1000;
const MAX_EXP: f32 = 6.0;
const LCG_MUL: u64 = 25_214_903_917;
const LCG_MOD: u64 = (1 << 48) - 1;

/// FastText hyper-parameters: word2vec's, the architecture and the CBOW reduction.
#[derive(Debug, Clone)]
pub struct FastTextConfig {
    /// Sizes, window, negatives, epochs, learning rates, seed, workers.
    pub train: TrainConfig,
    /// Skip-gram (`true`) or CBOW.
    pub sg: bool,
    /// CBOW input: mean of the context rows (`true`) or their sum.
    pub cbow_mean: bool,
}

/// The trained tables and statistics.
pub struct Trained {
    /// fastText's input table, `(nwords + bucket, dim)`: word rows then n-gram rows.
    pub input: Vec<f32>,
    /// The output (negative-sampling) table, `(nwords, dim)`.
    pub output: Vec<f32>,
    /// Words trained on (after dropping rare words and subsampling), all epochs.
    pub effective_words: u64,
    /// Corpus words processed, all epochs.
    pub raw_words: u64,
}

/// The corpus as vocabulary ids (rare words dropped), in jobs of at most `MAX_SENTENCE_LEN`
/// raw words: `(first sentence, end sentence, raw words before, raw words)`.
struct Jobs {
    ids: Vec<u32>,
    offsets: Vec<usize>,
    jobs: Vec<(usize, usize, u64, u64)>,
    raw_total: u64,
}

fn jobs(corpus: &Corpus, vocab: &Vocab) -> Result<Jobs> {
    let mut ids = try_with_capacity(corpus.tokens.len())?;
    let mut offsets = try_with_capacity(corpus.num_sentences() + 1)?;
    offsets.push(0);
    let (mut jobs, mut lo, mut raw, mut total) = (Vec::new(), 0usize, 0u64, 0u64);
    for s in 0..corpus.num_sentences() {
        let toks = &corpus.tokens[corpus.offsets[s]..corpus.offsets[s + 1]];
        if raw + toks.len() as u64 > MAX_SENTENCE_LEN as u64 && s > lo {
            jobs.push((lo, s, total - raw, raw));
            (lo, raw) = (s, 0);
        }
        let known = toks.iter().map(|&t| vocab.remap[t as usize]);
        ids.extend(known.filter(|&v| v != u32::MAX));
        offsets.push(ids.len());
        raw += toks.len() as u64;
        total += toks.len() as u64;
    }
    if corpus.num_sentences() > lo {
        jobs.push((lo, corpus.num_sentences(), total - raw, raw));
    }
    Ok(Jobs {
        ids,
        offsets,
        jobs,
        raw_total: total,
    })
}

/// The tables the workers update in place.
#[derive(Clone, Copy)]
struct Tables {
    input: *mut f32,
    output: *mut f32,
    dim: usize,
}
// SAFETY: workers update rows concurrently without locks (Hogwild, as fastText, gensim and
// word2vec.c do); the buffers outlive the scoped threads.
unsafe impl Send for Tables {}
unsafe impl Sync for Tables {}

impl Tables {
    /// Row `r` of `table`.
    ///
    /// # Safety
    /// `r` is a row of `table`; other threads may write it concurrently (Hogwild).
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, table: *mut f32, r: u32) -> &mut [f32] {
        std::slice::from_raw_parts_mut(table.add(r as usize * self.dim), self.dim)
    }
}

struct Worker<'a> {
    t: Tables,
    vocab: &'a Vocab,
    bags: &'a WordBags,
    sigmoid: &'a [f32],
    cfg: &'a FastTextConfig,
    subsample: bool,
    hidden: Vec<f32>,
    grad: Vec<f32>,
    rows: Vec<u32>,
    idx: Vec<u32>,
    bounds: Vec<usize>,
}

impl Worker<'_> {
    /// `hidden` = the mean (or sum) of the input rows in `self.rows`.
    unsafe fn hidden(&mut self, mean: bool) {
        self.hidden.fill(0.0);
        for &r in &self.rows {
            for (h, &x) in self
                .hidden
                .iter_mut()
                .zip(self.t.row(self.t.input, r).iter())
            {
                *h += x;
            }
        }
        if mean && !self.rows.is_empty() {
            let inv = 1.0 / self.rows.len() as f32;
            self.hidden.iter_mut().for_each(|h| *h *= inv);
        }
    }

    /// The positive `target` and `negative` noise words against `hidden`: output rows
    /// updated, the input gradient accumulated in `grad` (zeroed first).
    unsafe fn logistic(&mut self, target: u32, alpha: f32, mut next_random: u64) -> u64 {
        self.grad.fill(0.0);
        for k in 0..=self.cfg.train.negative {
            let (word, label) = if k == 0 {
                (target, 1.0f32)
            } else {
                let w = self.vocab.draw(next_random >> 16);
                next_random = next_random.wrapping_mul(LCG_MUL).wrapping_add(11) & LCG_MOD;
                if w == target {
                    continue;
                }
                (w, 0.0)
            };
            let out = self.t.row(self.t.output, word);
            let f: f32 = out.iter().zip(&self.hidden).map(|(a, b)| a * b).sum();
            if f <= -MAX_EXP || f >= MAX_EXP {
                continue;
            }
            let i = ((f + MAX_EXP) * (EXP_TABLE_SIZE as f32 / MAX_EXP / 2.0)) as usize;
            let g = (label - self.sigmoid[i.min(EXP_TABLE_SIZE - 1)]) * alpha;
            for ((gr, o), &h) in self.grad.iter_mut().zip(out.iter_mut()).zip(&self.hidden) {
                *gr += g * *o;
                *o += g * h;
            }
        }
        next_random
    }

    /// Add `scale * grad` to every input row in `self.rows`.
    unsafe fn apply(&mut self, scale: f32) {
        for &r in &self.rows {
            for (x, &g) in self.t.row(self.t.input, r).iter_mut().zip(&self.grad) {
                *x += scale * g;
            }
        }
    }

    /// One job: subsample, shrink windows, train. Returns the effective words.
    unsafe fn job(&mut self, p: &Jobs, job: (usize, usize), alpha: f32, rng: &mut Rng) -> u64 {
        let mut next_random = rng.next_u64() & LCG_MOD;
        self.idx.clear();
        self.bounds.clear();
        self.bounds.push(0);
        for s in job.0..job.1 {
            for &w in &p.ids[p.offsets[s]..p.offsets[s + 1]] {
                if self.subsample {
                    next_random = next_random.wrapping_mul(LCG_MUL).wrapping_add(11) & LCG_MOD;
                    if u64::from(self.vocab.sample_int[w as usize])
                        < (next_random >> 16) & 0xFFFF_FFFF
                    {
                        continue;
                    }
                }
                self.idx.push(w);
            }
            if self.bounds.last() != Some(&self.idx.len()) {
                self.bounds.push(self.idx.len());
            }
        }
        let window = self.cfg.train.window;
        for b in 1..self.bounds.len() {
            let (lo, hi) = (self.bounds[b - 1], self.bounds[b]);
            for i in lo..hi {
                let span = window - rng.below(window as u64) as usize;
                let (j0, j1) = (i.saturating_sub(span).max(lo), (i + span + 1).min(hi));
                if self.cfg.sg {
                    self.rows.clear();
                    self.rows
                        .extend_from_slice(self.bags.bag(self.idx[i] as usize));
                    for j in (j0..j1).filter(|&j| j != i) {
                        self.hidden(true);
                        next_random = self.logistic(self.idx[j], alpha, next_random);
                        self.apply(1.0);
                    }
                } else {
                    self.rows.clear();
                    for j in (j0..j1).filter(|&j| j != i) {
                        self.rows
                            .extend_from_slice(self.bags.bag(self.idx[j] as usize));
                    }
                    if self.rows.is_empty() {
                        continue;
                    }
                    self.hidden(self.cfg.cbow_mean);
                    next_random = self.logistic(self.idx[i], alpha, next_random);
                    let scale = if self.cfg.cbow_mean {
                        1.0
                    } else {
                        1.0 / self.rows.len() as f32
                    };
                    self.apply(scale);
                }
            }
        }
        self.idx.len() as u64
    }
}

/// `sigma(x)` on `EXP_TABLE_SIZE` points of `[-MAX_EXP, MAX_EXP)` (gensim's `EXP_TABLE`).
fn sigmoid_table() -> Vec<f32> {
    (0..EXP_TABLE_SIZE)
        .map(|i| {
            let e = ((i as f32 / EXP_TABLE_SIZE as f32 * 2.0 - 1.0) * MAX_EXP).exp();
            e / (e + 1.0)
        })
        .collect()
}

/// Train FastText vectors for `vocab` on `corpus`. The input table starts uniform in
/// `[-1/dim, 1/dim)` (fastText's initialisation, seeded), the output table at zero.
/// `progress(done_words, total_words)` is called about ten times a second and once at the end;
/// returning `false` stops training (`InvalidArgument("training interrupted")`).
pub fn train(
    corpus: &Corpus,
    vocab: &Vocab,
    sub: &Subwords,
    cfg: &FastTextConfig,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Trained> {
    cfg.train.validate()?;
    if vocab.is_empty() {
        return Err(Error::invalid("empty vocabulary: nothing to train"));
    }
    let (dim, nwords) = (cfg.train.vector_size, vocab.len());
    let rows = nwords
        .checked_add(sub.bucket)
        .ok_or_else(|| Error::Memory(format!("{nwords} words + {} buckets", sub.bucket)))?;
    check_table_size(rows, dim, DType::F32)?;
    let bags = sub.bags(
        vocab
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (Some(i), w.as_bytes())),
        nwords,
    )?;
    let prepared = jobs(corpus, vocab)?;
    let njobs = prepared.jobs.len();
    let total_jobs = checked_count(njobs as u64, cfg.train.epochs as u64, "jobs x epochs")?;
    let total_jobs = usize::try_from(total_jobs)
        .map_err(|_| Error::invalid(format!("{total_jobs} jobs x epochs do not fit in usize")))?;
    let raw_all = checked_count(
        prepared.raw_total,
        cfg.train.epochs as u64,
        "words x epochs",
    )?;
    let mut input = init_vectors(rows, dim, cfg.train.seed)?;
    let mut output = try_alloc::<f32>(check_table_size(nwords, dim, DType::F32)?)?;
    let sigmoid = sigmoid_table();
    let tables = Tables {
        input: input.as_mut_ptr(),
        output: output.as_mut_ptr(),
        dim,
    };
    let (next_job, done_raw, effective) =
        (AtomicUsize::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let (running, stop) = (AtomicUsize::new(cfg.train.workers), AtomicBool::new(false));
    let subsample = vocab.sample_int.iter().any(|&s| s != u32::MAX);
    let raw_total = prepared.raw_total.max(1) as f64;
    let (alpha0, alpha1) = (f64::from(cfg.train.alpha), f64::from(cfg.train.min_alpha));
    let mut interrupted = false;
    // Each worker's hidden vector and gradient, allocated fallibly before any thread starts.
    let mut scratch = try_with_capacity(cfg.train.workers)?;
    for _ in 0..cfg.train.workers {
        scratch.push((try_alloc::<f32>(dim)?, try_alloc::<f32>(dim)?));
    }
    std::thread::scope(|scope| {
        for (hidden, grad) in scratch {
            let (prepared, bags, sigmoid) = (&prepared, &bags, &sigmoid);
            let (next_job, done_raw, effective, running, stop) =
                (&next_job, &done_raw, &effective, &running, &stop);
            scope.spawn(move || {
                let mut w = Worker {
                    t: tables,
                    vocab,
                    bags,
                    sigmoid,
                    cfg,
                    subsample,
                    hidden,
                    grad,
                    rows: Vec::new(),
                    idx: Vec::with_capacity(MAX_SENTENCE_LEN),
                    bounds: Vec::new(),
                };
                while !stop.load(Ordering::Relaxed) {
                    let k = next_job.fetch_add(1, Ordering::Relaxed);
                    if k >= total_jobs {
                        break;
                    }
                    let (epoch, j) = (k / njobs, k % njobs);
                    let (lo, hi, before, raw) = prepared.jobs[j];
                    let prog = (epoch as f64 + before as f64 / raw_total) / cfg.train.epochs as f64;
                    let alpha = (alpha0 - (alpha0 - alpha1) * prog).max(alpha1) as f32;
                    let mut rng = Rng::new(cfg.train.seed, 1 + k as u64);
                    // SAFETY: the tables outlive the scope; bag rows are < nwords + bucket and
                    // targets < nwords; concurrent row updates are the documented Hogwild races.
                    let eff = unsafe { w.job(prepared, (lo, hi), alpha, &mut rng) };
                    effective.fetch_add(eff, Ordering::Relaxed);
                    done_raw.fetch_add(raw, Ordering::Relaxed);
                }
                running.fetch_sub(1, Ordering::Release);
            });
        }
        while running.load(Ordering::Acquire) > 0 {
            std::thread::sleep(Duration::from_millis(100));
            if !interrupted && !progress(done_raw.load(Ordering::Relaxed), raw_all) {
                interrupted = true;
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
    if interrupted {
        return Err(Error::invalid("training interrupted"));
    }
    progress(done_raw.load(Ordering::Relaxed), raw_all);
    Ok(Trained {
        input,
        output,
        effective_words: effective.load(Ordering::Relaxed),
        raw_words: done_raw.load(Ordering::Relaxed),
    })
}

//! The fused skip-gram / negative-sampling kernel.
//!
//! Why Hogwild and not "gather -> SparseGrad -> sparse SGD step": gensim (and Mikolov's C
//! tool) apply every (center, context) pair's update before the next pair reads the rows, and
//! with a 10 000-word job a mini-batch step would freeze `syn1neg` rows of frequent words
//! (the, of, ...) for thousands of pairs and then apply hundreds of summed updates at once,
//! which changes the algorithm (and its quality at gensim's learning rate), while building and
//! coalescing the gradient rows costs more than the arithmetic itself. So each worker thread
//! updates the two tables in place per pair, lock-free, exactly like gensim's
//! `w2v_fast_sentence_sg_neg`: concurrent workers may race on a row (Hogwild), which is the
//! standard word2vec trade-off; with `workers = 1` a seed gives bit-identical vectors.
//!
//! The inner loop is compiled twice (AVX2+FMA target feature, and baseline) and picked at run
//! time.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use candle_core::DType;

use super::corpus::{Corpus, MAX_SENTENCE_LEN};
use super::vocab::Vocab;
use crate::alloc::{check_table_size, checked_count, try_alloc, try_collect};
use crate::rng::Rng;
use crate::{Error, Result};

const EXP_TABLE_SIZE: usize = 1000;
const MAX_EXP: f32 = 6.0;
const LCG_MUL: u64 = 25_214_903_917;
const LCG_MOD: u64 = (1 << 48) - 1;

/// Training hyper-parameters (gensim's names).
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Dimension of the word vectors.
    pub vector_size: usize,
    /// Maximum distance between a word and its context (shrunk at random).
    pub window: usize,
    /// Noise words drawn per (word, context) pair.
    pub negative: usize,
    /// Passes over the corpus.
    pub epochs: usize,
    /// Initial learning rate.
    pub alpha: f32,
    /// Final learning rate (decayed linearly).
    pub min_alpha: f32,
    /// Seed of every random draw.
    pub seed: u64,
    /// Training threads (1: bit-identical for a seed).
    pub workers: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            vector_size: 100,
            window: 5,
            negative: 5,
            epochs: 5,
            alpha: 0.025,
            min_alpha: 0.0001,
            seed: 1,
            workers: 2,
        }
    }
}

impl TrainConfig {
    /// Check every parameter: positive sizes, `workers <= 1024`, `alpha > 0` finite and
    /// `0 <= min_alpha <= alpha`.
    pub fn validate(&self) -> Result<()> {
        let pos = [
            ("vector_size", self.vector_size),
            ("window", self.window),
            ("negative", self.negative),
            ("epochs", self.epochs),
            ("workers", self.workers),
        ];
        for (name, v) in pos {
            if v == 0 {
                return Err(Error::invalid(format!("{name} must be >= 1, got 0")));
            }
        }
        if self.workers > 1024 {
            return Err(Error::invalid(format!(
                "workers must be <= 1024, got {}",
                self.workers
            )));
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return Err(Error::invalid(format!(
                "alpha must be > 0, got {}",
                self.alpha
            )));
        }
        if !(self.min_alpha >= 0.0 && self.min_alpha <= self.alpha) {
            return Err(Error::invalid(format!(
                "min_alpha must be in [0, alpha], got {}",
                self.min_alpha
            )));
        }
        Ok(())
    }
}

/// The result of [`train`]: the input vectors (`syn0`, `(V, D)` row-major) and statistics.
pub struct Trained {
    /// The input vectors, `(V, vector_size)` row-major.
    pub vectors: Vec<f32>,
    /// Words actually trained on (after dropping rare words and subsampling), all epochs.
    pub effective_words: u64,
    /// Corpus words processed, all epochs.
    pub raw_words: u64,
}

/// One job: sentences `sent_lo..sent_hi` of the filtered corpus, `raw_before` raw words precede it.
struct Job {
    sent_lo: usize,
    sent_hi: usize,
    raw_before: u64,
    raw_words: u64,
}

/// The corpus mapped to vocabulary ids, rare words dropped (as gensim: the window then spans
/// over them), grouped into jobs of at most `MAX_SENTENCE_LEN` raw words.
struct Prepared {
    ids: Vec<u32>,
    offsets: Vec<usize>,
    jobs: Vec<Job>,
    raw_total: u64,
}

fn prepare(corpus: &Corpus, vocab: &Vocab) -> Prepared {
    let mut ids = Vec::with_capacity(corpus.tokens.len());
    let mut offsets = vec![0usize];
    let mut jobs = Vec::new();
    let (mut job_lo, mut job_raw, mut raw_total) = (0usize, 0u64, 0u64);
    for s in 0..corpus.num_sentences() {
        let toks = &corpus.tokens[corpus.offsets[s]..corpus.offsets[s + 1]];
        let raw = toks.len() as u64;
        if job_raw + raw > MAX_SENTENCE_LEN as u64 && s > job_lo {
            jobs.push(Job {
                sent_lo: job_lo,
                sent_hi: s,
                raw_before: raw_total - job_raw,
                raw_words: job_raw,
            });
            job_lo = s;
            job_raw = 0;
        }
        ids.extend(
            toks.iter()
                .map(|&t| vocab.remap[t as usize])
                .filter(|&v| v != u32::MAX),
        );
        offsets.push(ids.len());
        job_raw += raw;
        raw_total += raw;
    }
    if corpus.num_sentences() > job_lo {
        jobs.push(Job {
            sent_lo: job_lo,
            sent_hi: corpus.num_sentences(),
            raw_before: raw_total - job_raw,
            raw_words: job_raw,
        });
    }
    Prepared {
        ids,
        offsets,
        jobs,
        raw_total,
    }
}

/// `sigma(x)` on `EXP_TABLE_SIZE` points of `[-MAX_EXP, MAX_EXP)` (gensim's `EXP_TABLE`).
fn exp_table() -> Vec<f32> {
    (0..EXP_TABLE_SIZE)
        .map(|i| {
            let e = ((i as f32 / EXP_TABLE_SIZE as f32 * 2.0 - 1.0) * MAX_EXP).exp();
            e / (e + 1.0)
        })
        .collect()
}

/// Shared tables for Hogwild updates.
#[derive(Clone, Copy)]
struct Tables {
    syn0: *mut f32,
    syn1neg: *mut f32,
    dim: usize,
}
// SAFETY: workers write rows concurrently without locks (Hogwild, as gensim / word2vec.c);
// the buffers outlive the scoped threads.
unsafe impl Send for Tables {}
unsafe impl Sync for Tables {}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let full = n / 16 * 16;
    for (ca, cb) in a[..full].chunks_exact(16).zip(b[..full].chunks_exact(16)) {
        for k in 0..16 {
            acc[k] += ca[k] * cb[k];
        }
    }
    let mut tail = 0f32;
    for i in full..n {
        tail += a[i] * b[i];
    }
    let mut s = 0f32;
    for v in acc {
        s += v;
    }
    s + tail
}

#[inline(always)]
fn axpy(g: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += g * *xi;
    }
}

struct Worker<'a> {
    t: Tables,
    vocab: &'a Vocab,
    exp: &'a [f32],
    negative: usize,
    window: usize,
    subsample: bool,
    work: Vec<f32>,
    idx: Vec<u32>,
    bounds: Vec<usize>,
}

impl Worker<'_> {
    /// gensim's `w2v_fast_sentence_sg_neg`: predict `word` from `context` (`syn0[context]`).
    #[inline(always)]
    unsafe fn sg_pair(&mut self, word: u32, context: u32, alpha: f32, mut next_random: u64) -> u64 {
        let d = self.t.dim;
        let l1 = std::slice::from_raw_parts_mut(self.t.syn0.add(context as usize * d), d);
        let work = &mut self.work[..d];
        work.fill(0.0);
        for k in 0..=self.negative {
            let (target, label) = if k == 0 {
                (word, 1.0f32)
            } else {
                let t = self.vocab.draw(next_random >> 16);
                next_random = (next_random.wrapping_mul(LCG_MUL).wrapping_add(11)) & LCG_MOD;
                if t == word {
                    continue;
                }
                (t, 0.0f32)
            };
            let l2 = std::slice::from_raw_parts_mut(self.t.syn1neg.add(target as usize * d), d);
            let f = dot(l1, l2);
            if f <= -MAX_EXP || f >= MAX_EXP {
                continue;
            }
            let i = ((f + MAX_EXP) * (EXP_TABLE_SIZE as f32 / MAX_EXP / 2.0)) as usize;
            let g = (label - self.exp[i.min(EXP_TABLE_SIZE - 1)]) * alpha;
            axpy(g, l2, work);
            axpy(g, l1, l2);
        }
        axpy(1.0, work, l1);
        next_random
    }

    /// One job: subsample, shrink windows, train every pair. Returns the effective words.
    #[inline(always)]
    unsafe fn job(&mut self, p: &Prepared, job: &Job, alpha: f32, rng: &mut Rng) -> u64 {
        let mut next_random = rng.next_u64() & LCG_MOD;
        self.idx.clear();
        self.bounds.clear();
        self.bounds.push(0);
        for s in job.sent_lo..job.sent_hi {
            for &w in &p.ids[p.offsets[s]..p.offsets[s + 1]] {
                if self.subsample {
                    next_random = (next_random.wrapping_mul(LCG_MUL).wrapping_add(11)) & LCG_MOD;
                    let r = (next_random >> 16) & 0xFFFF_FFFF;
                    if (self.vocab.sample_int[w as usize] as u64) < r {
                        continue;
                    }
                }
                self.idx.push(w);
            }
            if *self.bounds.last().unwrap_or(&0) != self.idx.len() {
                self.bounds.push(self.idx.len());
            }
        }
        let window = self.window;
        for b in 1..self.bounds.len() {
            let (lo, hi) = (self.bounds[b - 1], self.bounds[b]);
            for i in lo..hi {
                let reduced = rng.below(window as u64) as usize;
                let span = window - reduced;
                let j0 = i.saturating_sub(span).max(lo);
                let j1 = (i + span + 1).min(hi);
                let word = self.idx[i];
                for j in j0..j1 {
                    if j != i {
                        let ctx = self.idx[j];
                        next_random = self.sg_pair(word, ctx, alpha, next_random);
                    }
                }
            }
        }
        self.idx.len() as u64
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn job_avx2(w: &mut Worker<'_>, p: &Prepared, job: &Job, alpha: f32, rng: &mut Rng) -> u64 {
    w.job(p, job, alpha, rng)
}

unsafe fn job_base(w: &mut Worker<'_>, p: &Prepared, job: &Job, alpha: f32, rng: &mut Rng) -> u64 {
    w.job(p, job, alpha, rng)
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx2() -> bool {
    false
}

/// Run one job on the best inner loop this CPU has.
///
/// # Safety
/// The tables behind `w.t` must be live; concurrent calls race on rows (Hogwild).
unsafe fn run_job(
    avx2: bool,
    w: &mut Worker<'_>,
    p: &Prepared,
    job: &Job,
    alpha: f32,
    rng: &mut Rng,
) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        return job_avx2(w, p, job, alpha, rng);
    }
    let _ = avx2;
    job_base(w, p, job, alpha, rng)
}

/// Initial input vectors: uniform in `[-1/D, 1/D)` (gensim 4's `prep_vectors`), from `seed`.
/// A table too large for memory is [`Error::Memory`].
pub fn init_vectors(rows: usize, dim: usize, seed: u64) -> Result<Vec<f32>> {
    let n = check_table_size(rows, dim, DType::F32)?;
    let mut rng = Rng::new(seed, 0x5EED_0000);
    try_collect((0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) / dim as f64) as f32))
}

/// Train skip-gram vectors. `progress(done_words, total_words)` is called from the calling
/// thread about ten times a second and once at the end; returning `false` stops training
/// (the call then fails with `InvalidArgument("training interrupted")`).
pub fn train(
    corpus: &Corpus,
    vocab: &Vocab,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Trained> {
    cfg.validate()?;
    if vocab.is_empty() {
        return Err(Error::invalid("empty vocabulary: nothing to train"));
    }
    let dim = cfg.vector_size;
    let v = vocab.len();
    let total = check_table_size(v, dim, DType::F32)?;
    let prepared = prepare(corpus, vocab);
    // Every job runs once per epoch: counts past 64 bits would wrap (to no training at all).
    let njobs = prepared.jobs.len();
    let total_jobs = checked_count(njobs as u64, cfg.epochs as u64, "jobs x epochs")?;
    let total_jobs = usize::try_from(total_jobs)
        .map_err(|_| Error::invalid(format!("{total_jobs} jobs x epochs do not fit in usize")))?;
    let raw_all = checked_count(prepared.raw_total, cfg.epochs as u64, "words x epochs")?;
    let mut syn0 = init_vectors(v, dim, cfg.seed)?;
    let mut syn1neg = try_alloc::<f32>(total)?;
    let exp = exp_table();
    let tables = Tables {
        syn0: syn0.as_mut_ptr(),
        syn1neg: syn1neg.as_mut_ptr(),
        dim,
    };
    let next_job = AtomicUsize::new(0);
    let done_raw = AtomicU64::new(0);
    let effective = AtomicU64::new(0);
    let running = AtomicUsize::new(cfg.workers);
    let stop = AtomicBool::new(false);
    let avx2 = has_avx2();
    let subsample = vocab.sample_int.iter().any(|&s| s != u32::MAX);
    let raw_total = prepared.raw_total.max(1) as f64;
    let mut interrupted = false;

    std::thread::scope(|scope| {
        for _ in 0..cfg.workers {
            let (prepared, exp, next_job, done_raw, effective, running, stop) = (
                &prepared, &exp, &next_job, &done_raw, &effective, &running, &stop,
            );
            scope.spawn(move || {
                let mut w = Worker {
                    t: tables,
                    vocab,
                    exp,
                    negative: cfg.negative,
                    window: cfg.window,
                    subsample,
                    work: vec![0f32; dim],
                    idx: Vec::with_capacity(MAX_SENTENCE_LEN),
                    bounds: Vec::new(),
                };
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let k = next_job.fetch_add(1, Ordering::Relaxed);
                    if k >= total_jobs {
                        break;
                    }
                    let (epoch, j) = (k / njobs, k % njobs);
                    let job = &prepared.jobs[j];
                    let prog =
                        (epoch as f64 + job.raw_before as f64 / raw_total) / cfg.epochs as f64;
                    let alpha = (cfg.alpha as f64 - (cfg.alpha - cfg.min_alpha) as f64 * prog)
                        .max(cfg.min_alpha as f64) as f32;
                    let mut rng = Rng::new(cfg.seed, 1 + k as u64);
                    // SAFETY: the tables outlive the scope; concurrent row updates are the
                    // documented Hogwild races.
                    let eff = unsafe { run_job(avx2, &mut w, prepared, job, alpha, &mut rng) };
                    effective.fetch_add(eff, Ordering::Relaxed);
                    done_raw.fetch_add(job.raw_words, Ordering::Relaxed);
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
    drop(syn1neg);
    Ok(Trained {
        vectors: syn0,
        effective_words: effective.load(Ordering::Relaxed),
        raw_words: done_raw.load(Ordering::Relaxed),
    })
}

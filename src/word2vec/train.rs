//! Training epochs (gensim's `Word2Vec.train` / `_train_epoch`): the corpus is cut into jobs of
//! at most `batch_words` raw words, each job gets the learning rate
//!
//! `alpha = max(end, start - (start - end) * (epoch + progress) / epochs)`
//!
//! where `progress` is the fraction of the epoch's examples (or raw words, when only
//! `total_words` is known) in the earlier jobs, and `workers` threads take jobs in order and
//! update the tables in place without locks (Hogwild). The calling thread is one of the
//! workers and reports progress between its jobs, about ten times a second.
//!
//! Job `k` of the model's life draws its random numbers from stream `k` of the seed, so with
//! one worker a seed gives bit-identical tables, and training split over several calls (or
//! saved and loaded in between) continues the same streams.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::corpus::{Corpus, MAX_SENTENCE_LEN};
use super::deterministic;
use super::job::{has_avx2, run_job, Job, Prepared, Scratch, Shared};
use super::kernels::{Ctx, InputVectors, OutputRows, PlainRows, SigmoidTables};
use super::model::{Model, Params};
use super::vocab::Vocab;
use crate::alloc::{checked_count, try_with_capacity};
use crate::rng::Rng;
use crate::{Error, Result};

pub use super::epoch::{EpochPlan, EpochStats, TrainMode};

/// Map `corpus` to `vocab` and cut it into jobs (gensim's `_job_producer` packing: a sentence
/// joins the job while the job stays within `batch_words` raw words).
pub fn prepare(corpus: &Corpus, vocab: &Vocab, batch_words: usize) -> Result<Prepared> {
    let remap = vocab.remap(corpus)?;
    let mut ids: Vec<u32> = try_with_capacity(corpus.tokens.len())?;
    let mut offsets: Vec<usize> = try_with_capacity(corpus.offsets.len())?;
    offsets.push(0);
    let mut jobs = Vec::new();
    let (mut lo, mut raw, mut raw_total, mut ex_before) = (0usize, 0u64, 0u64, 0u64);
    let ex = |s: usize| {
        if s == 0 {
            0
        } else {
            corpus.example_ends[s - 1]
        }
    };
    for s in 0..corpus.num_sentences() {
        let toks = &corpus.tokens[corpus.offsets[s]..corpus.offsets[s + 1]];
        let len = toks.len() as u64;
        if raw + len > batch_words as u64 && s > lo {
            jobs.push(Job {
                sent_lo: lo,
                sent_hi: s,
                examples_before: ex_before,
                raw_before: raw_total - raw,
                raw_words: raw,
                examples: ex(s) - ex_before,
            });
            ex_before = ex(s);
            lo = s;
            raw = 0;
        }
        ids.extend(
            toks.iter()
                .map(|&t| remap[t as usize])
                .filter(|&v| v != u32::MAX),
        );
        offsets.push(ids.len());
        raw += len;
        raw_total += len;
    }
    let n = corpus.num_sentences();
    if n > lo {
        jobs.push(Job {
            sent_lo: lo,
            sent_hi: n,
            examples_before: ex_before,
            raw_before: raw_total - raw,
            raw_words: raw,
            examples: ex(n) - ex_before,
        });
    }
    Ok(Prepared {
        ids,
        offsets,
        jobs,
        raw_total,
    })
}

/// Train `model` for one epoch on `corpus`. `progress(raw_words_done)` is called from the
/// calling thread about ten times a second; returning `false` stops the epoch (the call then
/// fails with `InvalidArgument("training interrupted")`, the tables partly trained).
pub fn train_epoch(
    model: &mut Model,
    corpus: &Corpus,
    plan: &EpochPlan,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<EpochStats> {
    let d = model.params.vector_size;
    let input = PlainRows {
        table: OutputRows::of(&mut model.syn0, d),
        lockf: model.lockf.as_ptr(),
        lockf_len: model.lockf.len().max(1),
    };
    train_epoch_with(model, input, corpus, plan, progress)
}

/// [`train_epoch`] with the input vectors `input` in place of `model.syn0` (fastText's bags of
/// rows: `crate::fasttext::train`); the output tables, vocabulary and schedule are `model`'s.
/// `input` must cover every word of `model`'s vocabulary.
pub fn train_epoch_with<I: InputVectors>(
    model: &mut Model,
    input: I,
    corpus: &Corpus,
    plan: &EpochPlan,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<EpochStats> {
    plan.validate()?;
    model.params.validate()?;
    let p = &model.params;
    if plan.minibatch && (p.hs || p.negative == 0 || I::CENTRE_INPUT) {
        return Err(Error::invalid(
            "minibatch (HogBatch) training is negative sampling only (skip-gram or CBOW): \
             it needs hs=0 and negative > 0 (and is not available for FastText)",
        ));
    }
    if model.is_empty() {
        return Err(Error::invalid("empty vocabulary: nothing to train"));
    }
    let prepared = prepare(corpus, &model.vocab, plan.batch_words)?;
    let njobs = prepared.jobs.len() as u64;
    let jobs_after = model
        .jobs_done
        .checked_add(njobs)
        .ok_or_else(|| Error::invalid("the model's job counter would pass 2**64"))?;
    let d = model.params.vector_size;
    let tables = SigmoidTables::default();
    let subsample = model.vocab.sample_int.iter().any(|&s| s != u32::MAX);
    let sh = Shared {
        input: &input,
        syn0: input.table(),
        syn1: OutputRows::of(&mut model.syn1, d),
        syn1neg: OutputRows::of(&mut model.syn1neg, d),
        params: &model.params,
        huffman: &model.huffman,
        sample_int: subsample.then_some(&model.vocab.sample_int[..]),
        ctx: Ctx {
            tables: &tables,
            cum_table: &model.vocab.cum_table,
            negative: model.params.negative,
            compute_loss: plan.compute_loss,
        },
        minibatch: plan.minibatch,
    };
    let (seed, first) = (model.params.seed, model.jobs_done);
    let stats = match plan.mode {
        TrainMode::Hogwild => run_epoch(&sh, &prepared, plan, seed, first, progress)?,
        TrainMode::Deterministic => {
            deterministic::run_epoch(&sh, &prepared, plan, (seed, first), progress)?
        }
    };
    model.jobs_done = jobs_after;
    Ok(stats)
}

fn run_epoch<I: InputVectors>(
    sh: &Shared<'_, I>,
    p: &Prepared,
    plan: &EpochPlan,
    seed: u64,
    first_stream: u64,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<EpochStats> {
    let next = AtomicUsize::new(0);
    let done_raw = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let total = Mutex::new(EpochStats::default());
    let avx2 = has_avx2();
    let d = sh.params.vector_size;
    let work = |on_calling_thread: bool, progress: &mut dyn FnMut(u64) -> bool| {
        let mut s = Scratch::new(d);
        let mut mine = EpochStats::default();
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = p.jobs.get(k) else { break };
            let alpha = plan.alpha(job.examples_before, job.raw_before);
            let mut rng = Rng::new(seed, first_stream.wrapping_add(k as u64));
            // SAFETY: the tables outlive the scope; concurrent row updates are the
            // documented Hogwild races.
            let r = unsafe { run_job(avx2, sh, &mut s, (p, job.block(p), alpha, &mut rng)) };
            mine.effective_words += r.effective_words;
            mine.loss += r.loss;
            mine.raw_words += job.raw_words;
            mine.examples += job.examples;
            mine.jobs += 1;
            let done = done_raw.fetch_add(job.raw_words, Ordering::Relaxed) + job.raw_words;
            if on_calling_thread && last.elapsed() >= Duration::from_millis(100) {
                last = Instant::now();
                if !progress(done) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        let mut t = total.lock().unwrap_or_else(|e| e.into_inner());
        t.effective_words += mine.effective_words;
        t.loss += mine.loss;
        t.raw_words += mine.raw_words;
        t.examples += mine.examples;
        t.jobs += mine.jobs;
    };
    std::thread::scope(|scope| {
        for _ in 1..plan.workers {
            scope.spawn(|| work(false, &mut |_| true));
        }
        work(true, progress);
    });
    if stop.load(Ordering::Relaxed) {
        return Err(Error::invalid("training interrupted"));
    }
    let stats = total.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(stats)
}

/// Skip-gram / negative-sampling settings of [`train`] (gensim's names).
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
    /// Training threads (1, or any number with [`TrainMode::Deterministic`]: bit-identical
    /// for a seed).
    pub workers: usize,
    /// How the threads share the tables.
    pub mode: TrainMode,
    /// HogBatch windows instead of per-pair updates ([`super::hogbatch`]).
    pub minibatch: bool,
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
            mode: TrainMode::Hogwild,
            minibatch: false,
        }
    }
}

/// The result of [`train`]: the input vectors (`(V, D)` row-major) and statistics.
pub struct Trained {
    /// The input vectors, `(V, vector_size)` row-major.
    pub vectors: Vec<f32>,
    /// Words actually trained on (after dropping rare words and subsampling), all epochs.
    pub effective_words: u64,
    /// Corpus words processed, all epochs.
    pub raw_words: u64,
}

/// Train skip-gram vectors with negative sampling on `corpus` from scratch (a fresh model on
/// `vocab`, learning rate decayed over raw words). `progress(done, total)` as in
/// [`train_epoch`], with the words of every epoch.
pub fn train(
    corpus: &Corpus,
    vocab: &Vocab,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Trained> {
    if cfg.negative == 0 {
        return Err(Error::invalid("negative must be >= 1, got 0"));
    }
    let params = Params {
        vector_size: cfg.vector_size,
        window: cfg.window,
        negative: cfg.negative,
        seed: cfg.seed,
        ..Params::default()
    };
    params.validate()?;
    let epochs = cfg.epochs as u64;
    // Counts past 64 bits would wrap (to no training at all).
    let raw_all = checked_count(corpus.num_tokens() as u64, epochs, "words x epochs")?;
    let mut model = Model::new(params, vocab.clone())?;
    let mut plan = EpochPlan {
        epoch: 0,
        epochs,
        start_alpha: cfg.alpha as f64,
        end_alpha: cfg.min_alpha as f64,
        total_examples: None,
        total_words: Some(corpus.num_tokens() as u64),
        batch_words: MAX_SENTENCE_LEN,
        compute_loss: false,
        workers: cfg.workers,
        mode: cfg.mode,
        minibatch: cfg.minibatch,
    };
    plan.validate()?;
    let (mut effective, mut raw) = (0u64, 0u64);
    for e in 0..epochs {
        plan.epoch = e;
        let s = train_epoch(&mut model, corpus, &plan, &mut |d| {
            progress(raw + d, raw_all)
        })?;
        effective += s.effective_words;
        raw += s.raw_words;
    }
    progress(raw, raw_all);
    Ok(Trained {
        vectors: model.syn0,
        effective_words: effective,
        raw_words: raw,
    })
}

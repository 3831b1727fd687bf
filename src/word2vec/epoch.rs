//! One epoch's plan (learning-rate schedule, totals, how workers share the tables) and what
//! it did: shared by the Hogwild trainer (`train.rs`) and the deterministic one
//! (`deterministic.rs`), so neither imports the other's internals.

use crate::{Error, Result};

/// How the workers share the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrainMode {
    /// Lock-free in-place updates (gensim, word2vec.c): fastest; bit-identical for a seed with
    /// one worker only.
    #[default]
    Hogwild,
    /// Synchronous minibatches of fixed sub-blocks ([`super::deterministic`]): bit-identical
    /// for a seed whatever the number of workers.
    Deterministic,
}

/// One epoch of one `train` call.
#[derive(Debug, Clone)]
pub struct EpochPlan {
    /// This epoch's number within the call (`0..epochs`).
    pub epoch: u64,
    /// Epochs of the call.
    pub epochs: u64,
    /// Learning rate at the start of the call.
    pub start_alpha: f64,
    /// Learning rate at its end.
    pub end_alpha: f64,
    /// Examples per epoch the schedule assumes (gensim's `total_examples`).
    pub total_examples: Option<u64>,
    /// Raw words per epoch the schedule assumes, when `total_examples` is not given.
    pub total_words: Option<u64>,
    /// Largest job, in raw words (gensim's `batch_words`).
    pub batch_words: usize,
    /// Accumulate the loss.
    pub compute_loss: bool,
    /// Threads.
    pub workers: usize,
    /// How the threads share the tables.
    pub mode: TrainMode,
    /// Negative sampling by HogBatch windows (skip-gram, [`super::hogbatch`]) or batches of
    /// targets (CBOW, [`super::hogbatch_cbow`]) instead of per-pair updates.
    pub minibatch: bool,
}

impl EpochPlan {
    /// Check the schedule: `0 < end <= start` finite, positive counts, `workers <= 1024`.
    pub fn validate(&self) -> Result<()> {
        if !(self.start_alpha > 0.0 && self.start_alpha.is_finite()) {
            return Err(Error::invalid(format!(
                "alpha must be > 0, got {}",
                self.start_alpha
            )));
        }
        if !(self.end_alpha >= 0.0 && self.end_alpha <= self.start_alpha) {
            return Err(Error::invalid(format!(
                "min_alpha must be in [0, alpha], got {}",
                self.end_alpha
            )));
        }
        if self.epochs == 0 || self.epoch >= self.epochs {
            return Err(Error::invalid(format!(
                "epoch {} is outside 0..{}",
                self.epoch, self.epochs
            )));
        }
        if self.workers == 0 || self.workers > 1024 {
            return Err(Error::invalid(format!(
                "workers must be in [1, 1024], got {}",
                self.workers
            )));
        }
        if self.batch_words == 0 {
            return Err(Error::invalid("batch_words must be >= 1, got 0"));
        }
        match (self.total_examples, self.total_words) {
            (Some(0), _) | (None, Some(0)) | (None, None) => Err(Error::invalid(
                "give total_examples or total_words (> 0) for the learning-rate schedule",
            )),
            _ => Ok(()),
        }
    }

    /// The learning rate of a job that starts after `examples` examples / `raw` raw words.
    pub fn alpha(&self, examples: u64, raw: u64) -> f32 {
        let progress = match self.total_examples {
            Some(t) => examples as f64 / t as f64,
            None => raw as f64 / self.total_words.unwrap_or(1) as f64,
        };
        let p = (self.epoch as f64 + progress) / self.epochs as f64;
        let a = self.start_alpha - (self.start_alpha - self.end_alpha) * p;
        a.max(self.end_alpha) as f32
    }
}

/// What an epoch did.
#[derive(Debug, Clone, Default)]
pub struct EpochStats {
    /// Examples (sentences) read.
    pub examples: u64,
    /// Words trained on (in the vocabulary, kept by subsampling).
    pub effective_words: u64,
    /// Raw words read.
    pub raw_words: u64,
    /// Sum of the loss terms (0 unless `compute_loss`), accumulated in f64.
    pub loss: f64,
    /// Jobs run.
    pub jobs: u64,
}

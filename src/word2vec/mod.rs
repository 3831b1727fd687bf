//! word2vec (gensim's `Word2Vec`): skip-gram and CBOW, each with negative sampling and/or
//! hierarchical softmax, trained the way gensim trains them.
//!
//! - [`corpus`]: the corpus as interned word ids (token lists, or text read as gensim's
//!   `LineSentence`), binary input refused;
//! - [`scan`] + [`vocab`]: the raw counts (with `max_vocab_size` pruning and a `trim_rule`)
//!   and the vocabulary (`min_count`, `max_final_vocab`, sorting, online updates,
//!   subsampling thresholds, the noise table); [`huffman`]: gensim's Huffman codes;
//! - [`model`]: the tables (`syn0`, `syn1`, `syn1neg`) and hyper-parameters;
//! - [`kernels`] + [`job`]: the updates of one example and one job, line by line gensim's
//!   `word2vec_inner.pyx`; [`mod@train`]: epochs over jobs on `workers` threads with the
//!   learning-rate schedule.
//!
//! Training is Hogwild by default (lock-free, racy row updates from `workers` threads), as
//! gensim and the original C tool: each (word, context) example's update is applied before the
//! next example reads the rows. With `workers = 1` a seed gives bit-identical tables.
//! [`TrainMode::Deterministic`] ([`deterministic`], on the staged rows of [`staged`]) gives
//! bit-identical tables for any number of workers, at the price of stale reads within a
//! minibatch.

pub mod corpus;
pub mod deterministic;
pub mod epoch;
pub mod hogbatch;
pub mod hogbatch_cbow;
pub mod huffman;
pub mod job;
pub mod kernels;
pub mod model;
pub mod persist;
pub mod scan;
pub mod staged;
pub mod train;
pub mod vocab;

pub use corpus::{Corpus, LineReader};
pub use model::{Model, Params};
pub use scan::{RawVocab, Rule};
pub use train::{
    train, train_epoch, train_epoch_with, EpochPlan, EpochStats, TrainConfig, TrainMode, Trained,
};
pub use vocab::{Vocab, VocabReport, VocabSettings};

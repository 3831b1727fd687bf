//! Skip-gram with negative sampling (word2vec), following gensim's `Word2Vec(sg=1, hs=0)`:
//!
//! - vocabulary: words with `count >= min_count`, sorted by descending count;
//! - subsampling: a word of count `c` is kept with probability
//!   `p = (sqrt(c / t) + 1) * t / c` (capped at 1), `t = sample * retained_total`;
//! - noise distribution `count^0.75` as a cumulative table over `0..2^31-1` (bisect draw);
//! - window shrinking: each position draws `b` in `0..window` and uses `window - b`;
//! - per (center `w`, context `c`) pair, `1 + negative` logistic updates of
//!   `syn1neg[t]` against `syn0[c]` with `sigma` from a 1000-entry table on `[-6, 6]`
//!   (dot products outside are skipped, as gensim), the accumulated `syn0[c]` update applied
//!   after the pair;
//! - learning rate decayed linearly from `alpha` to `min_alpha` over all epochs, per job of
//!   at most 10 000 words (gensim's `batch_words`).
//!
//! Training is Hogwild (lock-free, racy row updates from `workers` threads), as gensim and the
//! original C tool: see [`sgns`] for why this is not a mini-batch sparse-gradient step.

pub mod corpus;
pub mod sgns;
pub mod vocab;

pub use corpus::Corpus;
pub use sgns::{train, TrainConfig, Trained};
pub use vocab::Vocab;

//! fastText subword vectors (Bojanowski et al., "Enriching Word Vectors with Subword
//! Information", 2017), interchangeable with Facebook's fastText and gensim's `FastText`.
//!
//! A model holds one input table of `nwords + bucket` rows of `dim`: row `i < nwords` is
//! vocabulary word `i`'s own vector, and each character n-gram `g` (3 to 6 characters by default,
//! of `"<" + word + ">"`) uses row `nwords + hash(g) % bucket`. A word's vector is the mean of
//! its *bag*: its own row (in-vocabulary words only) and its n-gram rows; a word never seen gets
//! the mean of its n-gram rows, so every word has a vector (zeros when it has no n-gram).
//!
//! - [`hash`]: fastText's FNV-1a variant (bytes read as signed chars).
//! - [`subwords`]: n-gram extraction ([`Subwords`]) and bags of rows ([`WordBags`]).
//! - [`vectors`]: bag means through the crate's EmbeddingBag machinery (fast kernel and
//!   portable path).
//! - [`bin`]: Facebook's `.bin` model format, read with full validation and written atomically.
//! - [`train`]: training on the word2vec trainer with [`train::BagRows`], a word's input the
//!   bag of its rows (skip-gram / CBOW, negative sampling and/or hierarchical softmax).

pub mod bin;
pub mod hash;
pub mod subwords;
pub mod train;
pub mod vectors;

pub use hash::fasttext_hash;
pub use subwords::{Subwords, WordBags};
pub use vectors::{bag_means_into, bag_means_portable, word_vectors_into};

//! candle-embed: embedding lookup, EmbeddingBag, positional encodings and sparse-gradient
//! training on [candle](https://github.com/huggingface/candle), on CPU, CUDA and Metal.
//!
//! Every op has a *portable* path composed of candle ops (runs on any candle device and is the
//! reference) and, where candle is slow, a *fast* path (multi-threaded CPU kernels writing
//! straight into the caller's buffer). Ids are validated before any kernel runs, so an
//! out-of-range id is an [`Error::IndexOutOfRange`] on every backend.

#![deny(missing_docs)]

pub mod alloc;
pub mod bag;
pub mod device;
pub mod dtype;
pub mod embedding;
mod error;
pub mod hugepages;
pub mod ids;
pub mod io;
pub mod kernels;
pub mod norm;
pub mod optim;
pub mod positional;
pub mod rng;
pub mod rows;
pub mod similarity;
pub mod sparse;
pub mod storage;
pub mod techniques;
pub mod threads;
pub mod word2vec;

pub use bag::{BagMode, EmbeddingBag, EmbeddingBagConfig};
pub use embedding::{Embedding, EmbeddingConfig};
pub use error::{Error, Result};
pub use sparse::SparseGrad;

// Crate-internal macros, reachable as `crate::with_float!` etc.
pub(crate) use dtype::with_float;
pub(crate) use error::{bail_invalid, bail_shape};

//! CPU kernels: multi-threaded on the crate's pool, writing straight into caller buffers.

pub mod bag;
pub mod bag_args;
pub mod bag_simd;
pub mod gather;
pub(crate) mod linalg;
pub mod prefetch;
pub mod rope;
pub mod stream;
pub mod tuning;

//! CPU kernels: multi-threaded on the crate's pool, writing straight into caller buffers.

pub mod gather;
pub mod prefetch;
pub mod rows;
pub mod bag;

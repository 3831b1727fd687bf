//! Fast paths. Each kernel here has a portable reference composed of candle ops next to the op
//! that uses it, and the tests assert the two agree.

pub mod cpu;
mod index_add;
pub mod segments;

pub use index_add::index_add_tensor;

#[cfg(feature = "cuda")]
pub mod cuda;

//! Fast paths. Each kernel here has a portable reference composed of candle ops next to the op
//! that uses it, and the tests assert the two agree.

pub mod cpu;
pub mod segments;

#[cfg(feature = "cuda")]
pub mod cuda;

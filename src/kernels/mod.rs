//! Fast paths. Each kernel here has a portable reference composed of candle ops next to the op
//! that uses it, and the tests assert the two agree.

pub mod cpu;
pub mod segments;

#[cfg(feature = "cuda")]
// TODO(cuda issue): document the remaining items (BagMode's variants), then drop this allow.
#[allow(missing_docs)]
pub mod cuda;

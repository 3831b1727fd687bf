//! The array boundary: the only place where the bindings read arrays from Python or hand arrays
//! back. Every binding file goes through it; none touches NumPy memory itself.
//!
//! - [`view`]: any array-like as an ndarray, without a copy where NumPy can use the memory as it
//!   is: ndarrays, the buffer protocol (`memoryview`, `bytearray`, `array.array`), objects with
//!   `__array_interface__` / `__array__`, and `__dlpack__` producers on the CPU (a PyTorch or JAX
//!   CPU tensor), plus Python ints and (nested) sequences. An ndarray takes no Python call.
//! - [`ids`]: integer index arrays (ids, offsets, positions) of any width, read **once** into an
//!   owned snapshot ([`IdArray`]); [`with_ids!`] runs a body once per id width.
//! - [`snapshot`]: the snapshot's storage, an allocation each thread keeps for its next call.
//! - [`floats`]: float inputs, borrowed in place when C-contiguous ([`Floats`]), and the rule for
//!   an input whose dtype decides the output's ([`float_dtype`]).
//! - [`output`]: the one output-dtype rule ([`OutFloat`], [`with_out_float!`]) and the one helper
//!   that fills a fresh array or the caller's `out=` with a kernel running without the GIL
//!   ([`fill`]); vectors a kernel returns handed over as arrays ([`collect`], [`vec_output`]).
//! - [`tables`]: tensors <-> NumPy for tables (`weight` getters and setters, `from_pretrained`).
//! - [`bytes`]: packed quantized rows (2-D uint8), copied once.
//!
//! ## Concurrency contract
//!
//! Kernels run with the GIL released, so another Python thread may write to an input array
//! during a call. Index arrays are therefore copied into an owned snapshot before the kernel
//! starts: validation and kernel see the same values, and a concurrent write can only yield the
//! result for some state of the input or a typed error, never an out-of-bounds read. Float
//! inputs stay zero-copy: a concurrent write there can only change the values computed with.
//! An `out=` array is refused when its memory overlaps any input's, judged by address range (two
//! views of one buffer overlap even when their `base` objects differ).
//!
//! ## Allocation contract
//!
//! Every array or copy whose size a caller chooses is allocated fallibly: outputs through
//! NumPy's C API with its errors translated (`MemoryError`, "array is too big", more than 64
//! dimensions), copies with `try_reserve`. An impossible size is a `CandleEmbedMemoryError` or
//! `CandleEmbedValueError`, never an abort or a panic.

pub mod bytes;
pub mod floats;
pub mod ids;
pub mod output;
pub mod snapshot;
pub mod tables;
pub mod view;

pub use floats::{float_dtype, Floats};
pub(crate) use ids::with_ids;
pub use ids::IdArray;
pub(crate) use output::with_out_float;
pub use output::{collect, fill, vec_output, OutFloat};
pub use view::Region;

/// The element types NumPy arrays of the boundary hold (a bound on generic helpers).
pub use numpy::Element;

//! Positional encodings, one file per family as in `candle_embed::positional`: sinusoidal,
//! learned, combined (BERT's embedding block), relative (T5 bias), ALiBi and rotary. Translation
//! only; the work is in the core.

use candle_core::DType;
use candle_embed::dtype::{parse_dtype, Float};
use candle_embed::positional::learned::LearnedPositionalEmbedding;
use candle_embed::positional::sinusoidal::SinusoidalPositionalEncoding;
use pyo3::prelude::*;

use crate::arrays::{fill, with_out_float, Floats};
use crate::errors::{type_error, IntoPyResult};

pub mod alibi;
pub mod combined;
pub mod learned;
pub mod relative;
pub mod rope_scaling;
pub mod rotary;
pub mod sinusoidal;

/// A float32 or float64 dtype (the encodings' NumPy-facing types).
pub fn py_dtype(name: &str) -> PyResult<DType> {
    match parse_dtype(name).py()? {
        d @ (DType::F32 | DType::F64) => Ok(d),
        _ => Err(type_error(format!(
            "positional encodings support float32 and float64, got '{name}'"
        ))),
    }
}

/// An encoding added to a sequence: `out = x + P[offset..offset+T]` for `x` of shape
/// `(..., T, dim)` (absolute positions, sinusoidal or learned).
#[derive(Clone, Copy)]
pub enum Absolute<'a> {
    Sinusoidal(&'a SinusoidalPositionalEncoding),
    Learned(&'a LearnedPositionalEmbedding),
}

impl Absolute<'_> {
    /// The table's dtype (the output's and the kernel's element type).
    fn dtype(self) -> DType {
        match self {
            Absolute::Sinusoidal(p) => p.table().dtype(),
            Absolute::Learned(p) => p.embedding().dtype(),
        }
    }

    /// The core's CPU kernel for element type `T` (the table's).
    fn add_into<T: Float>(
        self,
        x: &[T],
        shape: &[usize],
        offset: i64,
        out: &mut [T],
    ) -> candle_embed::Result<()> {
        match self {
            Absolute::Sinusoidal(p) => p.add_into(x, shape, offset, out),
            Absolute::Learned(p) => p.add_into(x, shape, offset, out),
        }
    }

    /// The positions added to `x` (any real array-like, cast to the table's dtype), into a
    /// fresh array of `x`'s shape.
    pub fn add<'py>(
        self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        with_out_float!(self.dtype(), T => {
            let x = Floats::<T>::read(x, "x")?;
            let (shape, xs) = (x.shape(), x.values());
            let (y, ()) = fill::<T, _, _>(py, None, shape, &[], |dst| {
                self.add_into(xs, shape, offset, dst)
            })?;
            Ok(y)
        })
    }
}

/// Register the classes and functions of the positional family.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    sinusoidal::register(m)?;
    learned::register(m)?;
    combined::register(m)?;
    relative::register(m)?;
    alibi::register(m)?;
    m.add_class::<rotary::PyRotaryEmbedding>()
}

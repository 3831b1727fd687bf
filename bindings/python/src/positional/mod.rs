//! Positional encodings, one file per family as in `candle_embed::positional`: sinusoidal,
//! learned, combined (BERT's embedding block), relative (T5 bias), ALiBi and rotary. Translation
//! only; the work is in the core.

use candle_core::DType;
use candle_embed::dtype::parse_dtype;
use numpy::Element;
use pyo3::prelude::*;

use crate::arrays::{fill, Floats};
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

/// `f(x, shape, out)` on `x` (any real array-like, cast to `T`) into a fresh array of `x`'s
/// shape: the shape of every "add positions to a sequence" call.
pub fn map_seq<'py, T: Element + Copy + Send + Sync>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    what: &str,
    f: impl FnOnce(&[T], &[usize], &mut [T]) -> candle_embed::Result<()> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let x = Floats::<T>::read(x, what)?;
    let (shape, xs) = (x.shape(), x.values());
    let (y, ()) = fill::<T, _, _>(py, None, shape, &[], |dst| f(xs, shape, dst))?;
    Ok(y)
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

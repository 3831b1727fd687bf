//! `alibi_slopes` and `alibi_bias`: translation only; the work is in
//! `candle_embed::positional::alibi`.

use candle_embed::positional::alibi;
use pyo3::prelude::*;

use super::py_dtype;
use crate::args;
use crate::arrays::{collect, vec_output, with_out_float};
use crate::errors::IntoPyResult;

/// ALiBi's head slopes (Press et al.): ``2**(-8h/n)`` for ``n`` a power of two, and the paper's
/// interleaving rule otherwise; shape ``(num_heads,)``, ``dtype`` "float32" or "float64".
#[pyfunction]
#[pyo3(signature = (num_heads, *, dtype=args::default_text("float32")),
    text_signature = "(num_heads, *, dtype='float32')")]
fn alibi_slopes<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::size)] num_heads: usize,
    #[pyo3(from_py_with = args::text)] dtype: String,
) -> PyResult<Bound<'py, PyAny>> {
    let slopes = alibi::alibi_slopes(num_heads).py()?;
    with_out_float!(py_dtype(&dtype)?, T => {
        let v: Vec<T> = slopes.into_iter().map(<T as candle_embed::dtype::Float>::of_f64).collect();
        vec_output(py, v, &[num_heads])
    })
}

/// The ALiBi bias ``-slope_h * |i + offset - j|`` for query ``i`` and key ``j``, shape
/// ``(num_heads, q_len, k_len)``, ``dtype`` "float32" or "float64".
#[pyfunction]
#[pyo3(signature = (num_heads, q_len, k_len, *, offset=0, dtype=args::default_text("float32")),
    text_signature = "(num_heads, q_len, k_len, *, offset=0, dtype='float32')")]
fn alibi_bias<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::size)] num_heads: usize,
    #[pyo3(from_py_with = args::size)] q_len: usize,
    #[pyo3(from_py_with = args::size)] k_len: usize,
    #[pyo3(from_py_with = args::signed)] offset: i64,
    #[pyo3(from_py_with = args::text)] dtype: String,
) -> PyResult<Bound<'py, PyAny>> {
    let (h, q, k) = (num_heads, q_len, k_len);
    with_out_float!(py_dtype(&dtype)?, T => {
        collect(py, &[h, q, k], || alibi::alibi_bias::<T>(h, q, k, offset))
    })
}

/// Register the ALiBi functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(alibi_slopes, m)?)?;
    m.add_function(wrap_pyfunction!(alibi_bias, m)?)
}

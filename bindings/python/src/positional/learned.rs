//! `candle_embed.LearnedPositionalEmbedding`: translation only; the work is in
//! `candle_embed::positional::learned`.

use std::ffi::CStr;
use std::sync::Arc;

use candle_core::Device;
use candle_embed::positional::learned::LearnedPositionalEmbedding;
use pyo3::prelude::*;

use super::{py_dtype, Absolute};
use crate::args;
use crate::arrays::{with_out_float, Floats};
use crate::embedding::PyEmbedding;
use crate::gil::{build_shared, without_gil};
use crate::properties::{getters, weight_property};
use crate::sparse_grad::PySparseGrad;

/// Learned absolute positions (BERT, GPT-2): a ``(max_len, dim)`` table whose first ``T``
/// rows (from ``offset``) are added to a sequence.
///
/// Rows start from N(0, 1) (``seed`` makes them reproducible); ``dtype`` "float32" or
/// "float64". Train it with ``backward`` and an optimizer over ``embedding``.
#[pyclass(frozen, name = "LearnedPositionalEmbedding", module = "candle_embed")]
pub struct PyLearnedPositionalEmbedding {
    pub inner: Arc<LearnedPositionalEmbedding>,
}

/// The documentation of `LearnedPositionalEmbedding.__call__` (see `docs.rs`).
pub const CALL_DOC: &CStr = c"__call__($self, x, offset=0)
--

``x + W[offset:offset+T]`` for ``x`` of shape ``(..., T, dim)`` (cast to the table's dtype):
a new array of ``x``'s shape. IndexError for a negative ``offset`` or positions past
``max_len``.";

#[pymethods]
impl PyLearnedPositionalEmbedding {
    #[new]
    #[pyo3(signature = (max_len, dim, *, seed=None, dtype=args::default_text("float32")),
        text_signature = "(max_len, dim, *, seed=None, dtype='float32')")]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] max_len: usize,
        #[pyo3(from_py_with = args::size)] dim: usize,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        #[pyo3(from_py_with = args::text)] dtype: String,
    ) -> PyResult<Self> {
        let dtype = py_dtype(&dtype)?;
        Ok(Self {
            inner: build_shared(py, || {
                LearnedPositionalEmbedding::new(max_len, dim, dtype, &Device::Cpu, seed)
            })?,
        })
    }

    #[pyo3(signature = (x, offset=0))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        Absolute::Learned(&self.inner).add(py, x, offset)
    }

    /// The table's gradient for ``grad`` of shape ``(..., T, dim)``: a ``SparseGrad`` over rows
    /// ``offset..offset+T``, each the sum of ``grad`` over the leading dimensions.
    #[pyo3(signature = (grad, offset=0))]
    fn backward(
        &self,
        py: Python<'_>,
        grad: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<PySparseGrad> {
        let l = &*self.inner;
        let g = with_out_float!(l.embedding().dtype(), T => {
            let g = Floats::<T>::read(grad, "grad")?;
            let (v, s) = (g.values(), g.shape());
            without_gil(py, || l.backward(v, s, offset))?
        });
        Ok(PySparseGrad::wrap(g))
    }

    /// The position table as an ``Embedding`` sharing this object's storage (an optimizer
    /// stepping it updates this object).
    #[getter]
    fn embedding(&self) -> PyEmbedding {
        PyEmbedding::shared(self.inner.embedding())
    }
    fn __repr__(&self) -> String {
        format!(
            "LearnedPositionalEmbedding({}, {})",
            self.inner.max_len(),
            self.inner.dim()
        )
    }
}

weight_property!(PyLearnedPositionalEmbedding, |s| s.inner.embedding());
getters!(PyLearnedPositionalEmbedding, |s| {
    /// The number of positions, ``max_len``.
    max_len: usize = s.inner.max_len();
    /// The embedding width.
    dim: usize = s.inner.dim();
});

/// Register `LearnedPositionalEmbedding`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::docs::add_callable_class::<PyLearnedPositionalEmbedding>(m, CALL_DOC)
}

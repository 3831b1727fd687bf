//! `candle_embed.SparseGrad`: a coalesced row-sparse gradient (read-only view from Python).

use candle_embed::SparseGrad;
use pyo3::prelude::*;

use crate::arrays::tables::tensor_to_numpy;
use crate::arrays::vec_output;
use crate::gil::without_gil;

/// The gradient of a ``(num_rows, dim)`` table that only some rows received: sorted unique
/// row ids (``indices``) and one summed row each (``values``). Always coalesced. Made by
/// ``backward`` methods and ``SparseGrad.from_rows``; consumed by ``candle_embed.optim``.
#[pyclass(frozen, name = "SparseGrad", module = "candle_embed")]
pub struct PySparseGrad {
    pub inner: SparseGrad,
}

impl PySparseGrad {
    pub fn wrap(inner: SparseGrad) -> Self {
        PySparseGrad { inner }
    }
}

#[pymethods]
impl PySparseGrad {
    /// Sorted unique row ids, int64, shape ``(nnz,)``.
    #[getter]
    fn indices<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ids = self.inner.indices();
        vec_output(py, ids.to_vec(), &[ids.len()])
    }
    /// Summed gradient rows, shape ``(nnz, dim)``, one per id of ``indices``.
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, self.inner.values())
    }
    /// Shape of the dense gradient, ``(num_rows, dim)``.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        self.inner.shape()
    }
    /// Number of rows present (``len(indices)``).
    #[getter]
    fn nnz(&self) -> usize {
        self.inner.nnz()
    }
    /// Always True: a SparseGrad is coalesced by construction.
    fn is_coalesced(&self) -> bool {
        true
    }
    /// The dense ``(num_rows, dim)`` gradient: zeros except the rows of ``indices``.
    fn to_dense<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let dense = without_gil(py, || self.inner.to_dense())?;
        tensor_to_numpy(py, &dense)
    }
    fn __repr__(&self) -> String {
        let (r, d) = self.inner.shape();
        format!("SparseGrad(shape=({r}, {d}), nnz={})", self.inner.nnz())
    }
}

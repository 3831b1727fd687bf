//! `candle_embed.SinusoidalPositionalEncoding`: translation only; the work is in
//! `candle_embed::positional::sinusoidal`.

use std::ffi::CStr;
use std::sync::Arc;

use candle_core::Device;
use candle_embed::dtype::dtype_name;
use candle_embed::positional::sinusoidal::{
    SinusoidalConfig, SinusoidalLayout, SinusoidalPositionalEncoding,
};
use pyo3::prelude::*;

use super::{py_dtype, Absolute};
use crate::args;
use crate::arrays::tables::tensor_to_numpy;
use crate::errors::IntoPyResult;
use crate::gil::build_shared;
use crate::properties::getters;

/// The fixed sinusoidal position table of the Transformer paper, ``(max_len, dim)``, added to
/// a sequence: ``ω_i = base**(-2i/dim)``, computed in float64.
///
/// ``layout="interleaved"`` gives ``[sin ω0·p, cos ω0·p, sin ω1·p, …]``,
/// ``"concat"`` all sines then all cosines (same frequencies), ``"tensor2tensor"`` the layout of
/// tensor2tensor, fairseq and transformers' M2M100 / Speech2Text: sines then cosines with
/// ``ω_i = exp(-i·log(base) / (dim//2 - 1))``, and a zero last column when ``dim`` is odd (the
/// only layout that takes an odd ``dim``). ``dtype`` "float32" or "float64".
#[pyclass(frozen, name = "SinusoidalPositionalEncoding", module = "candle_embed")]
pub struct PySinusoidalPositionalEncoding {
    pub inner: Arc<SinusoidalPositionalEncoding>,
}

/// The documentation of `SinusoidalPositionalEncoding.__call__` (see `docs.rs`).
pub const CALL_DOC: &CStr = c"__call__($self, x, *, offset=0)
--

``x + table[offset:offset+T]`` for ``x`` of shape ``(..., T, dim)`` (cast to the table's
dtype): a new array of ``x``'s shape. IndexError for a negative ``offset`` or positions past
``max_len``.";

#[pymethods]
impl PySinusoidalPositionalEncoding {
    #[new]
    #[pyo3(signature = (dim, *, max_len=4096, base=10000.0,
        layout=args::default_text("interleaved"), dtype=args::default_text("float32")),
        text_signature = "(dim, *, max_len=4096, base=10000.0, layout='interleaved', \
        dtype='float32')")]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] dim: usize,
        #[pyo3(from_py_with = args::size)] max_len: usize,
        #[pyo3(from_py_with = args::real)] base: f64,
        #[pyo3(from_py_with = args::text)] layout: String,
        #[pyo3(from_py_with = args::text)] dtype: String,
    ) -> PyResult<Self> {
        let layout = SinusoidalLayout::parse(&layout).py()?;
        let dtype = py_dtype(&dtype)?;
        let cfg = SinusoidalConfig {
            max_len,
            base,
            layout,
        };
        Ok(Self {
            inner: build_shared(py, || {
                SinusoidalPositionalEncoding::new(dim, cfg, dtype, &Device::Cpu)
            })?,
        })
    }

    #[pyo3(signature = (x, *, offset=0))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        Absolute::Sinusoidal(&self.inner).add(py, x, offset)
    }

    /// A copy of the table, ``(max_len, dim)``.
    #[getter]
    fn table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, self.inner.table())
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "SinusoidalPositionalEncoding({}, max_len={}, base={}, layout='{}', dtype='{}')",
            self.inner.dim(),
            c.max_len,
            c.base,
            c.layout.name(),
            dtype_name(self.inner.table().dtype())
        )
    }
}

getters!(PySinusoidalPositionalEncoding, |s| {
    /// The encoding width (even, except for "tensor2tensor").
    dim: usize = s.inner.dim();
    /// The number of positions the table covers.
    max_len: usize = s.inner.config().max_len;
    /// The frequency base ``b`` of ``ω_i = b**(-2i/dim)`` (tensor2tensor:
    /// ``exp(-i·log(b)/(dim//2 - 1))``).
    base: f64 = s.inner.config().base;
    /// "interleaved", "concat" or "tensor2tensor".
    layout: &'static str = s.inner.config().layout.name();
    /// The table's dtype, "float32" or "float64".
    dtype: &'static str = dtype_name(s.inner.table().dtype());
});

/// Register `SinusoidalPositionalEncoding`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::docs::add_callable_class::<PySinusoidalPositionalEncoding>(m, CALL_DOC)
}

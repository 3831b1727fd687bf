//! `candle_embed.Embedding`: translation only; the work is in `candle_embed::Embedding`.

use std::sync::Arc;

use candle_core::DType;
use candle_embed::device::{device_name, parse_device};
use candle_embed::dtype::{parse_dtype, Float};
use candle_embed::{Embedding, EmbeddingConfig};
use numpy::{Element, PyArrayMethods};
use pyo3::prelude::*;

use crate::args;
use crate::arrays::{new_output, out_buffer, IdArray};
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::tables::{dtype_str, numpy_to_table, numpy_to_tensor, tensor_to_numpy};
use crate::with_ids;

/// An embedding table (see the stub `_native.pyi` for the Python-level documentation).
#[pyclass(frozen, name = "Embedding", module = "candle_embed")]
pub struct PyEmbedding {
    pub inner: Arc<Embedding>,
}

pub fn config(
    padding_idx: Option<i64>,
    max_norm: Option<f64>,
    norm_type: f64,
    scale_grad_by_freq: bool,
    freeze: bool,
) -> EmbeddingConfig {
    EmbeddingConfig {
        padding_idx,
        max_norm,
        norm_type,
        scale_grad_by_freq,
        freeze,
    }
}

/// Look `ids` up into a fresh array or `out`, with output element type `D`.
fn lookup_as<'py, D: Float + Element>(
    py: Python<'py>,
    emb: &Arc<Embedding>,
    ids: &IdArray<'py>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    with_ids!(ids, |ids, shape| {
        let mut full = shape.to_vec();
        full.push(emb.embedding_dim());
        match out {
            Some(o) => {
                let mut buf = out_buffer::<D>(o, &full)?;
                let dst = buf.as_slice_mut().map_err(|e| value_error(e.to_string()))?;
                without_gil(py, || emb.lookup_into(ids, dst))?;
                Ok(o.clone())
            }
            None => {
                let arr = new_output::<D>(py, &full);
                {
                    // SAFETY: `arr` is fresh and not yet shared with Python.
                    let dst =
                        unsafe { arr.as_slice_mut() }.map_err(|e| value_error(e.to_string()))?;
                    without_gil(py, || emb.lookup_into(ids, dst))?;
                }
                Ok(arr.into_any())
            }
        }
    })
}

#[pymethods]
impl PyEmbedding {
    #[new]
    #[pyo3(signature = (num_embeddings, embedding_dim, *, padding_idx=None, max_norm=None,
        norm_type=2.0, scale_grad_by_freq=false, dtype="float32", device="cpu", seed=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] num_embeddings: usize,
        #[pyo3(from_py_with = args::size)] embedding_dim: usize,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        max_norm: Option<f64>,
        norm_type: f64,
        scale_grad_by_freq: bool,
        dtype: &str,
        device: &str,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
    ) -> PyResult<Self> {
        let dtype = parse_dtype(dtype).py()?;
        let device = parse_device(device).py()?;
        let cfg = config(padding_idx, max_norm, norm_type, scale_grad_by_freq, false);
        let inner = without_gil(py, || {
            Embedding::new(num_embeddings, embedding_dim, cfg, dtype, &device, seed)
        })?;
        Ok(PyEmbedding {
            inner: Arc::new(inner),
        })
    }

    #[classmethod]
    #[pyo3(signature = (weight, *, freeze=true, padding_idx=None, max_norm=None, norm_type=2.0,
        scale_grad_by_freq=false, device="cpu"))]
    #[allow(clippy::too_many_arguments)]
    fn from_pretrained(
        _cls: &Bound<'_, pyo3::types::PyType>,
        weight: &Bound<'_, PyAny>,
        freeze: bool,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        max_norm: Option<f64>,
        norm_type: f64,
        scale_grad_by_freq: bool,
        device: &str,
    ) -> PyResult<Self> {
        let device = parse_device(device).py()?;
        let w = numpy_to_table(weight, &device)?;
        let cfg = config(padding_idx, max_norm, norm_type, scale_grad_by_freq, freeze);
        Ok(PyEmbedding {
            inner: Arc::new(Embedding::from_pretrained(w, cfg).py()?),
        })
    }

    /// `emb(ids, out=None)`: rows of the table at `ids`, shape `ids.shape + (D,)`; with
    /// `dropout` / `normalize`, the transformed rows (see `techniques.rs`).
    #[pyo3(signature = (ids, *, out=None, dropout=0.0, seed=None, normalize=false))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        out: Option<&Bound<'py, PyAny>>,
        dropout: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        normalize: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::extract(ids, "ids")?;
        if dropout != 0.0 || normalize {
            let t = (dropout, seed, normalize);
            return crate::techniques::lookup_transformed(py, &self.inner, &ids, out, t);
        }
        match self.inner.dtype() {
            DType::F64 => lookup_as::<f64>(py, &self.inner, &ids, out),
            DType::F16 => lookup_as::<half::f16>(py, &self.inner, &ids, out),
            _ => lookup_as::<f32>(py, &self.inner, &ids, out),
        }
    }

    /// A copy of the table as a NumPy array.
    #[getter]
    fn get_weight<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, &self.inner.weight())
    }

    #[setter]
    fn set_weight(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = numpy_to_tensor(value, "weight")?;
        self.inner.set_weight(&t).py()
    }

    #[getter]
    fn num_embeddings(&self) -> usize {
        self.inner.num_embeddings()
    }
    #[getter]
    fn embedding_dim(&self) -> usize {
        self.inner.embedding_dim()
    }
    #[getter]
    fn padding_idx(&self) -> Option<usize> {
        self.inner.padding_idx()
    }
    #[getter]
    fn max_norm(&self) -> Option<f64> {
        self.inner.config().max_norm
    }
    #[getter]
    fn norm_type(&self) -> f64 {
        self.inner.config().norm_type
    }
    #[getter]
    fn scale_grad_by_freq(&self) -> bool {
        self.inner.config().scale_grad_by_freq
    }
    #[getter]
    fn frozen(&self) -> bool {
        self.inner.is_frozen()
    }
    #[getter]
    fn dtype(&self) -> &'static str {
        dtype_str(&self.inner.weight())
    }
    #[getter]
    fn device(&self) -> String {
        device_name(&self.inner.device())
    }

    /// Save table and config to a safetensors file (atomic).
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let inner = self.inner.clone();
        without_gil(py, move || inner.save(&path))
    }

    /// Load a table saved by `save`.
    #[classmethod]
    #[pyo3(signature = (path, *, device="cpu"))]
    fn load(
        _cls: &Bound<'_, pyo3::types::PyType>,
        py: Python<'_>,
        path: std::path::PathBuf,
        device: &str,
    ) -> PyResult<Self> {
        let device = parse_device(device).py()?;
        let inner = without_gil(py, move || Embedding::load(&path, &device))?;
        Ok(PyEmbedding {
            inner: Arc::new(inner),
        })
    }

    /// Portable-path lookup (candle's `index_select`), for testing the fast path against.
    fn _lookup_portable<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::extract(ids, "ids")?;
        let t = with_ids!(ids, |ids, shape| {
            let inner = self.inner.clone();
            without_gil(py, || inner.lookup_portable(ids, shape))?
        });
        tensor_to_numpy(py, &t)
    }

    fn __repr__(&self) -> String {
        format!(
            "Embedding({}, {}, dtype='{}', device='{}'{})",
            self.inner.num_embeddings(),
            self.inner.embedding_dim(),
            dtype_str(&self.inner.weight()),
            device_name(&self.inner.device()),
            self.inner
                .padding_idx()
                .map_or(String::new(), |p| format!(", padding_idx={p}"))
        )
    }
}

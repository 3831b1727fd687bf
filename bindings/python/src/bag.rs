//! `candle_embed.EmbeddingBag`: translation only; the work is in `candle_embed::EmbeddingBag`.

use std::sync::Arc;

use candle_core::DType;
use candle_embed::bag::{mode_name, parse_mode};
use candle_embed::device::{device_name, parse_device};
use candle_embed::dtype::{parse_dtype, Float};
use candle_embed::ids::Id;
use candle_embed::{EmbeddingBag, EmbeddingBagConfig};
use numpy::{Element, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::args;
use crate::arrays::{float_array, new_output, out_buffer, IdArray};
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::sparse_grad::PySparseGrad;
use crate::tables::{dtype_str, numpy_to_table, numpy_to_tensor, tensor_to_numpy};
use crate::with_ids;

/// Pooled lookups (see the stub `_native.pyi` for the Python-level documentation).
#[pyclass(frozen, name = "EmbeddingBag", module = "candle_embed")]
pub struct PyEmbeddingBag {
    pub inner: Arc<EmbeddingBag>,
}

/// Offsets of any integer dtype, widened to i64 (saturating: anything that large is past the
/// ids anyway and is reported as such).
fn offsets_vec(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<i64>>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    let arr = IdArray::extract(obj, "offsets")?;
    let v = with_ids!(arr, |o, shape| {
        if shape.len() != 1 {
            return Err(value_error(format!(
                "offsets must be 1-D, got shape {shape:?}"
            )));
        }
        o.iter()
            .map(|&x| x.wide().clamp(i64::MIN as i128, i64::MAX as i128) as i64)
            .collect::<Vec<i64>>()
    });
    Ok(Some(v))
}

/// `per_sample_weights` as `D`, checked to have the ids' shape.
fn weights_vec<D: Float + Element>(
    obj: Option<&Bound<'_, PyAny>>,
    ids_shape: &[usize],
) -> PyResult<Option<Vec<D>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let a = float_array::<D>(obj, "per_sample_weights")?;
    if a.shape() != ids_shape {
        return Err(value_error(format!(
            "per_sample_weights must have the shape of ids {ids_shape:?}, got {:?}",
            a.shape()
        )));
    }
    Ok(Some(a.as_array().iter().copied().collect()))
}

fn ids_shape(ids: &IdArray<'_>) -> Vec<usize> {
    with_ids!(ids, |_i, shape| shape.to_vec())
}

fn forward_as<'py, D: Float + Element>(
    py: Python<'py>,
    bag: &Arc<EmbeddingBag>,
    ids: &IdArray<'py>,
    offsets: Option<&[i64]>,
    psw: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    with_ids!(ids, |ids, shape| {
        let w = weights_vec::<D>(psw, shape)?;
        let nb = bag.num_bags(shape, offsets.map(<[i64]>::len)).py()?;
        let full = [nb, bag.embedding_dim()];
        let w = w.as_deref();
        match out {
            Some(o) => {
                let mut buf = out_buffer::<D>(o, &full)?;
                let dst = buf.as_slice_mut().map_err(|e| value_error(e.to_string()))?;
                without_gil(py, || bag.forward_into(ids, shape, offsets, w, dst))?;
                Ok(o.clone())
            }
            None => {
                let arr = new_output::<D>(py, &full);
                {
                    // SAFETY: `arr` is fresh and not yet shared with Python.
                    let dst =
                        unsafe { arr.as_slice_mut() }.map_err(|e| value_error(e.to_string()))?;
                    without_gil(py, || bag.forward_into(ids, shape, offsets, w, dst))?;
                }
                Ok(arr.into_any())
            }
        }
    })
}

/// `grad_output` as `D`, checked to be `(B, D)`.
fn grad_vec<D: Float + Element>(
    bag: &EmbeddingBag,
    grad: &Bound<'_, PyAny>,
    shape: &[usize],
    offsets: Option<&[i64]>,
) -> PyResult<Vec<D>> {
    let nb = bag.num_bags(shape, offsets.map(<[i64]>::len)).py()?;
    let g = float_array::<D>(grad, "grad_output")?;
    let want = [nb, bag.embedding_dim()];
    if g.shape() != want {
        return Err(value_error(format!(
            "grad_output must have shape {want:?}, got {:?}",
            g.shape()
        )));
    }
    Ok(g.as_array().iter().copied().collect())
}

fn backward_as<D: Float + Element>(
    py: Python<'_>,
    bag: &Arc<EmbeddingBag>,
    ids: &IdArray<'_>,
    grad: &Bound<'_, PyAny>,
    offsets: Option<&[i64]>,
    psw: Option<&Bound<'_, PyAny>>,
) -> PyResult<PySparseGrad> {
    with_ids!(ids, |ids, shape| {
        let w = weights_vec::<D>(psw, shape)?;
        let g = grad_vec::<D>(bag, grad, shape, offsets)?;
        let sg = without_gil(py, || bag.backward(ids, shape, offsets, &g, w.as_deref()))?;
        Ok(PySparseGrad::wrap(sg))
    })
}

fn backward_psw_as<'py, D: Float + Element>(
    py: Python<'py>,
    bag: &Arc<EmbeddingBag>,
    ids: &IdArray<'py>,
    grad: &Bound<'py, PyAny>,
    offsets: Option<&[i64]>,
) -> PyResult<Bound<'py, PyAny>> {
    with_ids!(ids, |ids, shape| {
        let g = grad_vec::<D>(bag, grad, shape, offsets)?;
        let v = without_gil(py, || {
            bag.backward_per_sample_weights(ids, shape, offsets, &g)
        })?;
        let v: Vec<D> = v.into_iter().map(D::of_f64).collect();
        Ok(numpy::PyArray1::from_vec(py, v)
            .reshape(shape.to_vec())?
            .into_any())
    })
}

macro_rules! by_out_dtype {
    ($bag:expr, $f:ident ( $($a:expr),* )) => {
        match $bag.weight().dtype() {
            DType::F64 => $f::<f64>($($a),*),
            DType::F16 => $f::<half::f16>($($a),*),
            _ => $f::<f32>($($a),*),
        }
    };
}

#[allow(clippy::too_many_arguments)]
fn config(
    mode: &str,
    padding_idx: Option<i64>,
    max_norm: Option<f64>,
    norm_type: f64,
    include_last_offset: bool,
    freeze: bool,
) -> PyResult<EmbeddingBagConfig> {
    Ok(EmbeddingBagConfig {
        mode: parse_mode(mode).py()?,
        padding_idx,
        max_norm,
        norm_type,
        include_last_offset,
        freeze,
    })
}

#[pymethods]
impl PyEmbeddingBag {
    #[new]
    #[pyo3(signature = (num_embeddings, embedding_dim, *, mode="mean", padding_idx=None,
        max_norm=None, norm_type=2.0, include_last_offset=false, dtype="float32", device="cpu",
        seed=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] num_embeddings: usize,
        #[pyo3(from_py_with = args::size)] embedding_dim: usize,
        mode: &str,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        max_norm: Option<f64>,
        norm_type: f64,
        include_last_offset: bool,
        dtype: &str,
        device: &str,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
    ) -> PyResult<Self> {
        let cfg = config(
            mode,
            padding_idx,
            max_norm,
            norm_type,
            include_last_offset,
            false,
        )?;
        let dtype = parse_dtype(dtype).py()?;
        let device = parse_device(device).py()?;
        let inner = without_gil(py, || {
            EmbeddingBag::new(num_embeddings, embedding_dim, cfg, dtype, &device, seed)
        })?;
        Ok(PyEmbeddingBag {
            inner: Arc::new(inner),
        })
    }

    #[classmethod]
    #[pyo3(signature = (weight, *, freeze=true, mode="mean", padding_idx=None, max_norm=None,
        norm_type=2.0, include_last_offset=false, device="cpu"))]
    #[allow(clippy::too_many_arguments)]
    fn from_pretrained(
        _cls: &Bound<'_, pyo3::types::PyType>,
        weight: &Bound<'_, PyAny>,
        freeze: bool,
        mode: &str,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        max_norm: Option<f64>,
        norm_type: f64,
        include_last_offset: bool,
        device: &str,
    ) -> PyResult<Self> {
        let cfg = config(
            mode,
            padding_idx,
            max_norm,
            norm_type,
            include_last_offset,
            freeze,
        )?;
        let device = parse_device(device).py()?;
        let w = numpy_to_table(weight, &device)?;
        Ok(PyEmbeddingBag {
            inner: Arc::new(EmbeddingBag::from_pretrained(w, cfg).py()?),
        })
    }

    /// `bag(ids, offsets=None, per_sample_weights=None, *, out=None)` -> `(B, D)`.
    #[pyo3(signature = (ids, offsets=None, per_sample_weights=None, *, out=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
        per_sample_weights: Option<&Bound<'py, PyAny>>,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::extract(ids, "ids")?;
        let off = offsets_vec(offsets)?;
        let off = off.as_deref();
        by_out_dtype!(
            self.inner,
            forward_as(py, &self.inner, &ids, off, per_sample_weights, out)
        )
    }

    /// Gradient of the table for `grad_output` `(B, D)`, as a coalesced `SparseGrad`.
    #[pyo3(signature = (ids, grad_output, offsets=None, per_sample_weights=None))]
    fn backward(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        grad_output: &Bound<'_, PyAny>,
        offsets: Option<&Bound<'_, PyAny>>,
        per_sample_weights: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PySparseGrad> {
        let ids = IdArray::extract(ids, "ids")?;
        let off = offsets_vec(offsets)?;
        let off = off.as_deref();
        by_out_dtype!(
            self.inner,
            backward_as(py, &self.inner, &ids, grad_output, off, per_sample_weights)
        )
    }

    /// Gradient of `per_sample_weights` (mode "sum"): shape of ids.
    #[pyo3(signature = (ids, grad_output, offsets=None))]
    fn backward_per_sample_weights<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        grad_output: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::extract(ids, "ids")?;
        let off = offsets_vec(offsets)?;
        let off = off.as_deref();
        by_out_dtype!(
            self.inner,
            backward_psw_as(py, &self.inner, &ids, grad_output, off)
        )
    }

    /// Portable path (candle ops), for testing the fast path against. Table dtype out.
    #[pyo3(signature = (ids, offsets=None, per_sample_weights=None))]
    fn _forward_portable<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
        per_sample_weights: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::extract(ids, "ids")?;
        let off = offsets_vec(offsets)?;
        let off = off.as_deref();
        let shape = ids_shape(&ids);
        let w = weights_vec::<f64>(per_sample_weights, &shape)?;
        let t = with_ids!(ids, |ids, shape| {
            let inner = self.inner.clone();
            without_gil(py, || inner.forward_portable(ids, shape, off, w.as_deref()))?
        });
        tensor_to_numpy(py, &t)
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
    fn mode(&self) -> &'static str {
        mode_name(self.inner.mode())
    }
    #[getter]
    fn padding_idx(&self) -> Option<usize> {
        self.inner.padding_idx()
    }
    #[getter]
    fn include_last_offset(&self) -> bool {
        self.inner.include_last_offset()
    }
    #[getter]
    fn max_norm(&self) -> Option<f64> {
        self.inner.embedding().config().max_norm
    }
    #[getter]
    fn norm_type(&self) -> f64 {
        self.inner.embedding().config().norm_type
    }
    #[getter]
    fn frozen(&self) -> bool {
        self.inner.embedding().is_frozen()
    }
    #[getter]
    fn dtype(&self) -> &'static str {
        dtype_str(&self.inner.weight())
    }
    #[getter]
    fn device(&self) -> String {
        device_name(&self.inner.embedding().device())
    }

    /// Save table and bag config to a safetensors file (atomic).
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let inner = self.inner.clone();
        without_gil(py, move || inner.save(&path))
    }

    /// Load a bag saved by `save` (an `Embedding.save` file loads with `mode="mean"`).
    #[classmethod]
    #[pyo3(signature = (path, *, device="cpu"))]
    fn load(
        _cls: &Bound<'_, pyo3::types::PyType>,
        py: Python<'_>,
        path: std::path::PathBuf,
        device: &str,
    ) -> PyResult<Self> {
        let device = parse_device(device).py()?;
        let inner = without_gil(py, move || EmbeddingBag::load(&path, &device))?;
        Ok(PyEmbeddingBag {
            inner: Arc::new(inner),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "EmbeddingBag({}, {}, mode='{}', dtype='{}', device='{}'{})",
            self.inner.num_embeddings(),
            self.inner.embedding_dim(),
            mode_name(self.inner.mode()),
            dtype_str(&self.inner.weight()),
            device_name(&self.inner.embedding().device()),
            self.inner
                .padding_idx()
                .map_or(String::new(), |p| format!(", padding_idx={p}"))
        )
    }
}

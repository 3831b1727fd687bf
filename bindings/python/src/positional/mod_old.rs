//! Positional encodings (sinusoidal, learned, BERT embeddings, ALiBi, T5 relative bias):
//! translation only; the work is in `candle_embed::positional`.

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_embed::dtype::{parse_dtype, Float};
use candle_embed::ids::Id;
use candle_embed::positional::alibi;
use candle_embed::positional::combined::{
    position_ids_from_padding, PositionKind, TransformerEmbeddings, TransformerEmbeddingsConfig,
};
use candle_embed::positional::learned::LearnedPositionalEmbedding;
use candle_embed::positional::relative::{self, BucketConfig, RelativePositionBias};
use candle_embed::positional::sinusoidal::{
    sinusoidal_table_portable, SinusoidalConfig, SinusoidalLayout, SinusoidalPositionalEncoding,
};
use numpy::{Element, PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args;
use crate::arrays::{float_array, new_output, IdArray};
use crate::embedding::PyEmbedding;
use crate::errors::{type_error, value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::sparse_grad::PySparseGrad;
use crate::tables::{dtype_str, numpy_to_tensor, tensor_to_numpy};
use crate::with_ids;

/// A float32 or float64 dtype (the encodings' NumPy-facing types).
fn py_dtype(name: &str) -> PyResult<DType> {
    match parse_dtype(name).py()? {
        d @ (DType::F32 | DType::F64) => Ok(d),
        _ => Err(type_error(format!(
            "positional encodings support float32 and float64, got '{name}'"
        ))),
    }
}

/// `f(x, shape, out)` on a float array `x` cast to `T`, into a fresh array of `x`'s shape.
fn map_seq<'py, T: Float + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    what: &str,
    f: impl FnOnce(&[T], &[usize], &mut [T]) -> candle_embed::Result<()> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let arr = float_array::<T>(x, what)?;
    let shape = arr.shape().to_vec();
    let src = c_order(&arr);
    let out = new_output::<T>(py, &shape);
    {
        // SAFETY: `out` is fresh and not yet shared with Python.
        let dst = unsafe { out.as_slice_mut() }.map_err(|e| value_error(e.to_string()))?;
        let src: &[T] = &src;
        without_gil(py, || f(src, &shape, dst))?;
    }
    Ok(out.into_any())
}

/// The elements of a float array in C (logical) order: borrowed only when C-contiguous.
/// (`PyReadonlyArray::as_slice` also succeeds on Fortran-ordered arrays, giving memory order.)
fn c_order<'a, T: Element + Copy>(a: &'a numpy::PyReadonlyArrayDyn<'_, T>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// A `Vec<T>` as a NumPy array of `shape`.
fn vec_to_numpy<'py, T: Element>(
    py: Python<'py>,
    v: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, v)
        .reshape(shape.to_vec())?
        .into_any())
}

/// `obj` itself, or a C-ordered copy when it is a non-C-contiguous ndarray (the shared
/// `with_ids!` reads a Fortran-ordered array in memory order).
fn c_contig<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match obj.cast::<numpy::PyUntypedArray>() {
        Ok(a) if !a.is_c_contiguous() => obj
            .py()
            .import("numpy")?
            .call_method1("ascontiguousarray", (obj,)),
        _ => Ok(obj.clone()),
    }
}

/// Ids of any integer dtype as `(Vec<i64>, shape)` (u64 beyond i64 saturates: still out of range).
fn ids_i64(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<i64>, Vec<usize>)> {
    let arr = IdArray::extract(&c_contig(obj)?, what)?;
    Ok(with_ids!(arr, |ids, shape| {
        (
            ids.iter()
                .map(|i| i.wide().clamp(i64::MIN as i128, i64::MAX as i128) as i64)
                .collect(),
            shape.to_vec(),
        )
    }))
}

// ---------------------------------------------------------------------------------------------

#[pyclass(frozen, name = "SinusoidalPositionalEncoding", module = "candle_embed")]
pub struct PySinusoidalPositionalEncoding {
    inner: Arc<SinusoidalPositionalEncoding>,
}

#[pymethods]
impl PySinusoidalPositionalEncoding {
    #[new]
    #[pyo3(signature = (dim, *, max_len=4096, base=10000.0, layout="interleaved", dtype="float32"))]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] dim: usize,
        #[pyo3(from_py_with = args::size)] max_len: usize,
        base: f64,
        layout: &str,
        dtype: &str,
    ) -> PyResult<Self> {
        let layout = SinusoidalLayout::parse(layout).py()?;
        let dtype = py_dtype(dtype)?;
        let cfg = SinusoidalConfig {
            max_len,
            base,
            layout,
        };
        let inner = without_gil(py, || {
            SinusoidalPositionalEncoding::new(dim, cfg, dtype, &Device::Cpu)
        })?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// `x + table[offset:offset+T]` for `x` of shape `(..., T, dim)`.
    #[pyo3(signature = (x, *, offset=0))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pe = &self.inner;
        match pe.table().dtype() {
            DType::F64 => map_seq::<f64>(py, x, "x", |x, s, o| pe.add_into(x, s, offset, o)),
            _ => map_seq::<f32>(py, x, "x", |x, s, o| pe.add_into(x, s, offset, o)),
        }
    }

    #[getter]
    fn table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, self.inner.table())
    }
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    #[getter]
    fn max_len(&self) -> usize {
        self.inner.config().max_len
    }
    #[getter]
    fn base(&self) -> f64 {
        self.inner.config().base
    }
    #[getter]
    fn layout(&self) -> &'static str {
        self.inner.config().layout.name()
    }
    #[getter]
    fn dtype(&self) -> &'static str {
        dtype_str(self.inner.table())
    }
    /// The table from the portable path (candle ops), for tests.
    fn _table_portable<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = *self.inner.config();
        let (dim, dt) = (self.inner.dim(), self.inner.table().dtype());
        let t = without_gil(py, || {
            sinusoidal_table_portable(c.max_len, dim, c.base, c.layout, dt, &Device::Cpu)
        })?;
        tensor_to_numpy(py, &t)
    }
    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "SinusoidalPositionalEncoding({}, max_len={}, base={}, layout='{}', dtype='{}')",
            self.inner.dim(),
            c.max_len,
            c.base,
            c.layout.name(),
            dtype_str(self.inner.table())
        )
    }
}

// ---------------------------------------------------------------------------------------------

#[pyclass(frozen, name = "LearnedPositionalEmbedding", module = "candle_embed")]
pub struct PyLearnedPositionalEmbedding {
    inner: Arc<LearnedPositionalEmbedding>,
}

#[pymethods]
impl PyLearnedPositionalEmbedding {
    #[new]
    #[pyo3(signature = (max_len, dim, *, seed=None, dtype="float32"))]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] max_len: usize,
        #[pyo3(from_py_with = args::size)] dim: usize,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        dtype: &str,
    ) -> PyResult<Self> {
        let dtype = py_dtype(dtype)?;
        let inner = without_gil(py, || {
            LearnedPositionalEmbedding::new(max_len, dim, dtype, &Device::Cpu, seed)
        })?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// `x + W[offset:offset+T]` for `x` of shape `(..., T, dim)`.
    #[pyo3(signature = (x, offset=0))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let l = &self.inner;
        match l.embedding().dtype() {
            DType::F64 => map_seq::<f64>(py, x, "x", |x, s, o| l.add_into(x, s, offset, o)),
            _ => map_seq::<f32>(py, x, "x", |x, s, o| l.add_into(x, s, offset, o)),
        }
    }

    /// SparseGrad over rows `offset..offset+T`: `grad` summed over its leading dims.
    #[pyo3(signature = (grad, offset=0))]
    fn backward(
        &self,
        py: Python<'_>,
        grad: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<PySparseGrad> {
        let l = &self.inner;
        let g = match l.embedding().dtype() {
            DType::F64 => {
                let a = float_array::<f64>(grad, "grad")?;
                let (s, v) = (a.shape().to_vec(), c_order(&a));
                let v: &[f64] = &v;
                without_gil(py, || l.backward(v, &s, offset))?
            }
            _ => {
                let a = float_array::<f32>(grad, "grad")?;
                let (s, v) = (a.shape().to_vec(), c_order(&a));
                let v: &[f32] = &v;
                without_gil(py, || l.backward(v, &s, offset))?
            }
        };
        Ok(PySparseGrad::wrap(g))
    }

    /// The position table as an Embedding (shared: optimizer updates show through).
    #[getter]
    fn embedding(&self) -> PyEmbedding {
        PyEmbedding {
            inner: self.inner.embedding().clone(),
        }
    }
    #[getter]
    fn get_weight<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, &self.inner.embedding().weight())
    }
    #[setter]
    fn set_weight(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = numpy_to_tensor(value, "weight")?;
        self.inner.embedding().set_weight(&t).py()
    }
    #[getter]
    fn max_len(&self) -> usize {
        self.inner.max_len()
    }
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn __repr__(&self) -> String {
        format!(
            "LearnedPositionalEmbedding({}, {})",
            self.inner.max_len(),
            self.inner.dim()
        )
    }
}

// ---------------------------------------------------------------------------------------------

#[pyclass(frozen, name = "TransformerEmbeddings", module = "candle_embed")]
pub struct PyTransformerEmbeddings {
    inner: Arc<TransformerEmbeddings>,
}

fn te_forward<'py, T: Float + Element>(
    py: Python<'py>,
    te: &TransformerEmbeddings,
    ids: &[i64],
    shape: &[usize],
    tt: Option<&[i64]>,
    pid: Option<&[i64]>,
) -> PyResult<Bound<'py, PyAny>> {
    let v = without_gil(py, || te.forward::<i64, T>(ids, shape, tt, pid))?;
    let mut full = shape.to_vec();
    full.push(te.dim());
    vec_to_numpy(py, v, &full)
}

fn te_backward<T: Float + Element>(
    py: Python<'_>,
    te: &TransformerEmbeddings,
    grad: &Bound<'_, PyAny>,
) -> PyResult<candle_embed::positional::combined::TransformerEmbeddingsGrads> {
    let a = float_array::<T>(grad, "grad")?;
    let (s, v) = (a.shape().to_vec(), c_order(&a));
    let v: &[T] = &v;
    without_gil(py, || te.backward(v, &s))
}

#[pymethods]
impl PyTransformerEmbeddings {
    #[new]
    #[pyo3(signature = (vocab_size, dim, *, max_positions=512, type_vocab_size=2, position="learned",
        padding_idx=None, layer_norm_eps=1e-12, dropout=0.0, seed=None, dtype="float32"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] vocab_size: usize,
        #[pyo3(from_py_with = args::size)] dim: usize,
        #[pyo3(from_py_with = args::size)] max_positions: usize,
        #[pyo3(from_py_with = args::size)] type_vocab_size: usize,
        position: &str,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        layer_norm_eps: f64,
        dropout: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        dtype: &str,
    ) -> PyResult<Self> {
        let cfg = TransformerEmbeddingsConfig {
            max_positions,
            type_vocab_size,
            position: PositionKind::parse(position).py()?,
            padding_idx,
            layer_norm_eps,
            dropout,
        };
        let (v, d) = (vocab_size, dim);
        let dtype = py_dtype(dtype)?;
        let inner = without_gil(py, || {
            TransformerEmbeddings::new(v, d, cfg, dtype, &Device::Cpu, seed)
        })?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// LayerNorm(token[ids] + position[position_ids] + segment[token_type_ids]), then dropout.
    #[pyo3(signature = (ids, token_type_ids=None, position_ids=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        token_type_ids: Option<&Bound<'py, PyAny>>,
        position_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (ids, shape) = ids_i64(ids, "ids")?;
        let tt = token_type_ids
            .map(|t| ids_i64(t, "token_type_ids"))
            .transpose()?;
        let pid = position_ids
            .map(|p| ids_i64(p, "position_ids"))
            .transpose()?;
        if let Some((_, s)) = &tt {
            if s != &shape {
                return Err(value_error(format!(
                    "token_type_ids has shape {s:?}, ids has shape {shape:?}"
                )));
            }
        }
        if let Some((_, s)) = &pid {
            let t = shape.last().copied().unwrap_or(0);
            if s != &shape && s.as_slice() != [t] {
                return Err(value_error(format!(
                    "position_ids has shape {s:?}: expected ids' shape {shape:?} or ({t},)"
                )));
            }
        }
        let (tt, pid) = (
            tt.as_ref().map(|t| t.0.as_slice()),
            pid.as_ref().map(|p| p.0.as_slice()),
        );
        let te = &self.inner;
        match te.dtype() {
            DType::F64 => te_forward::<f64>(py, te, &ids, &shape, tt, pid),
            _ => te_forward::<f32>(py, te, &ids, &shape, tt, pid),
        }
    }

    /// Gradients for the last forward call's output: a dict with SparseGrads "token",
    /// "position" (None when sinusoidal), "segment" and dense "layer_norm_weight"/"layer_norm_bias".
    fn backward<'py>(
        &self,
        py: Python<'py>,
        grad: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let te = &self.inner;
        let g = match te.dtype() {
            DType::F64 => te_backward::<f64>(py, te, grad)?,
            _ => te_backward::<f32>(py, te, grad)?,
        };
        let d = PyDict::new(py);
        d.set_item("token", PySparseGrad::wrap(g.token))?;
        d.set_item("position", g.position.map(PySparseGrad::wrap))?;
        d.set_item("segment", PySparseGrad::wrap(g.segment))?;
        d.set_item(
            "layer_norm_weight",
            tensor_to_numpy(py, &g.layer_norm_weight)?,
        )?;
        d.set_item("layer_norm_bias", tensor_to_numpy(py, &g.layer_norm_bias)?)?;
        Ok(d)
    }

    #[getter]
    fn token(&self) -> PyEmbedding {
        PyEmbedding {
            inner: self.inner.token().clone(),
        }
    }
    #[getter]
    fn position(&self) -> PyEmbedding {
        PyEmbedding {
            inner: self.inner.position().clone(),
        }
    }
    #[getter]
    fn segment(&self) -> PyEmbedding {
        PyEmbedding {
            inner: self.inner.segment().clone(),
        }
    }
    #[getter]
    fn get_layer_norm_weight<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, &self.inner.layer_norm_weight())
    }
    #[setter]
    fn set_layer_norm_weight(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = numpy_to_tensor(value, "layer_norm_weight")?;
        self.inner.set_layer_norm_weight(&t).py()
    }
    #[getter]
    fn get_layer_norm_bias<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, &self.inner.layer_norm_bias())
    }
    #[setter]
    fn set_layer_norm_bias(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = numpy_to_tensor(value, "layer_norm_bias")?;
        self.inner.set_layer_norm_bias(&t).py()
    }
    #[getter]
    fn get_training(&self) -> bool {
        self.inner.training()
    }
    #[setter]
    fn set_training(&self, on: bool) {
        self.inner.set_training(on)
    }
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    #[getter]
    fn dropout(&self) -> f64 {
        self.inner.config().dropout
    }
    #[getter]
    fn layer_norm_eps(&self) -> f64 {
        self.inner.config().layer_norm_eps
    }
    #[getter]
    fn dtype(&self) -> &'static str {
        candle_embed::dtype::dtype_name(self.inner.dtype())
    }
    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "TransformerEmbeddings({}, {}, max_positions={}, type_vocab_size={}, position='{}', dropout={})",
            self.inner.token().num_embeddings(),
            self.inner.dim(),
            c.max_positions,
            c.type_vocab_size,
            if c.position == PositionKind::Learned { "learned" } else { "sinusoidal" },
            c.dropout
        )
    }
}

/// RoBERTa-style position ids: `(cumsum(ids != pad) + past_length)·(ids != pad) + pad`, per row.
#[pyfunction(name = "position_ids_from_padding")]
#[pyo3(signature = (ids, padding_idx, *, past_length=0))]
fn position_ids_from_padding_py<'py>(
    py: Python<'py>,
    ids: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::signed)] padding_idx: i64,
    #[pyo3(from_py_with = args::signed)] past_length: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let (v, shape) = ids_i64(ids, "ids")?;
    if shape.is_empty() {
        return Err(value_error("ids must have at least one dimension"));
    }
    if past_length < 0 {
        return Err(value_error(format!(
            "past_length must be >= 0, got {past_length}"
        )));
    }
    let t = shape[shape.len() - 1];
    let out = position_ids_from_padding(&v, t, padding_idx, past_length).py()?;
    vec_to_numpy(py, out, &shape)
}

// ---------------------------------------------------------------------------------------------

/// ALiBi slopes, one per head.
#[pyfunction]
#[pyo3(signature = (num_heads, *, dtype="float32"))]
fn alibi_slopes<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::size)] num_heads: usize,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let h = num_heads;
    let s = alibi::alibi_slopes(h).py()?;
    match py_dtype(dtype)? {
        DType::F64 => vec_to_numpy(py, s, &[h]),
        _ => vec_to_numpy(
            py,
            s.into_iter().map(|v| v as f32).collect::<Vec<f32>>(),
            &[h],
        ),
    }
}

/// `-slope_h * |i + offset - j|`, shape `(num_heads, q_len, k_len)`.
#[pyfunction]
#[pyo3(signature = (num_heads, q_len, k_len, *, offset=0, dtype="float32"))]
fn alibi_bias<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::size)] num_heads: usize,
    #[pyo3(from_py_with = args::size)] q_len: usize,
    #[pyo3(from_py_with = args::size)] k_len: usize,
    #[pyo3(from_py_with = args::signed)] offset: i64,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (h, q, k) = (num_heads, q_len, k_len);
    match py_dtype(dtype)? {
        DType::F64 => {
            let v = without_gil(py, || alibi::alibi_bias::<f64>(h, q, k, offset))?;
            vec_to_numpy(py, v, &[h, q, k])
        }
        _ => {
            let v = without_gil(py, || alibi::alibi_bias::<f32>(h, q, k, offset))?;
            vec_to_numpy(py, v, &[h, q, k])
        }
    }
}

/// The portable (candle ops) ALiBi bias, for tests.
#[pyfunction]
#[pyo3(signature = (num_heads, q_len, k_len, *, offset=0, dtype="float32"))]
fn _alibi_bias_portable<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::size)] num_heads: usize,
    #[pyo3(from_py_with = args::size)] q_len: usize,
    #[pyo3(from_py_with = args::size)] k_len: usize,
    #[pyo3(from_py_with = args::signed)] offset: i64,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (h, q, k) = (num_heads, q_len, k_len);
    let dt = py_dtype(dtype)?;
    let t = without_gil(py, || {
        alibi::alibi_bias_portable(h, q, k, offset, dt, &Device::Cpu)
    })?;
    tensor_to_numpy(py, &t)
}

fn bucket_config(num_buckets: usize, max_distance: usize, bidirectional: bool) -> BucketConfig {
    BucketConfig {
        num_buckets,
        max_distance,
        bidirectional,
    }
}

/// T5's bucket of each relative position (`key - query`), int64, same shape.
#[pyfunction]
#[pyo3(signature = (relative_position, *, bidirectional=true, num_buckets=32, max_distance=128))]
fn relative_position_bucket<'py>(
    py: Python<'py>,
    relative_position: &Bound<'py, PyAny>,
    bidirectional: bool,
    #[pyo3(from_py_with = args::size)] num_buckets: usize,
    #[pyo3(from_py_with = args::size)] max_distance: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let cfg = bucket_config(num_buckets, max_distance, bidirectional);
    let arr = IdArray::extract(&c_contig(relative_position)?, "relative_position")?;
    let (v, shape) = with_ids!(arr, |rel, shape| {
        (
            without_gil(py, || relative::relative_position_bucket(rel, &cfg))?,
            shape.to_vec(),
        )
    });
    vec_to_numpy(py, v, &shape)
}

#[pyclass(frozen, name = "RelativePositionBias", module = "candle_embed")]
pub struct PyRelativePositionBias {
    inner: Arc<RelativePositionBias>,
}

fn rpb_grad<T: Float + Element>(
    py: Python<'_>,
    r: &RelativePositionBias,
    grad: &Bound<'_, PyAny>,
    q: usize,
    k: usize,
    offset: i64,
) -> PyResult<PySparseGrad> {
    let a = float_array::<T>(grad, "grad")?;
    let h = r.num_heads();
    if a.shape() != [h, q, k] {
        return Err(value_error(format!(
            "grad has shape {:?}, expected ({h}, {q}, {k})",
            a.shape()
        )));
    }
    let v = c_order(&a);
    let v: &[T] = &v;
    Ok(PySparseGrad::wrap(without_gil(py, || {
        r.backward(v, q, k, offset)
    })?))
}

#[pymethods]
impl PyRelativePositionBias {
    #[new]
    #[pyo3(signature = (num_heads, *, num_buckets=32, max_distance=128, bidirectional=true, seed=None,
        dtype="float32"))]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] num_heads: usize,
        #[pyo3(from_py_with = args::size)] num_buckets: usize,
        #[pyo3(from_py_with = args::size)] max_distance: usize,
        bidirectional: bool,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        dtype: &str,
    ) -> PyResult<Self> {
        let cfg = bucket_config(num_buckets, max_distance, bidirectional);
        let h = num_heads;
        let dt = py_dtype(dtype)?;
        let inner = without_gil(py, || {
            RelativePositionBias::new(h, cfg, dt, &Device::Cpu, seed)
        })?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The `(num_heads, q_len, k_len)` bias `W[bucket(j - (i + offset)), h]`.
    #[pyo3(signature = (q_len, k_len, *, offset=0))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::size)] q_len: usize,
        #[pyo3(from_py_with = args::size)] k_len: usize,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (q, k) = (q_len, k_len);
        let r = &self.inner;
        let shape = [r.num_heads(), q, k];
        match r.embedding().dtype() {
            DType::F64 => {
                vec_to_numpy(py, without_gil(py, || r.bias::<f64>(q, k, offset))?, &shape)
            }
            _ => vec_to_numpy(py, without_gil(py, || r.bias::<f32>(q, k, offset))?, &shape),
        }
    }

    /// The portable path (bucket ids + candle `index_select`), for tests.
    #[pyo3(signature = (q_len, k_len, *, offset=0))]
    fn _bias_portable<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::size)] q_len: usize,
        #[pyo3(from_py_with = args::size)] k_len: usize,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (q, k) = (q_len, k_len);
        let r = &self.inner;
        let t: Tensor = without_gil(py, || r.bias_portable(q, k, offset))?;
        tensor_to_numpy(py, &t)
    }

    /// SparseGrad over the buckets given `grad` of shape `(num_heads, q_len, k_len)`.
    #[pyo3(signature = (grad, q_len, k_len, *, offset=0))]
    fn backward(
        &self,
        py: Python<'_>,
        grad: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::size)] q_len: usize,
        #[pyo3(from_py_with = args::size)] k_len: usize,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<PySparseGrad> {
        let (q, k) = (q_len, k_len);
        let r = &self.inner;
        match r.embedding().dtype() {
            DType::F64 => rpb_grad::<f64>(py, r, grad, q, k, offset),
            _ => rpb_grad::<f32>(py, r, grad, q, k, offset),
        }
    }

    #[getter]
    fn embedding(&self) -> PyEmbedding {
        PyEmbedding {
            inner: self.inner.embedding().clone(),
        }
    }
    #[getter]
    fn get_weight<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, &self.inner.embedding().weight())
    }
    #[setter]
    fn set_weight(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = numpy_to_tensor(value, "weight")?;
        self.inner.embedding().set_weight(&t).py()
    }
    #[getter]
    fn num_heads(&self) -> usize {
        self.inner.num_heads()
    }
    #[getter]
    fn num_buckets(&self) -> usize {
        self.inner.config().num_buckets
    }
    #[getter]
    fn max_distance(&self) -> usize {
        self.inner.config().max_distance
    }
    #[getter]
    fn bidirectional(&self) -> bool {
        self.inner.config().bidirectional
    }
    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "RelativePositionBias({}, num_buckets={}, max_distance={}, bidirectional={})",
            self.inner.num_heads(),
            c.num_buckets,
            c.max_distance,
            if c.bidirectional { "True" } else { "False" }
        )
    }
}

/// Register the classes and functions of this file.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySinusoidalPositionalEncoding>()?;
    m.add_class::<PyLearnedPositionalEmbedding>()?;
    m.add_class::<PyTransformerEmbeddings>()?;
    m.add_class::<PyRelativePositionBias>()?;
    m.add_function(wrap_pyfunction!(alibi_slopes, m)?)?;
    m.add_function(wrap_pyfunction!(alibi_bias, m)?)?;
    m.add_function(wrap_pyfunction!(_alibi_bias_portable, m)?)?;
    m.add_function(wrap_pyfunction!(relative_position_bucket, m)?)?;
    m.add_function(wrap_pyfunction!(position_ids_from_padding_py, m)?)?;
    Ok(())
}

//! `candle_embed.RotaryEmbedding`: translation only; the work is in
//! `candle_embed::positional::rotary`.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use candle_embed::positional::rotary::{
    Positions, RopeFloat, RopeLayout, RotaryConfig, RotaryEmbedding,
};
use numpy::{
    Element, PyArray1, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArrayDyn,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::args;
use crate::arrays::{as_ndarray, contiguous, new_output, out_buffer, IdArray};
use crate::errors::{type_error, value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::tables::tensor_to_numpy;
use crate::with_ids;

/// Rotary position embedding (see the stub `_native.pyi` for the Python-level documentation).
#[pyclass(frozen, name = "RotaryEmbedding", module = "candle_embed")]
pub struct PyRotaryEmbedding {
    pub inner: Arc<RotaryEmbedding>,
}

/// A Python value of a `rope_parameters` dict as JSON (bool, int, float, str, None, lists).
fn to_json(v: &Bound<'_, PyAny>, key: &str) -> PyResult<serde_json::Value> {
    use serde_json::Value;
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(Value::from(i));
        }
        return Ok(Value::from(v.extract::<f64>()?));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::String(s.extract::<String>()?));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in v.try_iter()? {
            out.push(to_json(&item?, key)?);
        }
        return Ok(Value::Array(out));
    }
    if v.is_instance_of::<PyFloat>() {
        let f: f64 = v.extract()?;
        return serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| value_error(format!("scaling '{key}' must be finite, got {f}")));
    }
    // NumPy scalars and arrays: their Python equivalent.
    if v.hasattr("tolist")? {
        return to_json(&v.call_method0("tolist")?, key);
    }
    Err(type_error(format!(
        "scaling '{key}' has an unsupported type {}",
        v.get_type().name()?
    )))
}

fn scaling_json(scaling: Option<&Bound<'_, PyAny>>) -> PyResult<serde_json::Value> {
    let Some(s) = scaling else {
        return Ok(serde_json::Value::Null);
    };
    if s.is_none() {
        return Ok(serde_json::Value::Null);
    }
    let dict = s.cast::<PyDict>().map_err(|_| {
        type_error(format!(
            "scaling must be a dict of rope parameters, got {}",
            s.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let mut map = serde_json::Map::new();
    for (k, v) in dict.iter() {
        let key: String = k
            .extract()
            .map_err(|_| type_error("scaling keys must be strings"))?;
        let value = to_json(&v, &key)?;
        map.insert(key, value);
    }
    Ok(serde_json::Value::Object(map))
}

fn parse_layout(layout: &str) -> PyResult<RopeLayout> {
    match layout {
        "half" | "neox" | "rotate_half" => Ok(RopeLayout::Half),
        "interleaved" | "gptj" | "rotate_every_two" => Ok(RopeLayout::Interleaved),
        other => Err(value_error(format!(
            "layout must be 'half' or 'interleaved', got '{other}'"
        ))),
    }
}

fn positions(obj: Option<&Bound<'_, PyAny>>, offset: i64) -> PyResult<Positions> {
    match obj {
        Some(p) if !p.is_none() => {
            if offset != 0 {
                return Err(value_error(
                    "give either positions or offset, not both (offset must stay 0)",
                ));
            }
            let ids = IdArray::extract(p, "positions")?;
            with_ids!(ids, |ids, shape| Positions::from_ids(ids, shape).py())
        }
        _ => Positions::offset(offset).py(),
    }
}

/// Rotate `x` (element type `T`) with the fast kernel into a fresh array or `out`.
fn apply_as<'py, T: RopeFloat + Element>(
    py: Python<'py>,
    rope: &Arc<RotaryEmbedding>,
    x: &Bound<'py, PyAny>,
    pos: &Positions,
    out: Option<&Bound<'py, PyAny>>,
    transpose: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let a: PyReadonlyArrayDyn<'py, T> = x.extract()?;
    let shape = a.shape().to_vec();
    let xs = contiguous(&a);
    let xs: &[T] = &xs;
    match out {
        Some(o) => {
            let mut buf = out_buffer::<T>(o, &shape)?;
            let dst = buf.as_slice_mut().map_err(|e| value_error(e.to_string()))?;
            without_gil(py, || rope.apply_into(xs, &shape, pos, dst, transpose))?;
            Ok(o.clone())
        }
        None => {
            let arr = new_output::<T>(py, &shape);
            {
                // SAFETY: `arr` is fresh and not yet shared with Python.
                let dst = unsafe { arr.as_slice_mut() }.map_err(|e| value_error(e.to_string()))?;
                without_gil(py, || rope.apply_into(xs, &shape, pos, dst, transpose))?;
            }
            Ok(arr.into_any())
        }
    }
}

/// `x` as an ndarray of float16/float32/float64 (other float widths and non-floats refused).
fn float_input<'py>(x: &Bound<'py, PyAny>, what: &str) -> PyResult<(Bound<'py, PyAny>, usize)> {
    let arr = as_ndarray(x)?;
    let dt = arr.dtype();
    match (dt.kind(), dt.itemsize()) {
        (b'f', n @ (2 | 4 | 8)) => {
            if dt.is_native_byteorder().unwrap_or(true) {
                Ok((arr.into_any(), n))
            } else {
                let native =
                    arr.call_method1("astype", (dt.call_method1("newbyteorder", ("=",))?,))?;
                Ok((native, n))
            }
        }
        _ => Err(type_error(format!(
            "{what} must be a float16, float32 or float64 array, got dtype {}",
            dt.str()?
        ))),
    }
}

impl PyRotaryEmbedding {
    #[allow(clippy::too_many_arguments)]
    fn apply_impl<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        pos: Option<&Bound<'py, PyAny>>,
        offset: i64,
        out: Option<&Bound<'py, PyAny>>,
        transpose: bool,
        what: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (arr, width) = float_input(x, what)?;
        let pos = positions(pos, offset)?;
        match width {
            2 => apply_as::<half::f16>(py, &self.inner, &arr, &pos, out, transpose),
            4 => apply_as::<f32>(py, &self.inner, &arr, &pos, out, transpose),
            _ => apply_as::<f64>(py, &self.inner, &arr, &pos, out, transpose),
        }
    }

    /// The candle-op paths (portable / fused / autograd), for tests.
    fn tensor_path<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        pos: Option<&Bound<'py, PyAny>>,
        offset: i64,
        f: impl FnOnce(&RotaryEmbedding, &Tensor, &Positions) -> candle_embed::Result<Tensor> + Send,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (arr, _) = float_input(x, "x")?;
        let t = crate::tables::numpy_to_tensor(&arr, "x")?;
        let pos = positions(pos, offset)?;
        let inner = self.inner.clone();
        let r = without_gil(py, move || f(&inner, &t, &pos))?;
        tensor_to_numpy(py, &r)
    }
}

#[pymethods]
impl PyRotaryEmbedding {
    #[new]
    #[pyo3(signature = (head_dim, *, base=10000.0, max_position_embeddings=2048,
        partial_rotary_factor=1.0, layout="half", scaling=None))]
    fn new(
        #[pyo3(from_py_with = args::size)] head_dim: usize,
        base: f64,
        #[pyo3(from_py_with = args::size)] max_position_embeddings: usize,
        partial_rotary_factor: f64,
        layout: &str,
        scaling: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let cfg = RotaryConfig {
            base,
            max_position_embeddings,
            partial_rotary_factor,
            layout: parse_layout(layout)?,
            ..RotaryConfig::default()
        }
        .with_rope_parameters(&scaling_json(scaling)?)
        .py()?;
        let inner = RotaryEmbedding::new(head_dim, cfg).py()?;
        Ok(PyRotaryEmbedding {
            inner: Arc::new(inner),
        })
    }

    /// The inverse frequencies at initialisation, float64 `(rotary_dim // 2,)`.
    #[getter]
    fn inv_freq<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.inner.inv_freq())
    }

    #[getter]
    fn attention_scaling(&self) -> f64 {
        self.inner.attention_scaling()
    }

    /// The inverse frequencies in effect for a sequence of `seq_len` positions.
    fn frequencies<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::size)] seq_len: usize,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let n = seq_len;
        Ok(PyArray1::from_vec(py, self.inner.frequencies(n).0))
    }

    /// `(cos, sin)`, each `positions.shape + (rotary_dim // 2,)`, float64, attention scaling
    /// applied.
    fn cos_sin<'py>(
        &self,
        py: Python<'py>,
        positions: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let ids = IdArray::extract(positions, "positions")?;
        let (pos, mut shape) = with_ids!(ids, |ids, shape| Ok::<_, PyErr>((
            Positions::from_ids(ids, shape).py()?,
            shape.to_vec()
        )))?;
        let t = *shape.last().unwrap_or(&0);
        let inner = self.inner.clone();
        let (c, s) = without_gil(py, move || inner.cos_sin(&pos, t))?;
        shape.push(self.inner.rotary_dim() / 2);
        Ok((
            PyArray1::from_vec(py, c).reshape(shape.clone())?.into_any(),
            PyArray1::from_vec(py, s).reshape(shape)?.into_any(),
        ))
    }

    /// Rotate `x` `(..., T, head_dim)` at `positions` (`(T,)` or `(B, T)`) or
    /// `offset..offset+T`.
    #[pyo3(signature = (x, positions=None, *, offset=0, out=None))]
    fn apply<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        positions: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.apply_impl(py, x, positions, offset, out, false, "x")
    }

    /// The backward of `apply`: the transposed rotation of `grad_output`.
    #[pyo3(signature = (grad_output, positions=None, *, offset=0, out=None))]
    fn apply_backward<'py>(
        &self,
        py: Python<'py>,
        grad_output: &Bound<'py, PyAny>,
        positions: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.apply_impl(py, grad_output, positions, offset, out, true, "grad_output")
    }

    /// The portable candle-ops path (tests).
    #[pyo3(signature = (x, positions=None, *, offset=0, backward=false))]
    fn _apply_portable<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        positions: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
        backward: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.tensor_path(py, x, positions, offset, move |r, t, p| {
            if backward {
                r.backward_portable(t, p)
            } else {
                r.forward_portable(t, p)
            }
        })
    }

    /// candle-nn's fused rope / rope_i (tests; 4-D x only).
    #[pyo3(signature = (x, positions=None, *, offset=0))]
    fn _apply_fused<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        positions: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.tensor_path(py, x, positions, offset, |r, t, p| r.forward_fused(t, p))
    }

    /// The gradient of `sum(apply(x) * grad_output)` w.r.t. `x` through candle's autograd on
    /// the CustomOp path (tests).
    #[pyo3(signature = (x, grad_output, positions=None, *, offset=0))]
    fn _autograd<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        grad_output: &Bound<'py, PyAny>,
        positions: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (g, _) = float_input(grad_output, "grad_output")?;
        let g = crate::tables::numpy_to_tensor(&g, "grad_output")?;
        self.tensor_path(py, x, positions, offset, move |r, t, p| {
            let v = candle_core::Var::from_tensor(t)?;
            let y = r.forward(v.as_tensor(), p)?;
            let loss = (y * g.to_dtype(t.dtype())?)?.sum_all()?;
            let grads = loss.backward()?;
            grads
                .get(v.as_tensor())
                .cloned()
                .ok_or_else(|| candle_embed::Error::InvalidArgument("no gradient reached x".into()))
                .and_then(|t| Ok(t.to_device(&Device::Cpu)?))
        })
    }

    #[getter]
    fn head_dim(&self) -> usize {
        self.inner.head_dim()
    }
    #[getter]
    fn rotary_dim(&self) -> usize {
        self.inner.rotary_dim()
    }
    #[getter]
    fn base(&self) -> f64 {
        self.inner.config().base
    }
    #[getter]
    fn max_position_embeddings(&self) -> usize {
        self.inner.config().max_position_embeddings
    }
    #[getter]
    fn partial_rotary_factor(&self) -> f64 {
        self.inner.config().partial_rotary_factor
    }
    #[getter]
    fn layout(&self) -> &'static str {
        match self.inner.config().layout {
            RopeLayout::Half => "half",
            RopeLayout::Interleaved => "interleaved",
        }
    }
    #[getter]
    fn rope_type(&self) -> &'static str {
        self.inner.config().scaling.name()
    }

    fn __repr__(&self) -> String {
        format!(
            "RotaryEmbedding(head_dim={}, rotary_dim={}, base={}, layout='{}', rope_type='{}')",
            self.head_dim(),
            self.rotary_dim(),
            self.base(),
            self.layout(),
            self.rope_type()
        )
    }
}

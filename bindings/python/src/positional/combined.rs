//! `candle_embed.TransformerEmbeddings` and `position_ids_from_padding`: translation only; the
//! work is in `candle_embed::positional::combined`.

use std::ffi::CStr;
use std::sync::Arc;

use candle_core::Device;
use candle_embed::dtype::dtype_name;
use candle_embed::positional::combined::{
    position_ids_from_padding, ForwardState, PositionKind, TransformerEmbeddings,
    TransformerEmbeddingsConfig,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::py_dtype;
use crate::args;
use crate::arrays::tables::tensor_to_numpy;
use crate::arrays::{vec_output, with_out_float, Floats, IdArray};
use crate::embedding::PyEmbedding;
use crate::errors::{type_error, value_error, IntoPyResult};
use crate::gil::{build_shared, without_gil};
use crate::properties::{getters, tensor_property};
use crate::sparse_grad::PySparseGrad;

/// BERT's embedding block: ``LayerNorm(token[ids] + position[position_ids] +
/// segment[token_type_ids])``, then dropout.
///
/// ``position`` "learned" (a table) or "sinusoidal" (fixed). ``position_padding_idx=p``:
/// RoBERTa's position table (row ``p`` zero, no gradient) and default positions
/// ``p + cumsum(ids != padding_idx)`` (``p`` at padding tokens). Dropout runs only while
/// ``training`` is True.
///
/// ``backward(grad)`` differentiates the **last** forward call (of any thread); threads that
/// share one module call ``y, state = te(ids, return_state=True)`` and
/// ``te.backward(grad, state=state)``.
#[pyclass(frozen, name = "TransformerEmbeddings", module = "candle_embed")]
pub struct PyTransformerEmbeddings {
    pub inner: Arc<TransformerEmbeddings>,
}

/// What ``TransformerEmbeddings.backward`` needs from one forward call (its ids, LayerNorm
/// statistics and dropout mask), returned by ``te(ids, ..., return_state=True)``. Opaque;
/// only the module that made it accepts it.
#[pyclass(frozen, name = "TransformerEmbeddingsState", module = "candle_embed")]
pub struct PyTransformerEmbeddingsState {
    inner: Arc<ForwardState>,
}

#[pymethods]
impl PyTransformerEmbeddingsState {
    /// The shape of the forward call's ids ``(..., T)``.
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.inner.shape().to_vec()
    }

    fn __repr__(&self) -> String {
        format!("TransformerEmbeddingsState(shape={:?})", self.inner.shape())
    }
}

/// The documentation of `TransformerEmbeddings.__call__` (see `docs.rs`).
pub const CALL_DOC: &CStr =
    c"__call__($self, ids, token_type_ids=None, position_ids=None, *, return_state=False)
--

The embeddings of ``ids`` (integers of shape ``(..., T)``): ``(..., T, dim)``, the tables'
dtype. ``position_ids`` defaults to ``0..T-1`` (with ``position_padding_idx``: RoBERTa's
positions from padding) and may have ids' shape or ``(T,)``; ``token_type_ids`` (ids' shape)
defaults to 0. ``return_state=True`` returns ``(embeddings, state)``, the state to pass to
``backward(grad, state=state)``. IndexError for an id outside its table.";

/// An optional id array with the shape it must have, as `i64`.
fn read_i64(
    obj: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<(Vec<i64>, Vec<usize>)>> {
    IdArray::read_opt(obj, what)?
        .map(|a| Ok((a.to_i64(what)?, a.shape().to_vec())))
        .transpose()
}

#[pymethods]
impl PyTransformerEmbeddings {
    #[new]
    #[pyo3(signature = (vocab_size, dim, *, max_positions=512, type_vocab_size=2,
        position=args::default_text("learned"), padding_idx=None, layer_norm_eps=1e-12, dropout=0.0,
        seed=None, dtype=args::default_text("float32"), position_padding_idx=None),
        text_signature = "(vocab_size, dim, *, max_positions=512, type_vocab_size=2, \
        position='learned', padding_idx=None, layer_norm_eps=1e-12, dropout=0.0, seed=None, \
        dtype='float32', position_padding_idx=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] vocab_size: usize,
        #[pyo3(from_py_with = args::size)] dim: usize,
        #[pyo3(from_py_with = args::size)] max_positions: usize,
        #[pyo3(from_py_with = args::size)] type_vocab_size: usize,
        #[pyo3(from_py_with = args::text)] position: String,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        #[pyo3(from_py_with = args::real)] layer_norm_eps: f64,
        #[pyo3(from_py_with = args::real)] dropout: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        #[pyo3(from_py_with = args::text)] dtype: String,
        #[pyo3(from_py_with = args::opt_signed)] position_padding_idx: Option<i64>,
    ) -> PyResult<Self> {
        let cfg = TransformerEmbeddingsConfig {
            max_positions,
            type_vocab_size,
            position: PositionKind::parse(&position).py()?,
            padding_idx,
            position_padding_idx,
            layer_norm_eps,
            dropout,
        };
        let (v, d) = (vocab_size, dim);
        let dtype = py_dtype(&dtype)?;
        Ok(Self {
            inner: build_shared(py, || {
                TransformerEmbeddings::new(v, d, cfg, dtype, &Device::Cpu, seed)
            })?,
        })
    }

    #[pyo3(signature = (ids, token_type_ids=None, position_ids=None, *, return_state=false))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        token_type_ids: Option<&Bound<'py, PyAny>>,
        position_ids: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::flag)] return_state: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::read(ids, "ids")?;
        let shape = ids.shape().to_vec();
        let ids = ids.to_i64("ids")?;
        let tt = read_i64(token_type_ids, "token_type_ids")?;
        let pid = read_i64(position_ids, "position_ids")?;
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
            tt.as_ref().map(|t| &t.0[..]),
            pid.as_ref().map(|p| &p.0[..]),
        );
        let te = &*self.inner;
        let mut full = shape.clone();
        full.push(te.dim());
        let (y, state) = with_out_float!(te.dtype(), T => {
            let (y, state) =
                without_gil(py, || te.forward_with_state::<i64, T>(&ids, &shape, tt, pid))?;
            (vec_output(py, y, &full)?, state)
        });
        if !return_state {
            return Ok(y);
        }
        let state = Bound::new(py, PyTransformerEmbeddingsState { inner: state })?;
        Ok((y, state).into_pyobject(py)?.into_any())
    }

    /// Gradients for ``grad`` (the output shape of the forward call differentiated: the one
    /// that returned ``state``, or the last one when ``state`` is None): a dict with
    /// ``SparseGrad``s "token", "position" (None when ``position="sinusoidal"``) and "segment",
    /// and dense arrays "layer_norm_weight" and "layer_norm_bias" ``(dim,)``.
    #[pyo3(signature = (grad, state=None))]
    fn backward<'py>(
        &self,
        py: Python<'py>,
        grad: &Bound<'py, PyAny>,
        state: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let te = &*self.inner;
        let state = match state.filter(|s| !s.is_none()) {
            None => None,
            Some(s) => {
                let s = s.cast::<PyTransformerEmbeddingsState>().map_err(|_| {
                    type_error(format!(
                        "state must be the TransformerEmbeddingsState of a forward call \
                         (return_state=True), got {}",
                        args::type_name(s)
                    ))
                })?;
                Some(s.get().inner.clone())
            }
        };
        let g = with_out_float!(te.dtype(), T => {
            let g = Floats::<T>::read(grad, "grad")?;
            let (v, s) = (g.values(), g.shape());
            without_gil(py, || match &state {
                Some(state) => te.backward_with_state(state, v, s),
                None => te.backward(v, s),
            })?
        });
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

    /// The token table ``(vocab_size, dim)`` as an ``Embedding`` (shared storage).
    #[getter]
    fn token(&self) -> PyEmbedding {
        PyEmbedding::shared(self.inner.token())
    }
    /// The position table ``(max_positions, dim)`` as an ``Embedding`` (shared storage; frozen
    /// when sinusoidal).
    #[getter]
    fn position(&self) -> PyEmbedding {
        PyEmbedding::shared(self.inner.position())
    }
    /// The segment (token type) table ``(type_vocab_size, dim)`` as an ``Embedding`` (shared
    /// storage).
    #[getter]
    fn segment(&self) -> PyEmbedding {
        PyEmbedding::shared(self.inner.segment())
    }
    /// Whether dropout is applied (assign False for inference).
    #[getter]
    fn get_training(&self) -> bool {
        self.inner.training()
    }
    #[setter]
    fn set_training(&self, on: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set_training(args::flag(on)?);
        Ok(())
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

tensor_property!(
    PyTransformerEmbeddings,
    /// The LayerNorm scale ``γ``, ``(dim,)`` (a copy; assign an array to replace it).
    get_layer_norm_weight / set_layer_norm_weight,
    |s| s.inner.layer_norm_weight(),
    |t| s.inner.set_layer_norm_weight(&t)
);
tensor_property!(
    PyTransformerEmbeddings,
    /// The LayerNorm shift ``β``, ``(dim,)`` (a copy; assign an array to replace it).
    get_layer_norm_bias / set_layer_norm_bias,
    |s| s.inner.layer_norm_bias(),
    |t| s.inner.set_layer_norm_bias(&t)
);
getters!(PyTransformerEmbeddings, |s| {
    /// The embedding width.
    dim: usize = s.inner.dim();
    /// The dropout probability applied while ``training``.
    dropout: f64 = s.inner.config().dropout;
    /// The LayerNorm's ``eps``.
    layer_norm_eps: f64 = s.inner.config().layer_norm_eps;
    /// The tables' dtype, "float32" or "float64".
    dtype: &'static str = dtype_name(s.inner.dtype());
    /// The position table's padding row (RoBERTa: 1), or None.
    position_padding_idx: Option<usize> = s.inner.position().padding_idx();
});

/// RoBERTa's position ids for ``ids`` ``(..., T)`` padded with ``padding_idx``:
/// ``(cumsum(ids != pad) + past_length) * (ids != pad) + pad`` along the last axis, int64.
#[pyfunction(name = "position_ids_from_padding")]
#[pyo3(signature = (ids, padding_idx, *, past_length=0))]
fn position_ids_from_padding_py<'py>(
    py: Python<'py>,
    ids: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::signed)] padding_idx: i64,
    #[pyo3(from_py_with = args::signed)] past_length: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let ids = IdArray::read(ids, "ids")?;
    let Some(&t) = ids.shape().last() else {
        return Err(value_error("ids must have at least one dimension"));
    };
    if past_length < 0 {
        return Err(value_error(format!(
            "past_length must be >= 0, got {past_length}"
        )));
    }
    let out = position_ids_from_padding(&ids.to_i64("ids")?, t, padding_idx, past_length).py()?;
    vec_output(py, out, ids.shape())
}

/// Register `TransformerEmbeddings` and `position_ids_from_padding`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::docs::add_callable_class::<PyTransformerEmbeddings>(m, CALL_DOC)?;
    m.add_class::<PyTransformerEmbeddingsState>()?;
    m.add_function(wrap_pyfunction!(position_ids_from_padding_py, m)?)
}

//! `candle_embed.Embedding`: translation only; the work is in `candle_embed::Embedding`.

use std::ffi::CStr;
use std::sync::Arc;

use candle_embed::device::{device_name, parse_device};
use candle_embed::dtype::{dtype_name, parse_dtype};
use candle_embed::techniques::RowTransform;
use candle_embed::{Embedding, EmbeddingConfig};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::args;
use crate::arrays::tables::numpy_to_table;
use crate::arrays::{fill, with_ids, with_out_float, IdArray};
use crate::errors::IntoPyResult;
use crate::gil::build_shared;
use crate::mapped::mapped_members;
use crate::properties::{getters, table_files, table_properties, weight_property};

/// A ``(num_embeddings, embedding_dim)`` table looked up by integer ids, with
/// ``torch.nn.Embedding``'s semantics.
///
/// Rows start from N(0, 1) (``seed`` makes them reproducible), the ``padding_idx`` row zero
/// (negative counts from the end); ``max_norm`` renormalises looked-up rows in place;
/// ``dtype``: "float32", "float64", "float16" or "bfloat16"; ``device``: "cpu", "cuda:N" or
/// "metal:N" when built with them.
///
/// ``emb(ids)`` looks rows up (shape ``ids.shape + (embedding_dim,)``), ``emb.backward(ids,
/// grad_output)`` gives the table's gradient as a ``SparseGrad`` for ``candle_embed.optim``.
/// Safe to share between threads.
#[pyclass(frozen, name = "Embedding", module = "candle_embed")]
pub struct PyEmbedding {
    pub inner: Arc<Embedding>,
}

impl PyEmbedding {
    /// A Python handle on a table that something else also holds (updates show through).
    pub fn shared(inner: &Arc<Embedding>) -> Self {
        PyEmbedding {
            inner: inner.clone(),
        }
    }
}

fn config(
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

/// The documentation of `Embedding.__call__` (see `docs.rs`).
pub const CALL_DOC: &CStr =
    c"__call__($self, ids, *, out=None, dropout=0.0, seed=None, normalize=False)
--

Rows of the table at ``ids`` (any integer dtype and shape; any array-like): shape
``ids.shape + (embedding_dim,)``, dtype of the table (float32 for a bfloat16 table).

``out``: a C-contiguous array of that shape and dtype to write into (returned).
``dropout=p`` in ``[0, 1)``: whole-word dropout, every occurrence of a dropped row is zero and
kept rows are scaled by ``1/(1-p)``; the mask is a function of ``(seed, row)`` (``seed=None``
draws one, so pass an explicit seed to ``backward``). ``normalize=True``: rows scaled to unit L2
norm, ``w / max(||w||, 1e-12)``. Rows over ``max_norm`` are renormalised in place first.
IndexError for an id outside ``[0, num_embeddings)``.";

#[pymethods]
impl PyEmbedding {
    #[new]
    #[pyo3(signature = (num_embeddings, embedding_dim, *, padding_idx=None, max_norm=None,
        norm_type=2.0, scale_grad_by_freq=false, dtype=args::default_text("float32"),
        device=args::default_text("cpu"), seed=None),
        text_signature = "(num_embeddings, embedding_dim, *, padding_idx=None, max_norm=None, \
        norm_type=2.0, scale_grad_by_freq=False, dtype='float32', device='cpu', seed=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] num_embeddings: usize,
        #[pyo3(from_py_with = args::size)] embedding_dim: usize,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        #[pyo3(from_py_with = args::opt_real)] max_norm: Option<f64>,
        #[pyo3(from_py_with = args::real)] norm_type: f64,
        #[pyo3(from_py_with = args::flag)] scale_grad_by_freq: bool,
        #[pyo3(from_py_with = args::text)] dtype: String,
        #[pyo3(from_py_with = args::text)] device: String,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
    ) -> PyResult<Self> {
        let dtype = parse_dtype(&dtype).py()?;
        let device = parse_device(&device).py()?;
        let cfg = config(padding_idx, max_norm, norm_type, scale_grad_by_freq, false);
        Ok(PyEmbedding {
            inner: build_shared(py, || {
                Embedding::new(num_embeddings, embedding_dim, cfg, dtype, &device, seed)
            })?,
        })
    }

    /// An Embedding holding a copy of ``weight`` (a float16/float32/float64 array of shape
    /// ``(num_embeddings, embedding_dim)``, dtype kept) on ``device``; ``freeze=True``: optimizers
    /// refuse to update it. The ``padding_idx`` row is kept as given.
    #[classmethod]
    #[pyo3(signature = (weight, *, freeze=true, padding_idx=None, max_norm=None, norm_type=2.0,
        scale_grad_by_freq=false, device=args::default_text("cpu")),
        text_signature = "(weight, *, freeze=True, padding_idx=None, max_norm=None, \
        norm_type=2.0, scale_grad_by_freq=False, device='cpu')")]
    #[allow(clippy::too_many_arguments)]
    fn from_pretrained(
        _cls: &Bound<'_, PyType>,
        weight: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::flag)] freeze: bool,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        #[pyo3(from_py_with = args::opt_real)] max_norm: Option<f64>,
        #[pyo3(from_py_with = args::real)] norm_type: f64,
        #[pyo3(from_py_with = args::flag)] scale_grad_by_freq: bool,
        #[pyo3(from_py_with = args::text)] device: String,
    ) -> PyResult<Self> {
        let device = parse_device(&device).py()?;
        let w = numpy_to_table(weight, &device)?;
        let cfg = config(padding_idx, max_norm, norm_type, scale_grad_by_freq, freeze);
        Ok(PyEmbedding {
            inner: Arc::new(Embedding::from_pretrained(w, cfg).py()?),
        })
    }

    #[pyo3(signature = (ids, *, out=None, dropout=0.0, seed=None, normalize=false))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        out: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::real)] dropout: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        #[pyo3(from_py_with = args::flag)] normalize: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::read(ids, "ids")?;
        // The identity transform takes the core's plain lookup (`lookup_transformed_into`
        // falls back to `lookup_into`).
        let t = RowTransform::new(dropout, seed, normalize).py()?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.inner.embedding_dim());
        let emb = &*self.inner;
        with_out_float!(emb.dtype(), D => with_ids!(ids, |v| {
            let (y, ()) = fill::<D, _, _>(py, out, &shape, &[ids.region()], |dst| {
                emb.lookup_transformed_into(v, dst, &t)
            })?;
            Ok(y)
        }))
    }

    fn __repr__(&self) -> String {
        format!(
            "Embedding({}, {}, dtype='{}', device='{}'{})",
            self.inner.num_embeddings(),
            self.inner.embedding_dim(),
            dtype_name(self.inner.dtype()),
            device_name(&self.inner.device()),
            self.inner
                .padding_idx()
                .map_or(String::new(), |p| format!(", padding_idx={p}"))
        )
    }
}

weight_property!(PyEmbedding, |s| s.inner);
table_properties!(PyEmbedding, |s| s.inner);
getters!(PyEmbedding, |s| {
    /// True when each row's gradient is divided by the number of times its id occurs in the
    /// batch.
    scale_grad_by_freq: bool = s.inner.config().scale_grad_by_freq;
});
table_files!(
    PyEmbedding,
    Embedding,
    /// Load a table saved by ``save`` (or by ``EmbeddingBag.save``) onto ``device``.
);
mapped_members!(PyEmbedding, |s| &s.inner);

/// Register `Embedding` (its methods in `techniques.rs` and `sparse_ops.rs` come with it).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::docs::add_callable_class::<PyEmbedding>(m, CALL_DOC)
}

//! `candle_embed.EmbeddingBag`: translation only; the work is in `candle_embed::EmbeddingBag`.

use std::ffi::CStr;
use std::sync::Arc;

use candle_embed::bag::{mode_name, parse_mode};
use candle_embed::device::{device_name, parse_device};
use candle_embed::dtype::{dtype_name, parse_dtype, Float};
use candle_embed::{EmbeddingBag, EmbeddingBagConfig};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::args;
use crate::arrays::tables::numpy_to_table;
use crate::arrays::{collect, fill, with_ids, with_out_float, Element, Floats, IdArray, Region};
use crate::errors::{value_error, IntoPyResult};
use crate::gil::{build_shared, without_gil};
use crate::mapped::mapped_members;
use crate::properties::{getters, table_files, table_properties, weight_property};
use crate::sparse_grad::PySparseGrad;

/// Pooled lookups with ``torch.nn.EmbeddingBag``'s semantics: each bag of ids is reduced to
/// one row by ``mode`` ("sum", "mean" or "max").
///
/// The table options are ``Embedding``'s. 2-D ids ``(B, N)`` are B bags of N ids (``offsets`` must be None); 1-D ids
/// need 1-D ``offsets`` (any integer dtype, ``offsets[0] == 0``, non-decreasing, at most
/// ``len(ids)``), one per bag; with ``include_last_offset`` they have ``B + 1`` entries, the last
/// equal to ``len(ids)`` (CSR). ``padding_idx`` is left out of every bag and of the mean's
/// divisor; an empty bag gives zeros. ``scale_grad_by_freq`` (modes "sum" and "mean", as in
/// PyTorch) divides each id's gradient by its number of occurrences in the call.
#[pyclass(frozen, name = "EmbeddingBag", module = "candle_embed")]
pub struct PyEmbeddingBag {
    pub inner: Arc<EmbeddingBag>,
}

/// The documentation of `EmbeddingBag.__call__` (see `docs.rs`).
pub const CALL_DOC: &CStr =
    c"__call__($self, ids, offsets=None, per_sample_weights=None, *, out=None)
--

One row per bag, shape ``(B, embedding_dim)``, dtype of the table (float32 for bfloat16).

``ids``: ``(B, N)``, or 1-D with ``offsets`` (see the class). ``per_sample_weights`` (shape of
``ids``, mode \"sum\" only) weight each id's row in its bag's sum. ``out``: a C-contiguous array
of the result's shape and dtype to write into (returned). IndexError for an id outside
``[0, num_embeddings)``; ValueError for offsets that are not a valid partition of ``ids``.";

/// Offsets of any integer dtype as `i64`, and where the caller's array lives.
pub(crate) fn read_offsets(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<(Vec<i64>, Region)>> {
    IdArray::read_opt(obj, "offsets")?
        .map(|o| Ok((o.to_i64_1d("offsets")?, o.region())))
        .transpose()
}

/// `per_sample_weights` as `D`, checked to have the ids' shape.
pub(crate) fn read_weights<'py, D: Element + Copy>(
    obj: Option<&Bound<'py, PyAny>>,
    ids_shape: &[usize],
) -> PyResult<Option<Floats<'py, D>>> {
    let w = Floats::<D>::read_opt(obj, "per_sample_weights")?;
    if let Some(w) = &w {
        if w.shape() != ids_shape {
            return Err(value_error(format!(
                "per_sample_weights must have the shape of ids {ids_shape:?}, got {:?}",
                w.shape()
            )));
        }
    }
    Ok(w)
}

/// `grad_output` as `D`, checked to be `(B, D)` for these ids and offsets.
fn read_grad<'py, D: Element + Copy>(
    bag: &EmbeddingBag,
    grad: &Bound<'py, PyAny>,
    ids_shape: &[usize],
    offsets: Option<&[i64]>,
) -> PyResult<Floats<'py, D>> {
    let nb = bag.num_bags(ids_shape, offsets.map(<[i64]>::len)).py()?;
    let g = Floats::<D>::read(grad, "grad_output")?;
    let want = [nb, bag.embedding_dim()];
    if g.shape() != want {
        return Err(value_error(format!(
            "grad_output must have shape {want:?}, got {:?}",
            g.shape()
        )));
    }
    Ok(g)
}

fn config(
    mode: &str,
    padding_idx: Option<i64>,
    (max_norm, norm_type): (Option<f64>, f64),
    (include_last_offset, scale_grad_by_freq): (bool, bool),
    freeze: bool,
) -> PyResult<EmbeddingBagConfig> {
    Ok(EmbeddingBagConfig {
        mode: parse_mode(mode).py()?,
        padding_idx,
        max_norm,
        norm_type,
        include_last_offset,
        scale_grad_by_freq,
        freeze,
    })
}

#[pymethods]
impl PyEmbeddingBag {
    #[new]
    #[pyo3(signature = (num_embeddings, embedding_dim, *, mode=args::default_text("mean"),
        padding_idx=None, max_norm=None, norm_type=2.0, include_last_offset=false,
        dtype=args::default_text("float32"), device=args::default_text("cpu"), seed=None,
        scale_grad_by_freq=false),
        text_signature = "(num_embeddings, embedding_dim, *, mode='mean', padding_idx=None, \
        max_norm=None, norm_type=2.0, include_last_offset=False, dtype='float32', \
        device='cpu', seed=None, scale_grad_by_freq=False)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] num_embeddings: usize,
        #[pyo3(from_py_with = args::size)] embedding_dim: usize,
        #[pyo3(from_py_with = args::text)] mode: String,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        #[pyo3(from_py_with = args::opt_real)] max_norm: Option<f64>,
        #[pyo3(from_py_with = args::real)] norm_type: f64,
        #[pyo3(from_py_with = args::flag)] include_last_offset: bool,
        #[pyo3(from_py_with = args::text)] dtype: String,
        #[pyo3(from_py_with = args::text)] device: String,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        #[pyo3(from_py_with = args::flag)] scale_grad_by_freq: bool,
    ) -> PyResult<Self> {
        let norm = (max_norm, norm_type);
        let flags = (include_last_offset, scale_grad_by_freq);
        let cfg = config(&mode, padding_idx, norm, flags, false)?;
        let dtype = parse_dtype(&dtype).py()?;
        let device = parse_device(&device).py()?;
        Ok(PyEmbeddingBag {
            inner: build_shared(py, || {
                EmbeddingBag::new(num_embeddings, embedding_dim, cfg, dtype, &device, seed)
            })?,
        })
    }

    /// An EmbeddingBag holding a copy of ``weight`` (a float16/float32/float64 array of shape
    /// ``(num_embeddings, embedding_dim)``, dtype kept) on ``device``; ``freeze=True``: optimizers
    /// refuse to update it.
    #[classmethod]
    #[pyo3(signature = (weight, *, freeze=true, mode=args::default_text("mean"),
        padding_idx=None, max_norm=None, norm_type=2.0, include_last_offset=false,
        device=args::default_text("cpu"), scale_grad_by_freq=false),
        text_signature = "(weight, *, freeze=True, mode='mean', padding_idx=None, \
        max_norm=None, norm_type=2.0, include_last_offset=False, device='cpu', \
        scale_grad_by_freq=False)")]
    #[allow(clippy::too_many_arguments)]
    fn from_pretrained(
        _cls: &Bound<'_, PyType>,
        weight: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::flag)] freeze: bool,
        #[pyo3(from_py_with = args::text)] mode: String,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        #[pyo3(from_py_with = args::opt_real)] max_norm: Option<f64>,
        #[pyo3(from_py_with = args::real)] norm_type: f64,
        #[pyo3(from_py_with = args::flag)] include_last_offset: bool,
        #[pyo3(from_py_with = args::text)] device: String,
        #[pyo3(from_py_with = args::flag)] scale_grad_by_freq: bool,
    ) -> PyResult<Self> {
        let norm = (max_norm, norm_type);
        let flags = (include_last_offset, scale_grad_by_freq);
        let cfg = config(&mode, padding_idx, norm, flags, freeze)?;
        let device = parse_device(&device).py()?;
        let w = numpy_to_table(weight, &device)?;
        Ok(PyEmbeddingBag {
            inner: Arc::new(EmbeddingBag::from_pretrained(w, cfg).py()?),
        })
    }

    #[pyo3(signature = (ids, offsets=None, per_sample_weights=None, *, out=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
        per_sample_weights: Option<&Bound<'py, PyAny>>,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::read(ids, "ids")?;
        let offsets = read_offsets(offsets)?;
        let (off, off_region) = offsets.map_or((None, None), |(v, r)| (Some(v), Some(r)));
        let bag = &*self.inner;
        with_out_float!(bag.embedding().dtype(), D => {
            let w = read_weights::<D>(per_sample_weights, ids.shape())?;
            let nb = bag.num_bags(ids.shape(), off.as_ref().map(Vec::len)).py()?;
            let inputs: Vec<Region> = [Some(ids.region()), off_region, w.as_ref().map(Floats::region)]
                .into_iter()
                .flatten()
                .collect();
            let (off, w) = (off.as_deref(), w.as_ref().map(Floats::values));
            with_ids!(ids, |v| {
                let (y, ()) = fill::<D, _, _>(py, out, &[nb, bag.embedding_dim()], &inputs, |dst| {
                    bag.forward_into(v, ids.shape(), off, w, dst)
                })?;
                Ok(y)
            })
        })
    }

    /// The table's gradient for ``grad_output`` ``(B, embedding_dim)`` (cast to the table's
    /// dtype), as a coalesced ``SparseGrad``. Mode "max" sends each column to its bag's argmax
    /// row (the first on ties), taken from the current table. With ``scale_grad_by_freq`` each
    /// id's row is divided by the id's number of (non-padding) occurrences in ``ids``.
    #[pyo3(signature = (ids, grad_output, offsets=None, per_sample_weights=None))]
    fn backward(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        grad_output: &Bound<'_, PyAny>,
        offsets: Option<&Bound<'_, PyAny>>,
        per_sample_weights: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PySparseGrad> {
        let ids = IdArray::read(ids, "ids")?;
        let off = read_offsets(offsets)?.map(|(v, _)| v);
        let (bag, off) = (&*self.inner, off.as_deref());
        let g = with_out_float!(bag.embedding().dtype(), D => {
            let w = read_weights::<D>(per_sample_weights, ids.shape())?;
            let g = read_grad::<D>(bag, grad_output, ids.shape(), off)?;
            let (w, g) = (w.as_ref().map(Floats::values), g.values());
            with_ids!(ids, |v| without_gil(py, || bag.backward(v, ids.shape(), off, g, w))?)
        });
        Ok(PySparseGrad::wrap(g))
    }

    /// The gradient of ``per_sample_weights`` (mode "sum") for ``grad_output``
    /// ``(B, embedding_dim)``: ``<grad_output[bag(k)], W[ids[k]]>`` for each id ``k`` (0 for
    /// padding), shape of ``ids``, dtype of the table.
    #[pyo3(signature = (ids, grad_output, offsets=None))]
    fn backward_per_sample_weights<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        grad_output: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::read(ids, "ids")?;
        let off = read_offsets(offsets)?.map(|(v, _)| v);
        let (bag, off) = (&*self.inner, off.as_deref());
        with_out_float!(bag.embedding().dtype(), D => {
            let g = read_grad::<D>(bag, grad_output, ids.shape(), off)?;
            let g = g.values();
            with_ids!(ids, |v| collect(py, ids.shape(), || {
                let w = bag.backward_per_sample_weights(v, ids.shape(), off, g)?;
                Ok(w.into_iter().map(<D as Float>::of_f64).collect())
            }))
        })
    }

    fn __repr__(&self) -> String {
        let table = self.inner.embedding();
        format!(
            "EmbeddingBag({}, {}, mode='{}', dtype='{}', device='{}'{})",
            table.num_embeddings(),
            table.embedding_dim(),
            mode_name(self.inner.mode()),
            dtype_name(table.dtype()),
            device_name(&table.device()),
            table
                .padding_idx()
                .map_or(String::new(), |p| format!(", padding_idx={p}"))
        )
    }
}

weight_property!(PyEmbeddingBag, |s| s.inner.embedding());
table_properties!(PyEmbeddingBag, |s| s.inner.embedding());
getters!(PyEmbeddingBag, |s| {
    /// The bag reduction: "sum", "mean" or "max".
    mode: &'static str = mode_name(s.inner.mode());
    /// True when ``offsets`` carries a final entry equal to ``len(ids)`` (CSR form).
    include_last_offset: bool = s.inner.include_last_offset();
    /// True when each id's gradient is divided by its number of occurrences in the call
    /// (modes "sum" and "mean").
    scale_grad_by_freq: bool = s.inner.scale_grad_by_freq();
});
table_files!(
    PyEmbeddingBag,
    EmbeddingBag,
    /// Load a bag saved by ``save`` onto ``device`` (an ``Embedding.save`` file loads with
    /// ``mode="mean"``).
);
mapped_members!(PyEmbeddingBag, |s| s.inner.embedding());

/// Register `EmbeddingBag`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::docs::add_callable_class::<PyEmbeddingBag>(m, CALL_DOC)
}

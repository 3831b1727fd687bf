//! `candle_embed.QuantizedEmbeddingBag` and `EmbeddingBag.quantize`.

use std::ffi::CStr;
use std::sync::Arc;

use candle_embed::bag::{mode_name, parse_mode};
use candle_embed::quantized::QuantizedEmbeddingBag;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::{out_dtype, parse_bits, repr, shared_methods, table_from_float, table_from_packed};
use crate::args;
use crate::arrays::{fill, with_ids, with_out_float, Floats, IdArray, Region};
use crate::bag::{read_offsets, read_weights, PyEmbeddingBag};
use crate::errors::IntoPyResult;
use crate::gil::without_gil;
use crate::properties::getters;

/// Pooled lookups over a read-only quantized table (FBGEMM's fused row-wise layout, 8 or 4
/// bits, as ``QuantizedEmbedding``): each bag's rows are dequantized and reduced in one pass.
///
/// Bags, ``offsets``, ``include_last_offset``, ``per_sample_weights`` (mode "sum") and
/// ``padding_idx`` work as in ``EmbeddingBag``. Sums accumulate in float32 in FBGEMM's order
/// (``acc = fma(w * scale, code, acc + w * bias)`` per row), so float32 results equal PyTorch's
/// ``embedding_bag_byte_rowwise_offsets`` / ``embedding_bag_4bit_rowwise_offsets`` exactly.
#[pyclass(frozen, name = "QuantizedEmbeddingBag", module = "candle_embed")]
pub struct PyQuantizedEmbeddingBag {
    pub inner: Arc<QuantizedEmbeddingBag>,
}

/// The documentation of `QuantizedEmbeddingBag.__call__` (see `docs.rs`).
pub const CALL_DOC: &CStr =
    c"__call__($self, ids, offsets=None, per_sample_weights=None, *, out=None, dtype='float32')
--

One dequantized, reduced row per bag: shape ``(B, embedding_dim)``, computed in float32 and
rounded to ``dtype`` (\"float32\", \"float16\" or \"float64\"). ``ids``: ``(B, N)``, or 1-D with
``offsets`` (as ``EmbeddingBag``). ``per_sample_weights`` (shape of ``ids``, mode \"sum\" only)
are read as float32. ``out``: a C-contiguous array of the result's shape and dtype to write
into (returned). IndexError for an id outside ``[0, num_embeddings)``; ValueError for offsets
that are not a valid partition of ``ids``.";

#[pymethods]
impl PyQuantizedEmbeddingBag {
    /// Quantize a float array ``weight`` ``(num_embeddings, embedding_dim)`` to ``bits`` (8 or
    /// 4) with FBGEMM's rounding; the bag options as ``EmbeddingBag``'s.
    #[classmethod]
    #[pyo3(signature = (weight, bits=8, *, mode=args::default_text("mean"), padding_idx=None,
        include_last_offset=false),
        text_signature = "(weight, bits=8, *, mode='mean', padding_idx=None, \
        include_last_offset=False)")]
    fn from_float(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        weight: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::size)] bits: usize,
        #[pyo3(from_py_with = args::text)] mode: String,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        #[pyo3(from_py_with = args::flag)] include_last_offset: bool,
    ) -> PyResult<Self> {
        let mode = parse_mode(&mode).py()?;
        let table = table_from_float(py, weight, parse_bits(bits)?)?;
        let q = QuantizedEmbeddingBag::new(table, mode, padding_idx, include_last_offset).py()?;
        Ok(wrap(q))
    }

    /// A bag holding a copy of ``packed`` (uint8 FBGEMM fused rows, as
    /// ``QuantizedEmbedding.from_packed``); the bag options as ``EmbeddingBag``'s.
    #[classmethod]
    #[pyo3(signature = (packed, bits=8, *, mode=args::default_text("mean"), padding_idx=None,
        include_last_offset=false),
        text_signature = "(packed, bits=8, *, mode='mean', padding_idx=None, \
        include_last_offset=False)")]
    fn from_packed(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        packed: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::size)] bits: usize,
        #[pyo3(from_py_with = args::text)] mode: String,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
        #[pyo3(from_py_with = args::flag)] include_last_offset: bool,
    ) -> PyResult<Self> {
        let mode = parse_mode(&mode).py()?;
        let table = table_from_packed(py, packed, parse_bits(bits)?)?;
        let q = QuantizedEmbeddingBag::new(table, mode, padding_idx, include_last_offset).py()?;
        Ok(wrap(q))
    }

    #[pyo3(signature = (ids, offsets=None, per_sample_weights=None, *, out=None,
        dtype=args::default_text("float32")))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
        per_sample_weights: Option<&Bound<'py, PyAny>>,
        out: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::text)] dtype: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dtype = out_dtype(&dtype)?;
        let ids = IdArray::read(ids, "ids")?;
        let offsets = read_offsets(offsets)?;
        let (off, off_region) = offsets.map_or((None, None), |(v, r)| (Some(v), Some(r)));
        let w = read_weights::<f32>(per_sample_weights, ids.shape())?;
        let q = &*self.inner;
        let nb = q
            .spec()
            .num_bags(ids.shape(), off.as_ref().map(Vec::len))
            .py()?;
        let inputs: Vec<Region> = [
            Some(ids.region()),
            off_region,
            w.as_ref().map(Floats::region),
        ]
        .into_iter()
        .flatten()
        .collect();
        let (off, w) = (off.as_deref(), w.as_ref().map(Floats::values));
        let shape = [nb, q.embedding().embedding_dim()];
        with_out_float!(dtype, D => with_ids!(ids, |v| {
            let (y, ()) = fill::<D, _, _>(py, out, &shape, &inputs, |dst| {
                q.forward_into(v, ids.shape(), off, w, dst)
            })?;
            Ok(y)
        }))
    }

    fn __repr__(&self) -> String {
        let mode = format!(", mode='{}'", mode_name(self.inner.mode()));
        repr("QuantizedEmbeddingBag", self.inner.embedding(), &mode)
    }
}

fn wrap(q: QuantizedEmbeddingBag) -> PyQuantizedEmbeddingBag {
    PyQuantizedEmbeddingBag { inner: Arc::new(q) }
}

getters!(PyQuantizedEmbeddingBag, |s| {
    /// The bag reduction: "sum", "mean" or "max".
    mode: &'static str = mode_name(s.inner.mode());
    /// True when ``offsets`` carries a final entry equal to ``len(ids)`` (CSR form).
    include_last_offset: bool = s.inner.include_last_offset();
});

shared_methods!(
    PyQuantizedEmbeddingBag,
    QuantizedEmbeddingBag,
    |s| s.inner.embedding(),
    /// Load a bag saved by ``save`` (a ``QuantizedEmbedding.save`` file loads with
    /// ``mode="mean"``). ``mmap`` as ``QuantizedEmbedding.load``.
);

#[pymethods]
impl PyEmbeddingBag {
    /// This bag quantized row-wise to ``bits`` (8 or 4) in FBGEMM's fused layout and rounding,
    /// as a ``QuantizedEmbeddingBag`` (mode, ``padding_idx`` and ``include_last_offset`` kept;
    /// the table is unchanged). ValueError for a table with ``max_norm`` or non-finite values.
    #[pyo3(signature = (bits=8))]
    fn quantize(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] bits: usize,
    ) -> PyResult<PyQuantizedEmbeddingBag> {
        let bits = parse_bits(bits)?;
        let inner = self.inner.clone();
        Ok(wrap(without_gil(py, move || inner.quantize(bits))?))
    }
}

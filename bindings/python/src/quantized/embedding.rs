//! `candle_embed.QuantizedEmbedding` and `Embedding.quantize`.

use std::ffi::CStr;
use std::sync::Arc;

use candle_embed::quantized::QuantizedEmbedding;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::{out_dtype, parse_bits, repr, shared_methods, table_from_float, table_from_packed};
use crate::args;
use crate::arrays::{collect, fill, with_ids, with_out_float, Floats, IdArray};
use crate::embedding::PyEmbedding;
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;

/// A read-only embedding table quantized row-wise to 8 or 4 bits in FBGEMM's fused layout:
/// each row stores its codes, then its own scale and bias (float32 for 8 bits, float16 for 4),
/// and element ``j`` of row ``r`` is ``scale_r * code_rj + bias_r``.
///
/// Make one with ``Embedding.quantize(bits)``, ``from_float(weight, bits)`` (FBGEMM's rounding:
/// each element lands within half a step ``scale_r / 2`` of its value) or ``from_packed(packed,
/// bits)`` (rows from PyTorch's ``embedding_bag_byte_prepack`` / ``embedding_bag_4bit_prepack``).
/// Looking rows up dequantizes them. Safe to share between threads.
#[pyclass(frozen, name = "QuantizedEmbedding", module = "candle_embed")]
pub struct PyQuantizedEmbedding {
    pub inner: Arc<QuantizedEmbedding>,
}

/// The documentation of `QuantizedEmbedding.__call__` (see `docs.rs`).
pub const CALL_DOC: &CStr = c"__call__($self, ids, *, out=None, dtype='float32')
--

Rows of the table at ``ids`` (any integer dtype and shape), dequantized: shape
``ids.shape + (embedding_dim,)``, ``scale * code + bias`` computed in float32 (one fused
multiply-add) and rounded to ``dtype`` (\"float32\", \"float16\" or \"float64\"). ``out``: a
C-contiguous array of that shape and dtype to write into (returned). IndexError for an id
outside ``[0, num_embeddings)``.";

#[pymethods]
impl PyQuantizedEmbedding {
    /// Quantize a float array ``weight`` ``(num_embeddings, embedding_dim)`` to ``bits`` (8 or
    /// 4; 4 needs an even ``embedding_dim``) with FBGEMM's rounding (float64 input is rounded to
    /// float32 first). Non-finite values are a ValueError.
    #[classmethod]
    #[pyo3(signature = (weight, bits=8, *, padding_idx=None))]
    fn from_float(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        weight: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::size)] bits: usize,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
    ) -> PyResult<Self> {
        let table = table_from_float(py, weight, parse_bits(bits)?)?;
        Ok(wrap(QuantizedEmbedding::new(table, padding_idx).py()?))
    }

    /// A table holding a copy of ``packed``: a uint8 array ``(num_embeddings, row_bytes)`` of
    /// FBGEMM fused rows (``embedding_dim + 8`` bytes for 8 bits, ``embedding_dim / 2 + 4`` for
    /// 4). Every row's scale and bias must be finite.
    #[classmethod]
    #[pyo3(signature = (packed, bits=8, *, padding_idx=None))]
    fn from_packed(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        packed: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::size)] bits: usize,
        #[pyo3(from_py_with = args::opt_signed)] padding_idx: Option<i64>,
    ) -> PyResult<Self> {
        let table = table_from_packed(py, packed, parse_bits(bits)?)?;
        Ok(wrap(QuantizedEmbedding::new(table, padding_idx).py()?))
    }

    #[pyo3(signature = (ids, *, out=None, dtype=args::default_text("float32")))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        out: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::text)] dtype: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dtype = out_dtype(&dtype)?;
        let ids = IdArray::read(ids, "ids")?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.inner.embedding_dim());
        let q = &*self.inner;
        with_out_float!(dtype, D => with_ids!(ids, |v| {
            let (y, ()) = fill::<D, _, _>(py, out, &shape, &[ids.region()], |dst| q.lookup_into(v, dst))?;
            Ok(y)
        }))
    }

    /// Scores against every row without dequantizing the table: ``x @ W.T`` for ``x`` of shape
    /// ``(..., embedding_dim)`` (read as float32) and ``W`` the dequantized table, shape
    /// ``(..., num_embeddings)``, float32 (``scale_r * (x . code_r) + bias_r * sum(x)``).
    fn attend<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let x = Floats::<f32>::read(x, "x")?;
        let (table, dim) = (self.inner.table(), self.inner.embedding_dim());
        let (lead, last) = x.shape().split_at(x.shape().len().saturating_sub(1));
        if last != [dim] {
            return Err(value_error(format!(
                "x must have shape (..., {dim}), got {:?}",
                x.shape()
            )));
        }
        let n = lead.iter().product::<usize>();
        let mut shape = lead.to_vec();
        shape.push(table.rows());
        let values = x.values();
        collect(py, &shape, || table.attend(values, n))
    }

    /// The L2 norm of every dequantized row, float32 ``(num_embeddings,)`` (divide ``attend``
    /// by it for cosine similarities).
    fn row_norms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let table = self.inner.table();
        collect(py, &[table.rows()], || table.row_norms())
    }

    fn __repr__(&self) -> String {
        repr("QuantizedEmbedding", &self.inner, "")
    }
}

fn wrap(q: QuantizedEmbedding) -> PyQuantizedEmbedding {
    PyQuantizedEmbedding { inner: Arc::new(q) }
}

shared_methods!(
    PyQuantizedEmbedding,
    QuantizedEmbedding,
    |s| s.inner,
    /// Load a table saved by ``save`` (or ``QuantizedEmbeddingBag.save``). ``mmap``: None or
    /// False copies the rows into memory (every row's scale and bias checked); True or "r"
    /// reads them in place from the file as lookups touch them (nothing up front).
);

#[pymethods]
impl PyEmbedding {
    /// This table quantized row-wise to ``bits`` (8 or 4) in FBGEMM's fused layout and rounding,
    /// as a ``QuantizedEmbedding`` (``padding_idx`` kept; the table is unchanged; a
    /// memory-mapped table is quantized straight from its file). ValueError for a table with
    /// ``max_norm`` or non-finite values.
    #[pyo3(signature = (bits=8))]
    fn quantize(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] bits: usize,
    ) -> PyResult<PyQuantizedEmbedding> {
        let bits = parse_bits(bits)?;
        let inner = self.inner.clone();
        Ok(wrap(without_gil(py, move || inner.quantize(bits))?))
    }
}

//! `candle_embed.QuantizedEmbedding` and `QuantizedEmbeddingBag` (translation only; the work is
//! in `candle_embed::quantized`), `Embedding.quantize` / `EmbeddingBag.quantize`, and the
//! quantized portable paths for `_testing`.

mod bag;
mod embedding;

use candle_core::DType;
use candle_embed::dtype::parse_dtype;
use candle_embed::quantized::{Bits, QuantizedEmbedding, QuantizedTable};
use pyo3::prelude::*;

use crate::arrays::bytes::read_bytes_2d;
use crate::arrays::{vec_output, Floats};
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::mapped::map_mode;

pub use bag::PyQuantizedEmbeddingBag;
pub use embedding::PyQuantizedEmbedding;

/// `bits` as given by Python (8 or 4).
fn parse_bits(b: usize) -> PyResult<Bits> {
    Bits::new(b as u64).py()
}

/// The output dtype of a dequantizing call: "float32" (default), "float16", "float64"
/// ("bfloat16" is accepted and comes out as float32, the crate's one output rule).
fn out_dtype(name: &str) -> PyResult<DType> {
    parse_dtype(name).py()
}

/// The packed table of a 2-D float array-like (rounded to float32 first, as FBGEMM takes it).
fn table_from_float(
    py: Python<'_>,
    weight: &Bound<'_, PyAny>,
    bits: Bits,
) -> PyResult<QuantizedTable> {
    let w = Floats::<f32>::read(weight, "weight")?;
    let &[rows, dim] = w.shape() else {
        return Err(value_error(format!(
            "weight must be 2-D (num_embeddings, embedding_dim), got shape {:?}",
            w.shape()
        )));
    };
    let values = w.values();
    without_gil(py, || QuantizedTable::quantize(values, rows, dim, bits))
}

/// The packed table of a 2-D uint8 array-like of FBGEMM fused rows (a copy).
fn table_from_packed(
    py: Python<'_>,
    packed: &Bound<'_, PyAny>,
    bits: Bits,
) -> PyResult<QuantizedTable> {
    let (bytes, [rows, width]) = read_bytes_2d(packed, "packed")?;
    without_gil(py, move || {
        QuantizedTable::from_packed(bytes, rows, width, bits)
    })
}

/// The methods and properties both quantized classes have, over their [`QuantizedEmbedding`]
/// (`|s| expr` gives it from `s: &$cls`): `packed`, `dequantize`, `save`, `load` (the
/// class's own, `$load_doc` its documentation) and the size getters. `$cls` wraps
/// `inner: Arc<$rust>`.
macro_rules! shared_methods {
    ($cls:ty, $rust:ty, |$s:ident| $emb:expr, $(#[$load_doc:meta])*) => {
        #[pyo3::pymethods]
        impl $cls {
            /// The packed rows, a uint8 array ``(num_embeddings, row_bytes)`` (a copy): FBGEMM's
            /// fused layout, what its prepack ops produce and ``from_packed`` takes.
            #[getter]
            fn packed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                let $s = self;
                $crate::quantized::packed_array(py, $emb.table())
            }

            /// Every row dequantized: a float32 array ``(num_embeddings, embedding_dim)``.
            fn dequantize<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                let $s = self;
                $crate::quantized::dequantized(py, $emb.table())
            }

            /// Save the packed rows and the options to a safetensors file ``path``, atomically.
            fn save(
                &self,
                py: Python<'_>,
                #[pyo3(from_py_with = $crate::args::path)] path: std::path::PathBuf,
            ) -> PyResult<()> {
                let inner = self.inner.clone();
                $crate::gil::without_gil(py, move || inner.save(&path))
            }

            $(#[$load_doc])*
            #[classmethod]
            #[pyo3(signature = (path, *, mmap=None))]
            fn load(
                _cls: &Bound<'_, pyo3::types::PyType>,
                py: Python<'_>,
                #[pyo3(from_py_with = $crate::args::path)] path: std::path::PathBuf,
                mmap: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Self> {
                let mmap = $crate::quantized::read_only_map(mmap)?;
                let inner = $crate::gil::without_gil(py, move || <$rust>::load(&path, mmap))?;
                Ok(Self {
                    inner: std::sync::Arc::new(inner),
                })
            }
        }

        $crate::properties::getters!($cls, |$s| {
            /// Bits per code: 8 or 4.
            bits: u32 = $emb.bits().get();
            /// Number of rows (the id range is ``[0, num_embeddings)``).
            num_embeddings: usize = $emb.num_embeddings();
            /// Width ``D`` of each dequantized (or pooled) row.
            embedding_dim: usize = $emb.embedding_dim();
            /// Bytes of one packed row (codes, scale, bias).
            row_bytes: usize = $emb.table().layout().row_bytes();
            /// The padding row (carried over from the float table; a bag leaves it out), or None.
            padding_idx: Option<usize> = $emb.padding_idx();
            /// "r" when the rows are read in place from a memory-mapped file, else None.
            mmap_mode: Option<&'static str> = $emb.table().map_mode().map(|m| m.name());
        });
    };
}
use shared_methods;

/// `Class(V, D, bits=B{options}, padding_idx=P)`, the `__repr__` of both classes.
fn repr(class: &str, q: &QuantizedEmbedding, options: &str) -> String {
    let padding = q
        .padding_idx()
        .map_or(String::new(), |p| format!(", padding_idx={p}"));
    let (rows, dim, bits) = (q.num_embeddings(), q.embedding_dim(), q.bits().get());
    format!("{class}({rows}, {dim}, bits={bits}{options}{padding})")
}

/// A copy of the packed rows as a uint8 array `(rows, row bytes)`.
fn packed_array<'py>(py: Python<'py>, table: &QuantizedTable) -> PyResult<Bound<'py, PyAny>> {
    let shape = [table.rows(), table.layout().row_bytes()];
    let bytes = without_gil(py, || table.to_packed())?;
    vec_output(py, bytes, &shape)
}

/// Every row dequantized, float32 `(rows, dim)`.
fn dequantized<'py>(py: Python<'py>, table: &QuantizedTable) -> PyResult<Bound<'py, PyAny>> {
    let shape = [table.rows(), table.dim()];
    crate::arrays::collect(py, &shape, || table.dequantize())
}

/// `mmap` of a quantized `load`: read-only maps only.
fn read_only_map(mmap: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    match map_mode(mmap)? {
        None => Ok(false),
        Some(candle_embed::mmap::MapMode::ReadOnly) => Ok(true),
        Some(m) => Err(value_error(format!(
            "quantized tables are read-only: mmap must be None, False, True or 'r', got '{}'",
            m.name()
        ))),
    }
}

/// The packed bytes of `weight` by FBGEMM's scalar reference transcription (uint8).
#[pyfunction]
fn quantize_reference<'py>(
    py: Python<'py>,
    weight: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = crate::args::size)] bits: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let bits = parse_bits(bits)?;
    let w = Floats::<f32>::read(weight, "weight")?;
    let &[rows, dim] = w.shape() else {
        return Err(value_error("weight must be 2-D"));
    };
    let values = w.values();
    let table = without_gil(py, || {
        QuantizedTable::quantize_reference(values, rows, dim, bits)
    })?;
    packed_array(py, &table)
}

/// Register the classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::docs::add_callable_class::<PyQuantizedEmbedding>(m, embedding::CALL_DOC)?;
    crate::docs::add_callable_class::<PyQuantizedEmbeddingBag>(m, bag::CALL_DOC)
}

/// Add the quantized hooks to the `_testing` module (its portable lookup and bag hooks take
/// quantized tables too).
pub fn register_testing(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(quantize_reference, m)?)
}

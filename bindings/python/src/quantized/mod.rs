//! `candle_embed.QuantizedEmbedding` and `QuantizedEmbeddingBag` (translation only; the work is
//! in `candle_embed::quantized`), `Embedding.quantize` / `EmbeddingBag.quantize`, and the
//! quantized portable paths for `_testing`.

mod bag;
mod embedding;

use candle_core::DType;
use candle_embed::dtype::parse_dtype;
use candle_embed::quantized::{Bits, QuantizedTable};
use pyo3::prelude::*;

use crate::arrays::bytes::read_bytes_2d;
use crate::arrays::tables::tensor_to_numpy;
use crate::arrays::{vec_output, with_ids, Floats, IdArray};
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

/// `QuantizedEmbedding(ids)` through candle ops (float32).
#[pyfunction]
fn quantized_lookup_portable<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyQuantizedEmbedding>,
    ids: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let ids = IdArray::read(ids, "ids")?;
    let inner = q.get().inner.clone();
    let t = with_ids!(ids, |v| without_gil(py, || inner
        .lookup_portable(v, ids.shape()))?);
    tensor_to_numpy(py, &t)
}

/// `QuantizedEmbeddingBag(ids, offsets, per_sample_weights)` through candle ops (float32).
#[pyfunction]
#[pyo3(signature = (qb, ids, offsets=None, per_sample_weights=None))]
fn quantized_bag_portable<'py>(
    py: Python<'py>,
    qb: &Bound<'py, PyQuantizedEmbeddingBag>,
    ids: &Bound<'py, PyAny>,
    offsets: Option<&Bound<'py, PyAny>>,
    per_sample_weights: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let ids = IdArray::read(ids, "ids")?;
    let off = crate::bag::read_offsets(offsets)?.map(|(v, _)| v);
    let w = crate::bag::read_weights::<f32>(per_sample_weights, ids.shape())?;
    let (inner, off) = (qb.get().inner.clone(), off.as_deref());
    let w = w.as_ref().map(Floats::values);
    let t = with_ids!(ids, |v| without_gil(py, || inner.forward_portable(
        v,
        ids.shape(),
        off,
        w
    ))?);
    tensor_to_numpy(py, &t)
}

/// The packed bytes of `weight` by FBGEMM's scalar reference transcription (uint8).
#[pyfunction]
fn quantize_reference<'py>(
    py: Python<'py>,
    weight: &Bound<'py, PyAny>,
    bits: usize,
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

/// Add the quantized portable paths to the `_testing` module.
pub fn register_testing(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(quantized_lookup_portable, m)?)?;
    m.add_function(wrap_pyfunction!(quantized_bag_portable, m)?)?;
    m.add_function(wrap_pyfunction!(quantize_reference, m)?)
}

//! Word-vector files. Translation only; the work is in `candle_embed::io::word2vec` (training is
//! in `word2vec_train.rs`).

use std::path::PathBuf;

use candle_embed::io::word2vec as fmt;
use pyo3::prelude::*;

use crate::args;
use crate::arrays::{vec_output, Floats};
use crate::errors::value_error;
use crate::gil::without_gil;

/// Read word vectors: `(words, vectors)`; `fmt`: "text", "binary", "glove" or "safetensors".
#[pyfunction]
#[pyo3(signature = (path, fmt_kind, limit=None))]
pub fn _read_word_vectors<'py>(
    py: Python<'py>,
    path: PathBuf,
    fmt_kind: &str,
    #[pyo3(from_py_with = args::opt_size)] limit: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = fmt_kind.to_string();
    let wv = without_gil(py, || match kind.as_str() {
        "text" => fmt::read(&path, false, false, limit),
        "binary" => fmt::read(&path, true, false, limit),
        "glove" => fmt::read(&path, false, true, limit),
        "safetensors" => fmt::read_safetensors(&path),
        other => Err(candle_embed::Error::InvalidArgument(format!(
            "unknown word-vector format {other:?}"
        ))),
    })?;
    let n = wv.words.len();
    let arr = vec_output(py, wv.vectors, &[n, wv.dim])?;
    Ok((wv.words, arr).into_pyobject(py)?.into_any())
}

/// Write word vectors atomically; `fmt_kind`: "text", "binary" or "safetensors".
#[pyfunction]
pub fn _write_word_vectors(
    py: Python<'_>,
    path: PathBuf,
    words: Vec<String>,
    vectors: &Bound<'_, PyAny>,
    fmt_kind: &str,
) -> PyResult<()> {
    let arr = Floats::<f32>::read(vectors, "vectors")?;
    let dim = match *arr.shape() {
        [n, dim] if n == words.len() => dim,
        _ => {
            return Err(value_error(format!(
                "vectors must have shape ({}, dim), got {:?}",
                words.len(),
                arr.shape()
            )))
        }
    };
    let data = arr.values();
    let kind = fmt_kind.to_string();
    without_gil(py, || match kind.as_str() {
        "text" => fmt::write(&path, &words, data, dim, false),
        "binary" => fmt::write(&path, &words, data, dim, true),
        "safetensors" => fmt::write_safetensors(&path, &words, data, dim),
        other => Err(candle_embed::Error::InvalidArgument(format!(
            "unknown word-vector format {other:?}"
        ))),
    })
}

//! fastText: word vectors from the input table (`_ft_word_vectors`), Facebook's `.bin` files
//! ([`bin`]) and training ([`train`], on the word2vec trainer). Translation only; the work is in
//! `candle_embed::fasttext`. Words cross as `str` (encoded to UTF-8 here; a lone surrogate is
//! a `ValueError`) or, for files, as raw `bytes` (Python decodes them with the caller's
//! encoding, as gensim does).

mod bin;
mod train;

use candle_embed::alloc::try_collect;
use candle_embed::fasttext::{word_vectors_into, Subwords};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::args;
use crate::arrays::{fill, Floats};
use crate::errors::{type_error, value_error, IntoPyResult};

/// Each word's UTF-8 bytes; a non-`str` item is a `TypeError`, a lone surrogate a `ValueError`.
fn utf8_words(words: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    if words.is_instance_of::<PyString>() {
        return Err(type_error("words must be a sequence of str, not a str"));
    }
    let mut out = Vec::new();
    for (i, w) in words.try_iter()?.enumerate() {
        let w = w?;
        let s = w
            .cast::<PyString>()
            .map_err(|_| type_error(format!("word {i} must be a str, got {}", w.get_type())))?;
        let text = s.to_cow().map_err(|_| {
            value_error(format!(
                "word {i} is not valid Unicode (it holds a lone surrogate)"
            ))
        })?;
        out.push(text.into_owned().into_bytes());
    }
    Ok(out)
}

/// fastText word vectors, `(len(words), dim)` float32: word `k`'s vector is the mean of its
/// n-gram rows `nwords + hash(g) % bucket` of `table` (`(nwords + bucket, dim)`), and of its
/// own row `k` first when `own_rows` (the vocabulary's words, in order). Written into `out`
/// when given.
#[pyfunction]
#[pyo3(signature = (table, nwords, words, min_n, max_n, bucket, own_rows, out=None))]
#[allow(clippy::too_many_arguments)]
pub fn _ft_word_vectors<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::size)] nwords: usize,
    words: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::size)] min_n: usize,
    #[pyo3(from_py_with = args::size)] max_n: usize,
    #[pyo3(from_py_with = args::size)] bucket: usize,
    own_rows: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let sub = Subwords::new(min_n, max_n, bucket).py()?;
    let table = Floats::<f32>::read(table, "table")?;
    let dim = match *table.shape() {
        [_, d] if d > 0 => d,
        _ => {
            return Err(value_error(format!(
                "table must be 2-D (rows, dim) with dim >= 1, got shape {:?}",
                table.shape()
            )))
        }
    };
    let words = utf8_words(words)?;
    if own_rows && words.len() > nwords {
        return Err(value_error(format!(
            "{} vocabulary words for a table of {nwords} word rows",
            words.len()
        )));
    }
    let values = table.values();
    let items = try_collect(
        words
            .iter()
            .enumerate()
            .map(|(k, w)| (own_rows.then_some(k), w.as_slice())),
    )
    .py()?;
    let (arr, ()) = fill::<f32, _, _>(py, out, &[words.len(), dim], &[table.region()], |dst| {
        word_vectors_into(values, dim, nwords, &sub, &items, dst)
    })?;
    Ok(arr)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_ft_word_vectors, m)?)?;
    m.add_function(wrap_pyfunction!(bin::_ft_read_bin, m)?)?;
    m.add_function(wrap_pyfunction!(bin::_ft_write_bin, m)?)?;
    m.add_function(wrap_pyfunction!(train::_ft_train, m)?)
}

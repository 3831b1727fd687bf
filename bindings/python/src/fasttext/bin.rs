//! Facebook fastText `.bin` files: `_ft_read_bin` and `_ft_write_bin` (translation only; the
//! format and its validation are `candle_embed::fasttext::bin`).

use std::path::PathBuf;

use candle_embed::fasttext::bin::{self, Args, Matrix, MatrixView, ModelRef};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::args;
use crate::arrays::{vec_output, Floats};
use crate::errors::value_error;
use crate::gil::without_gil;

/// Read a Facebook fastText `.bin` file: a dict of the header's fields (`version` is None for
/// the old format), `words` (list of bytes), `counts` (int64), `ntokens`, `input`
/// (`(nwords + bucket, dim)` float32) and `output` (`(nwords, dim)`, None unless `full_model`).
#[pyfunction]
#[pyo3(signature = (path, full_model=true))]
pub fn _ft_read_bin<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::path)] path: PathBuf,
    #[pyo3(from_py_with = args::flag)] full_model: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let m = without_gil(py, || bin::read(&path, full_model))?;
    let d = PyDict::new(py);
    d.set_item("version", m.version)?;
    let a = &m.args;
    for (k, v) in a.ints() {
        d.set_item(k, v)?;
    }
    d.set_item("t", a.t)?;
    d.set_item("ntokens", m.ntokens)?;
    let words = PyList::empty(py);
    for w in &m.words {
        words.append(PyBytes::new(py, w))?;
    }
    d.set_item("words", words)?;
    let n = m.words.len();
    d.set_item("counts", vec_output(py, m.counts, &[n])?)?;
    let matrix = |x: Matrix| vec_output(py, x.data, &[x.rows, x.cols]);
    d.set_item("input", matrix(m.input)?)?;
    match m.output {
        Some(o) => d.set_item("output", matrix(o)?)?,
        None => d.set_item("output", py.None())?,
    }
    Ok(d)
}

/// An `int32` header field (a `ValueError` outside its range, as every int argument).
fn int32(obj: &Bound<'_, PyAny>) -> PyResult<i32> {
    let v = args::signed(obj)?;
    i32::try_from(v).map_err(|_| value_error(format!("{v} does not fit in a .bin file's int32")))
}

/// A `(rows, cols)` float32 matrix argument.
fn matrix_arg<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<(Floats<'py, f32>, usize, usize)> {
    let m = Floats::<f32>::read(obj, what)?;
    match *m.shape() {
        [r, c] => Ok((m, r, c)),
        _ => Err(value_error(format!(
            "{what} must be 2-D, got shape {:?}",
            m.shape()
        ))),
    }
}

/// Write a Facebook fastText `.bin` file (version 12) atomically: `words` as bytes, `counts`
/// (int64), the `input` (`(len(words) + bucket, dim)`) and `output` (`(len(words), dim)`)
/// matrices and the header's fields (`dim` is the matrices' width).
#[pyfunction]
#[pyo3(signature = (path, words, counts, input, output, *, ws, epoch, min_count, neg,
    word_ngrams, loss, model, bucket, minn, maxn, lr_update_rate, t, ntokens))]
#[allow(clippy::too_many_arguments)]
pub fn _ft_write_bin(
    py: Python<'_>,
    #[pyo3(from_py_with = args::path)] path: PathBuf,
    words: Vec<Vec<u8>>,
    counts: &Bound<'_, PyAny>,
    input: &Bound<'_, PyAny>,
    output: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = int32)] ws: i32,
    #[pyo3(from_py_with = int32)] epoch: i32,
    #[pyo3(from_py_with = int32)] min_count: i32,
    #[pyo3(from_py_with = int32)] neg: i32,
    #[pyo3(from_py_with = int32)] word_ngrams: i32,
    #[pyo3(from_py_with = int32)] loss: i32,
    #[pyo3(from_py_with = int32)] model: i32,
    #[pyo3(from_py_with = int32)] bucket: i32,
    #[pyo3(from_py_with = int32)] minn: i32,
    #[pyo3(from_py_with = int32)] maxn: i32,
    #[pyo3(from_py_with = int32)] lr_update_rate: i32,
    #[pyo3(from_py_with = args::real)] t: f64,
    #[pyo3(from_py_with = args::signed)] ntokens: i64,
) -> PyResult<()> {
    let counts: Vec<i64> = counts
        .extract()
        .map_err(|_| value_error("counts must be a sequence of ints in [0, 2**63)"))?;
    let (input, rows_in, dim) = matrix_arg(input, "input")?;
    let (output, rows_out, dim_out) = matrix_arg(output, "output")?;
    let dim = i32::try_from(dim).map_err(|_| value_error(format!("dim {dim} is too large")))?;
    let a = Args {
        dim,
        ws,
        epoch,
        min_count,
        neg,
        word_ngrams,
        loss,
        model,
        bucket,
        minn,
        maxn,
        lr_update_rate,
        t,
    };
    let m = ModelRef {
        args: &a,
        ntokens,
        words: &words,
        counts: &counts,
        input: MatrixView {
            rows: rows_in,
            cols: dim as usize,
            data: input.values(),
        },
        output: MatrixView {
            rows: rows_out,
            cols: dim_out,
            data: output.values(),
        },
    };
    without_gil(py, || bin::write(&path, m))
}

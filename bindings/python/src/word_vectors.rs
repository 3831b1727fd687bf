//! Word-vector files for `KeyedVectors` (private functions of `candle_embed._native`):
//! word2vec text / binary / GloVe, the KeyedVectors safetensors layout, and the atomic write the
//! demo's plot goes through. Translation only; the work is in `candle_embed::io`.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_embed::io::atomic::write_atomic;
use candle_embed::io::keyed_vectors::{self as kvfile, Dtype, TensorBytes};
use candle_embed::io::word2vec::{self as fmt, ReadOptions, WriteOptions};
use numpy::{PyArrayDescrMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::args;
use crate::arrays::view::view;
use crate::arrays::{float_dtype, vec_output, with_out_float, Element, Floats, IdArray};
use crate::errors::value_error;
use crate::gil::without_gil;

/// The entries of a word-vector file as stored: ``(words, count, vectors)``, ``words`` the
/// undecoded bytes of every entry's word each followed by one space (duplicates kept),
/// ``vectors`` float32 ``(count, dim)``.
#[pyfunction]
#[pyo3(signature = (path, binary=false, no_header=false, limit=None))]
pub fn _read_word_vectors<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::path)] path: PathBuf,
    #[pyo3(from_py_with = args::flag)] binary: bool,
    #[pyo3(from_py_with = args::flag)] no_header: bool,
    #[pyo3(from_py_with = args::opt_size)] limit: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = ReadOptions {
        binary,
        no_header,
        limit,
    };
    let raw = without_gil(py, || fmt::read_raw(&path, opts))?;
    let words = PyBytes::new(py, &raw.words);
    let vectors = vec_output(py, raw.vectors, &[raw.count, raw.dim])?;
    Ok((words, raw.count, vectors).into_pyobject(py)?.into_any())
}

/// Write ``vectors`` (float16/32/64 ``(len(words), dim)``) in word2vec text or binary format,
/// atomically: ``header`` the count in the first line (``None``: no header line), ``prefix``
/// before every word, the rows of ``order`` in that order (default all), ``append`` after the
/// file's current content.
#[pyfunction]
#[pyo3(signature = (path, words, vectors, *, binary=false, header=None, prefix=String::new(), order=None, append=false))]
#[allow(clippy::too_many_arguments)]
pub fn _write_word_vectors(
    py: Python<'_>,
    #[pyo3(from_py_with = args::path)] path: PathBuf,
    #[pyo3(from_py_with = args::texts)] words: Vec<String>,
    vectors: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = args::flag)] binary: bool,
    #[pyo3(from_py_with = args::opt_size)] header: Option<usize>,
    #[pyo3(from_py_with = args::text)] prefix: String,
    order: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = args::flag)] append: bool,
) -> PyResult<()> {
    let order = match order.filter(|o| !o.is_none()) {
        None => None,
        Some(o) => Some(
            IdArray::read(o, "order")?
                .to_i64_1d("order")?
                .into_iter()
                .map(|r| usize::try_from(r).map_err(|_| value_error(format!("row {r} < 0"))))
                .collect::<PyResult<Vec<usize>>>()?,
        ),
    };
    let v = view(vectors, "vectors")?;
    with_out_float!(float_dtype(&v, "vectors")?, T => {
        let rows = Floats::<T>::of_view(v, "vectors")?;
        let dim = match *rows.shape() {
            [n, dim] if n == words.len() => dim,
            _ => {
                return Err(value_error(format!(
                    "vectors must have shape ({}, dim), got {:?}",
                    words.len(),
                    rows.shape()
                )))
            }
        };
        let data = rows.values();
        let opts = WriteOptions { binary, header, prefix: &prefix, order: order.as_deref(), append };
        without_gil(py, || fmt::write_with(&path, &words, data, dim, opts))
    })
}

/// The bytes of a slice of plain numbers, in memory order (little-endian on every platform we
/// build for: checked at compile time below).
fn bytes_of<T: Element + Copy>(v: &[T]) -> &[u8] {
    // SAFETY: plain numbers (floats, integers) have no padding or invalid bit patterns, so their
    // memory read as bytes is always initialised and valid.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}
const _: () = assert!(
    cfg!(target_endian = "little"),
    "safetensors files are little-endian"
);

/// Write a KeyedVectors file (see ``candle_embed::io::keyed_vectors``): ``vectors`` (float16/32/64
/// ``(n, dim)``) as tensor ``weight``, each of ``attrs`` (``(name, int64 or float64 (n,))``) as a
/// tensor of that name, and ``metadata``; atomically.
#[pyfunction]
pub fn _write_keyed_vectors(
    py: Python<'_>,
    #[pyo3(from_py_with = args::path)] path: PathBuf,
    vectors: &Bound<'_, PyAny>,
    attrs: Vec<(String, Bound<'_, PyAny>)>,
    metadata: HashMap<String, String>,
) -> PyResult<()> {
    let v = view(vectors, "vectors")?;
    let dtype = float_dtype(&v, "vectors")?;
    let mut ints = Vec::new();
    let mut floats = Vec::new();
    for (name, arr) in &attrs {
        let a = view(arr, name)?;
        if a.array.dtype().kind() == b'f' {
            floats.push((name.as_str(), Floats::<f64>::of_view(a, name)?));
        } else {
            ints.push((name.as_str(), Floats::<i64>::of_view(a, name)?));
        }
    }
    with_out_float!(dtype, T => {
        let rows = Floats::<T>::of_view(v, "vectors")?;
        let st_dtype = match dtype {
            candle_core::DType::F16 => Dtype::F16,
            candle_core::DType::F64 => Dtype::F64,
            _ => Dtype::F32,
        };
        let mut tensors = vec![TensorBytes {
            name: "weight",
            dtype: st_dtype,
            shape: rows.shape(),
            data: bytes_of(rows.values()),
        }];
        for (name, a) in &ints {
            tensors.push(TensorBytes { name, dtype: Dtype::I64, shape: a.shape(), data: bytes_of(a.values()) });
        }
        for (name, a) in &floats {
            tensors.push(TensorBytes { name, dtype: Dtype::F64, shape: a.shape(), data: bytes_of(a.values()) });
        }
        without_gil(py, || kvfile::write(&path, &tensors, metadata))
    })
}

/// The header of a safetensors file, checked against the file's size, and nothing else:
/// ``({name: (dtype, shape, offset, nbytes)}, metadata)``, ``dtype`` safetensors' name
/// (``"F32"``, ``"I64"``, ...), ``offset`` from the start of the file.
#[pyfunction]
pub fn _index_keyed_vectors<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::path)] path: PathBuf,
) -> PyResult<Bound<'py, PyAny>> {
    let (index, metadata) = without_gil(py, || kvfile::index(&path))?;
    let tensors = PyDict::new(py);
    for (name, loc) in index {
        let entry = (format!("{:?}", loc.dtype), loc.shape, loc.offset, loc.len);
        tensors.set_item(name, entry)?;
    }
    Ok((tensors, metadata).into_pyobject(py)?.into_any())
}

/// Write ``data`` to ``path`` atomically, as every file candle_embed writes (temporary file,
/// sync, rename; a new file gets ``0666 & ~umask``).
#[pyfunction]
pub fn _write_file_atomic(
    py: Python<'_>,
    #[pyo3(from_py_with = args::path)] path: PathBuf,
    data: &[u8],
) -> PyResult<()> {
    without_gil(py, || {
        write_atomic(&path, |w| {
            w.write_all(data).map_err(|source| candle_embed::Error::Io {
                context: format!("cannot write {}", path.display()),
                source,
            })
        })
    })
}

/// Register the functions on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_read_word_vectors, m)?)?;
    m.add_function(wrap_pyfunction!(_write_word_vectors, m)?)?;
    m.add_function(wrap_pyfunction!(_write_keyed_vectors, m)?)?;
    m.add_function(wrap_pyfunction!(_index_keyed_vectors, m)?)?;
    m.add_function(wrap_pyfunction!(_write_file_atomic, m)?)?;
    Ok(())
}

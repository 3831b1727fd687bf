//! Scalar arguments (ints, reals, flags, strings, paths), read by the bindings' own
//! extractors so that every failure is one of our exception classes.
//!
//! PyO3's built-in conversions raise the builtin `OverflowError` (a negative or out-of-range
//! int, an int too large for a float), `TypeError` (a float for a `bool`, an int for a `str`)
//! and `UnicodeEncodeError` (a `str` with a lone surrogate) before our code runs, and the error
//! policy lets only our classes out (`CandleEmbedTypeError` for the wrong type,
//! `CandleEmbedValueError` for a value out of range). Every scalar argument of the bindings is
//! therefore read with one of these extractors, e.g.
//! `#[pyo3(from_py_with = args::size)] num_embeddings: usize` (PyO3 adds the argument's name as
//! a note on the exception). `from_py_with` rather than newtypes keeps literal defaults, so the
//! runtime signatures stay what the `.pyi` stub says.
//!
//! - ints: [`size`], [`unsigned`], [`signed`] (and `opt_` forms): read from the whole int;
//! - reals: [`real`], [`opt_real`], [`real_pair`]: anything with `__float__` (int, float, NumPy
//!   scalar); an int beyond a float's range is a `ValueError`;
//! - [`flag`]: `bool` or `numpy.bool_` only (`0` / `1` are not flags);
//! - [`text`]: a `str` that is valid Unicode (a lone surrogate is a `ValueError`); [`texts`]
//!   a list of them;
//! - [`path`]: a `str`, `bytes` or `os.PathLike`, as the file system spells it (a lone
//!   surrogate that `os.fsencode` refuses, or a NUL byte, is a `ValueError`).

use std::path::PathBuf;

use pyo3::exceptions::{PyOverflowError, PyUnicodeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PySequence, PyString};

use crate::errors::{type_error, value_error};

/// Any object with `__index__` (int, bool, NumPy integer) as an i128, or the reason it is not
/// one: a `TypeError` for non-integers, a `ValueError` for an int beyond 128 bits.
fn whole(obj: &Bound<'_, PyAny>) -> PyResult<i128> {
    match obj.extract::<i128>() {
        Ok(v) => Ok(v),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            Err(value_error(format!("{} is out of range", short_repr(obj))))
        }
        Err(_) => Err(type_error(format!(
            "expected an int, got {}",
            type_name(obj)
        ))),
    }
}

/// The name of `obj`'s type, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// `repr(obj)`, cut short (a huge int's repr is thousands of digits) at a character boundary;
/// `?` when the repr itself fails (a list nested too deeply, an int past Python's digit limit).
pub fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let r = obj
        .repr()
        .map_or_else(|_| "?".to_owned(), |r| r.to_string());
    match r.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &r[..cut]),
        None => r,
    }
}

fn in_range<T: TryFrom<i128>>(v: i128, lo: &str, hi: &str) -> PyResult<T> {
    T::try_from(v).map_err(|_| value_error(format!("{v} is out of range [{lo}, {hi}]")))
}

/// A size or count: an int in `[0, 2**64)`. Whether that much memory exists is the callee's
/// question (it answers MemoryError / ValueError).
pub fn size(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let v = whole(obj)?;
    if v < 0 {
        return Err(value_error(format!("expected a size >= 0, got {v}")));
    }
    in_range(v, "0", &usize::MAX.to_string())
}

/// An unsigned 64-bit value such as a seed: an int in `[0, 2**64)`.
pub fn unsigned(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    in_range(whole(obj)?, "0", "2**64 - 1")
}

/// A signed 64-bit value such as an offset or `padding_idx`.
pub fn signed(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    in_range(whole(obj)?, "-2**63", "2**63 - 1")
}

/// `None` or [`size`].
pub fn opt_size(obj: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
    none_or(obj, size)
}

/// `None` or [`unsigned`].
pub fn opt_unsigned(obj: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    none_or(obj, unsigned)
}

/// `None` or [`signed`].
pub fn opt_signed(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    none_or(obj, signed)
}

fn none_or<T>(
    obj: &Bound<'_, PyAny>,
    read: fn(&Bound<'_, PyAny>) -> PyResult<T>,
) -> PyResult<Option<T>> {
    if obj.is_none() {
        Ok(None)
    } else {
        read(obj).map(Some)
    }
}

/// A real number (float, int, NumPy scalar, anything with `__float__`): a `TypeError`
/// otherwise, a `ValueError` for an int too large for a float (PyO3: `OverflowError`).
/// Whether NaN, infinity or a negative value is acceptable is the callee's question.
pub fn real(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    obj.extract::<f64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(obj.py()) {
            value_error(format!("{} is too large to be a float", short_repr(obj)))
        } else {
            type_error(format!("expected a real number, got {}", type_name(obj)))
        }
    })
}

/// `None` or [`real`].
pub fn opt_real(obj: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    none_or(obj, real)
}

/// A pair of real numbers given as any sequence of length two (`betas`). At most three items
/// are read, so an endless iterator is refused instead of consumed.
pub fn real_pair(obj: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let not_pair = || {
        type_error(format!(
            "expected a pair of numbers, got {}",
            type_name(obj)
        ))
    };
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(not_pair());
    }
    let items: Vec<Bound<'_, PyAny>> = obj
        .try_iter()
        .and_then(|it| it.take(3).collect::<PyResult<_>>())
        .map_err(|_| not_pair())?;
    match items.as_slice() {
        [a, b] => Ok((real(a)?, real(b)?)),
        _ => Err(value_error(format!(
            "expected a pair of numbers, got {}",
            if items.len() > 2 {
                "more".to_owned()
            } else {
                items.len().to_string()
            }
        ))),
    }
}

/// A `bool` (or NumPy bool); anything else is a `TypeError` (`0` / `1` are not flags).
pub fn flag(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(b.is_true());
    }
    if type_name(obj) == "bool" || type_name(obj) == "bool_" {
        if let Ok(b) = obj.is_truthy() {
            return Ok(b);
        }
    }
    Err(type_error(format!(
        "expected a bool, got {}",
        type_name(obj)
    )))
}

/// A `str` (an option name, a dtype, a device): a `TypeError` for anything else, a
/// `ValueError` for a string that is not valid Unicode (a lone surrogate).
pub fn text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = obj
        .cast::<PyString>()
        .map_err(|_| type_error(format!("expected a str, got {}", type_name(obj))))?;
    s.to_cow().map(|c| c.into_owned()).map_err(|_| {
        value_error(format!(
            "{} is not valid Unicode (it holds a lone surrogate)",
            short_repr(obj)
        ))
    })
}

/// A list or tuple of [`text`]s (words, names): a `TypeError` for anything else (a `str` is
/// not a list of words), each item read as [`text`].
pub fn texts(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let seq = obj
        .cast::<PySequence>()
        .ok()
        .filter(|_| !obj.is_instance_of::<PyString>() && !obj.is_instance_of::<PyBytes>());
    let Some(seq) = seq else {
        return Err(type_error(format!(
            "expected a list of str, got {}",
            type_name(obj)
        )));
    };
    seq.try_iter()?.map(|item| text(&item?)).collect()
}

/// The default of a [`text`] argument, in a `signature` (PyO3 renders a non-literal default
/// as `...`, so such functions spell their `text_signature` out).
pub fn default_text(s: &str) -> String {
    s.to_owned()
}

/// A file path: `str`, `bytes` or an `os.PathLike`, spelled as the file system spells it
/// (`os.fsencode`: a name read from a directory with undecodable bytes round-trips). A `str`
/// that cannot be encoded (a lone surrogate outside the `surrogateescape` range) or a path with
/// a NUL byte is a `ValueError`, as Python's `open()` says; anything else a `TypeError`.
pub fn path(obj: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    let py = obj.py();
    let os = py.import("os")?;
    let not_path = || {
        type_error(format!(
            "expected a path (str, bytes or os.PathLike), got {}",
            type_name(obj)
        ))
    };
    let raw = os.call_method1("fspath", (obj,)).map_err(|_| not_path())?;
    let encoded = if raw.is_instance_of::<PyBytes>() {
        raw.clone()
    } else {
        os.call_method1("fsencode", (&raw,)).map_err(|e| {
            if e.is_instance_of::<PyUnicodeError>(py) {
                value_error(format!(
                    "path {} cannot be encoded for the file system (a lone surrogate?)",
                    short_repr(&raw)
                ))
            } else {
                not_path()
            }
        })?
    };
    let bytes = encoded
        .cast::<PyBytes>()
        .map_err(|_| not_path())?
        .as_bytes();
    if bytes.contains(&0) {
        return Err(value_error(format!(
            "path {} contains a NUL byte",
            short_repr(&raw)
        )));
    }
    os_path(bytes)
}

#[cfg(unix)]
fn os_path(bytes: &[u8]) -> PyResult<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// Elsewhere `os.fsencode` gives UTF-8 (Windows' file-system encoding since Python 3.6).
#[cfg(not(unix))]
fn os_path(bytes: &[u8]) -> PyResult<PathBuf> {
    std::str::from_utf8(bytes)
        .map(PathBuf::from)
        .map_err(|_| value_error("path is not valid UTF-8"))
}

//! Integer arguments, read from the whole Python int.
//!
//! PyO3 reads `usize` / `u64` / `i64` through C conversions that raise `OverflowError` for a
//! negative or out-of-range int before our code runs, and the error policy lets only
//! `ValueError` / `TypeError` / `IndexError` / `MemoryError` out. Every int argument of the
//! bindings is therefore read with one of these extractors, e.g.
//! `#[pyo3(from_py_with = args::size)] num_embeddings: usize` (PyO3 adds the argument's name as
//! a note on the exception). `from_py_with` rather than newtypes keeps literal defaults, so the
//! runtime signatures stay what the `.pyi` stub says.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;

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
            obj.get_type()
                .name()
                .map_or_else(|_| "?".to_owned(), |n| n.to_string())
        ))),
    }
}

/// `repr(obj)`, cut short: a huge int's repr is thousands of digits.
fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let r = obj
        .repr()
        .map_or_else(|_| "?".to_owned(), |r| r.to_string());
    if r.len() > 40 {
        format!("{}...", &r[..40])
    } else {
        r
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

//! NumPy arrays in and out: integer ids of any width (borrowed when contiguous), float arrays,
//! fresh output arrays filled without the GIL, and `out=` buffers.

use std::borrow::Cow;

use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat};

use crate::errors::{type_error, value_error};

/// Ids as NumPy gave them, one variant per integer dtype.
pub enum IdArray<'py> {
    I8(PyReadonlyArrayDyn<'py, i8>),
    I16(PyReadonlyArrayDyn<'py, i16>),
    I32(PyReadonlyArrayDyn<'py, i32>),
    I64(PyReadonlyArrayDyn<'py, i64>),
    U8(PyReadonlyArrayDyn<'py, u8>),
    U16(PyReadonlyArrayDyn<'py, u16>),
    U32(PyReadonlyArrayDyn<'py, u32>),
    U64(PyReadonlyArrayDyn<'py, u64>),
}

fn numpy(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("numpy")
}

/// `np.asarray(obj)` for anything that is not already an ndarray.
pub fn as_ndarray<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyUntypedArray>> {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return Ok(a.clone());
    }
    let arr = numpy(obj.py())?
        .call_method1("asarray", (obj,))
        .map_err(|e| type_error(format!("expected an array or a sequence of numbers: {e}")))?;
    Ok(arr.cast_into::<PyUntypedArray>()?)
}

impl<'py> IdArray<'py> {
    /// Accept an integer ndarray of any shape and strides, a Python int, or a (nested) sequence
    /// of ints. Floats, bools, objects, complex numbers and strings are a `TypeError`.
    pub fn extract(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
            return Err(type_error(format!(
                "{what} must be integers, got {}",
                obj.get_type().name()?
            )));
        }
        let from_sequence = obj.cast::<PyUntypedArray>().is_err();
        let mut arr = as_ndarray(obj)?;
        let py = obj.py();
        // np.asarray([]) is float64: an empty Python sequence means "no ids".
        if from_sequence && arr.len() == 0 && arr.dtype().kind() == b'f' {
            arr = numpy(py)?
                .call_method1("asarray", (obj, "int64"))?
                .cast_into::<PyUntypedArray>()?;
        }
        let dtype = arr.dtype();
        let kind = dtype.kind();
        if kind != b'i' && kind != b'u' {
            return Err(type_error(format!(
                "{what} must be an integer array, got dtype {}",
                dtype.str()?
            )));
        }
        if !dtype.is_native_byteorder().unwrap_or(true) {
            let native =
                arr.call_method1("astype", (dtype.call_method1("newbyteorder", ("=",))?,))?;
            return Self::extract(&native, what);
        }
        let any = arr.as_any();
        Ok(match (kind, dtype.itemsize()) {
            (b'i', 1) => IdArray::I8(any.extract()?),
            (b'i', 2) => IdArray::I16(any.extract()?),
            (b'i', 4) => IdArray::I32(any.extract()?),
            (b'i', 8) => IdArray::I64(any.extract()?),
            (b'u', 1) => IdArray::U8(any.extract()?),
            (b'u', 2) => IdArray::U16(any.extract()?),
            (b'u', 4) => IdArray::U32(any.extract()?),
            (b'u', 8) => IdArray::U64(any.extract()?),
            _ => return Err(type_error(format!("unsupported id dtype {}", dtype.str()?))),
        })
    }
}

/// The elements of an array in C order: borrowed when contiguous, else copied once.
/// (`as_slice` alone also accepts Fortran order, whose memory order is not the logical order.)
pub fn contiguous<'a, T: Element + Copy>(a: &'a PyReadonlyArrayDyn<'_, T>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// Expand `$body` once per id dtype with `$ids: &[I]` (C order) and `$shape: &[usize]` bound.
#[macro_export]
macro_rules! with_ids {
    ($arr:expr, |$ids:ident, $shape:ident| $body:expr) => {{
        #[allow(unused_imports)]
        use numpy::PyUntypedArrayMethods as _;
        use $crate::arrays::{contiguous, IdArray};
        match &$arr {
            IdArray::I8(a) => {
                let c = contiguous(a);
                let $ids = &*c;
                let $shape = a.shape();
                $body
            }
            IdArray::I16(a) => {
                let c = contiguous(a);
                let $ids = &*c;
                let $shape = a.shape();
                $body
            }
            IdArray::I32(a) => {
                let c = contiguous(a);
                let $ids = &*c;
                let $shape = a.shape();
                $body
            }
            IdArray::I64(a) => {
                let c = contiguous(a);
                let $ids = &*c;
                let $shape = a.shape();
                $body
            }
            IdArray::U8(a) => {
                let c = contiguous(a);
                let $ids = &*c;
                let $shape = a.shape();
                $body
            }
            IdArray::U16(a) => {
                let c = contiguous(a);
                let $ids = &*c;
                let $shape = a.shape();
                $body
            }
            IdArray::U32(a) => {
                let c = contiguous(a);
                let $ids = &*c;
                let $shape = a.shape();
                $body
            }
            IdArray::U64(a) => {
                let c = contiguous(a);
                let $ids = &*c;
                let $shape = a.shape();
                $body
            }
        }
    }};
}

/// A float array converted to `T` (any float or integer input dtype is cast; others rejected).
pub fn float_array<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let arr = as_ndarray(obj)?;
    let kind = arr.dtype().kind();
    if !matches!(kind, b'f' | b'i' | b'u') {
        return Err(type_error(format!(
            "{what} must be a real-valued array, got dtype {}",
            arr.dtype().str()?
        )));
    }
    let target = numpy::dtype::<T>(obj.py());
    let cast = if arr.dtype().is_equiv_to(&target) {
        arr.into_any()
    } else {
        arr.call_method1("astype", (target,))?
    };
    cast.extract()
}

/// A fresh, uninitialised C-order array; the caller must overwrite every element.
pub fn new_output<'py, T: Element>(py: Python<'py>, shape: &[usize]) -> Bound<'py, PyArrayDyn<T>> {
    // SAFETY: callers fill every element before the array is visible to Python.
    unsafe { PyArrayDyn::<T>::new(py, shape.to_vec(), false) }
}

/// Check an `out=` argument: an ndarray of dtype `T`, the expected shape, C-contiguous and
/// writeable, not overlapping any input (NumPy's borrow tracking refuses overlap).
pub fn out_buffer<'py, T: Element>(
    out: &Bound<'py, PyAny>,
    shape: &[usize],
) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    let arr = out
        .cast::<PyUntypedArray>()
        .map_err(|_| value_error("out must be a numpy.ndarray"))?;
    let want = numpy::dtype::<T>(out.py());
    if !arr.dtype().is_equiv_to(&want) {
        return Err(value_error(format!(
            "out has dtype {}, expected {}",
            arr.dtype().str()?,
            want.str()?
        )));
    }
    if arr.shape() != shape {
        return Err(value_error(format!(
            "out has shape {:?}, expected {shape:?}",
            arr.shape()
        )));
    }
    if !arr.is_c_contiguous() {
        return Err(value_error("out must be C-contiguous"));
    }
    let typed = arr.cast::<PyArrayDyn<T>>()?;
    typed
        .try_readwrite()
        .map_err(|e| value_error(format!("out is not writeable or overlaps an input ({e})")))
}

//! Outputs: the one rule for their element type and the one way they are filled.
//!
//! [`fill`] is the only place where a kernel writes into NumPy memory, and (with [`collect`])
//! the only place that releases the GIL around a kernel that produces an array. A fresh output
//! is created through NumPy's C API with its refusals translated, never with a call that panics
//! when NumPy says no (256 GiB outputs, 65 dimensions).

use std::os::raw::c_int;
use std::ptr;

use candle_core::DType;
use numpy::npyffi::{self, npy_intp, NpyTypes, PY_ARRAY_API};
use numpy::{
    Element, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadwriteArrayDyn,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::view::Region;
use crate::errors::{from_numpy, runtime_error, value_error, ErrorClass};
use crate::gil::without_gil;

/// The element type of an output whose dtype follows a table (or an input's float dtype).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFloat {
    F16,
    F32,
    F64,
}

impl OutFloat {
    /// The one output-dtype rule: float64 stays float64, float16 stays float16, and everything
    /// else (float32, and bfloat16, which NumPy lacks) comes out as float32.
    pub fn of(dtype: DType) -> OutFloat {
        match dtype {
            DType::F64 => OutFloat::F64,
            DType::F16 => OutFloat::F16,
            _ => OutFloat::F32,
        }
    }
}

/// Run `$body` with `$T` the output element type [`OutFloat::of`] picks for `$dtype`.
macro_rules! with_out_float {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $crate::arrays::OutFloat::of($dtype) {
            $crate::arrays::OutFloat::F64 => {
                type $T = f64;
                $body
            }
            $crate::arrays::OutFloat::F16 => {
                type $T = half::f16;
                $body
            }
            $crate::arrays::OutFloat::F32 => {
                type $T = f32;
                $body
            }
        }
    };
}
pub(crate) use with_out_float;

/// Run `kernel` without the GIL on the elements (C order) of an output of `shape`: a fresh
/// array when `out` is absent or `None`, else the caller's `out`, which must be an ndarray of
/// element type `T` and exactly `shape`, C-contiguous, writeable, and share no memory with
/// any of `inputs`. Returns the array (`out` itself when given) and the kernel's own result.
///
/// The kernel must write every element: a fresh array starts uninitialised. When it fails, a
/// fresh array is dropped unseen; it must not have written into `out` (every core `_into`
/// kernel validates before writing).
pub fn fill<'py, T, R, K>(
    py: Python<'py>,
    out: Option<&Bound<'py, PyAny>>,
    shape: &[usize],
    inputs: &[Region],
    kernel: K,
) -> PyResult<(Bound<'py, PyAny>, R)>
where
    T: Element + Send,
    R: Send,
    K: FnOnce(&mut [T]) -> candle_embed::Result<R> + Send,
{
    match out.filter(|o| !o.is_none()) {
        None => {
            let arr = empty::<T>(py, shape)?;
            // SAFETY: `arr` was created just above and is C-contiguous; no Python code and no
            // other thread can see it before this function returns it.
            let dst = unsafe { arr.as_slice_mut() }
                .map_err(|e| runtime_error(format!("internal: fresh output ({e})")))?;
            let r = without_gil(py, || kernel(dst))?;
            Ok((arr.into_any(), r))
        }
        Some(o) => {
            let mut buf = out_buffer::<T>(o, shape, inputs)?;
            let dst = buf.as_slice_mut().map_err(|e| value_error(e.to_string()))?;
            let r = without_gil(py, || kernel(dst))?;
            Ok((o.clone(), r))
        }
    }
}

/// Run `kernel` without the GIL and hand the vector it returns to NumPy (no copy) as an array
/// of `shape`.
pub fn collect<'py, T, K>(
    py: Python<'py>,
    shape: &[usize],
    kernel: K,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Element + Send,
    K: FnOnce() -> candle_embed::Result<Vec<T>> + Send,
{
    let v = without_gil(py, kernel)?;
    vec_output(py, v, shape)
}

/// A vector handed to NumPy without a copy, as an array of `shape` (`v.len()` elements).
pub fn vec_output<'py, T: Element>(
    py: Python<'py>,
    v: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let flat = PyArray1::from_vec(py, v);
    if shape.len() == 1 {
        return Ok(flat.into_any());
    }
    flat.reshape(shape.to_vec())
        .map(|a| a.into_any())
        .map_err(|e| from_numpy(py, e, ErrorClass::Runtime))
}

/// A fresh, uninitialised C-order array of `shape`, or NumPy's refusal as our exception.
fn empty<'py, T: Element>(py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let dims = shape
        .iter()
        .map(|&n| npy_intp::try_from(n))
        .collect::<Result<Vec<npy_intp>, _>>()
        .map_err(|_| value_error(format!("array is too big: shape {shape:?}")))?;
    let ndim = c_int::try_from(dims.len())
        .map_err(|_| value_error(format!("an output of {} dimensions", dims.len())))?;
    // SAFETY: the documented use of `PyArray_NewFromDescr`: the array type, a descriptor
    // reference it steals, `ndim` dimensions it only reads, and null strides / data / base
    // for a fresh C-order allocation. It returns null with a Python error set when NumPy
    // refuses (no memory, a size beyond `npy_intp`, more dimensions than NumPy supports).
    let ptr = unsafe {
        PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, NpyTypes::PyArray_Type),
            T::get_dtype(py).into_dtype_ptr(),
            ndim,
            dims.as_ptr() as *mut npy_intp,
            ptr::null_mut(),
            ptr::null_mut(),
            0,
            ptr::null_mut(),
        )
    };
    if ptr.is_null() {
        return Err(from_numpy(py, PyErr::fetch(py), ErrorClass::Runtime));
    }
    // SAFETY: a non-null result is a new reference to an ndarray of element type `T`.
    Ok(unsafe { Bound::from_owned_ptr(py, ptr).cast_into_unchecked() })
}

/// Check the caller's `out=` (see [`fill`]) and borrow it for writing.
fn out_buffer<'py, T: Element>(
    out: &Bound<'py, PyAny>,
    shape: &[usize],
    inputs: &[Region],
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
    let region = Region::of(typed);
    if inputs.iter().any(|input| input.overlaps(&region)) {
        return Err(value_error(
            "out overlaps an input (they share memory): pass a separate array",
        ));
    }
    typed
        .try_readwrite()
        .map_err(|e| value_error(format!("out is not writeable or overlaps an input ({e})")))
}

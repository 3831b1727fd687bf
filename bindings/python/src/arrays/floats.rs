//! Float inputs (`x`, `grad_output`, `per_sample_weights`, `values`, tables): one rule.
//!
//! [`Floats::read`] takes any real array-like (float or integer dtype; bools, complex numbers,
//! strings and objects are a `TypeError`) as elements of `T`. It borrows the caller's memory
//! when that is already C-ordered native `T` (the hot path: no copy, no Python call for an
//! ndarray); otherwise NumPy casts it (`astype`) or it is copied into C order, both fallibly.
//!
//! Where the input's own dtype decides the output's (RoPE, `index_add`, `coalesce`, tables
//! given from NumPy), [`float_dtype`] says which of float16/float32/float64 it is; other widths
//! and non-floats are a `TypeError`.
//!
//! Borrowed float memory is read while the GIL is released: another thread writing to it
//! during a call can only change the values computed with, never where anything is read or
//! written (indices are snapshotted: see `ids`).

use candle_core::DType;
use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::view::{c_order_copy, view, Region, Viewed};
use crate::errors::{from_numpy, type_error, value_error, ErrorClass};

/// A float input as elements of `T` in C order: the caller's memory, or a copy.
pub struct Floats<'py, T: Element> {
    data: Data<'py, T>,
    shape: Vec<usize>,
    region: Region,
}

enum Data<'py, T: Element> {
    /// The caller's array, C-contiguous (checked when it was read).
    Borrowed(PyReadonlyArrayDyn<'py, T>),
    /// A C-order copy of a non-contiguous array.
    Copied(Vec<T>),
}

impl<'py, T: Element + Copy> Floats<'py, T> {
    /// Read a real array-like as `T` (see the module docs).
    pub fn read(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        Self::of_view(view(obj, what)?, what)
    }

    /// [`Floats::read`], with `None` (absent or Python `None`) passed through.
    pub fn read_opt(obj: Option<&Bound<'py, PyAny>>, what: &str) -> PyResult<Option<Self>> {
        obj.filter(|o| !o.is_none())
            .map(|o| Self::read(o, what))
            .transpose()
    }

    /// [`Floats::read`] of an input already seen as an ndarray.
    pub fn of_view(viewed: Viewed<'py>, what: &str) -> PyResult<Self> {
        let arr = viewed.array;
        let py = arr.py();
        let dtype = arr.dtype();
        if !matches!(dtype.kind(), b'f' | b'i' | b'u') {
            return Err(type_error(format!(
                "{what} must be a real-valued array, got dtype {}",
                dtype.str()?
            )));
        }
        let target = numpy::dtype::<T>(py);
        let arr = if dtype.is_equiv_to(&target) {
            arr.into_any()
        } else {
            // NumPy allocates the cast itself; its MemoryError / "too big" are translated.
            arr.call_method1("astype", (target,))
                .map_err(|e| from_numpy(py, e, ErrorClass::Type))?
        };
        let typed = arr.cast_into::<PyArrayDyn<T>>()?;
        let region = Region::of(&typed);
        let shape = typed.shape().to_vec();
        let borrowed = typed
            .try_readonly()
            .map_err(|e| value_error(format!("{what} cannot be read ({e})")))?;
        let data = if borrowed.is_c_contiguous() {
            Data::Borrowed(borrowed)
        } else {
            Data::Copied(c_order_copy(&borrowed, what)?)
        };
        Ok(Floats {
            data,
            shape,
            region,
        })
    }

    /// The elements in C order.
    pub fn values(&self) -> &[T] {
        match &self.data {
            // C-contiguous was checked on reading, so `as_slice` cannot fail here.
            Data::Borrowed(a) => a.as_slice().unwrap_or(&[]),
            Data::Copied(v) => v,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Where the caller's array lives (for the `out=` overlap check).
    pub fn region(&self) -> Region {
        self.region
    }

    /// The elements as an owned vector (a fallible copy when borrowed).
    pub fn into_vec(self, what: &str) -> PyResult<Vec<T>> {
        match self.data {
            Data::Borrowed(a) => c_order_copy(&a, what),
            Data::Copied(v) => Ok(v),
        }
    }
}

/// Which float type an input is, for ops whose output has the input's dtype: float16, float32
/// or float64; anything else is a `TypeError`.
pub fn float_dtype(viewed: &Viewed<'_>, what: &str) -> PyResult<DType> {
    let dtype = viewed.array.dtype();
    match (dtype.kind(), dtype.itemsize()) {
        (b'f', 2) => Ok(DType::F16),
        (b'f', 4) => Ok(DType::F32),
        (b'f', 8) => Ok(DType::F64),
        _ => Err(type_error(format!(
            "{what} must be a float16, float32 or float64 array, got dtype {}",
            dtype.str()?
        ))),
    }
}

//! Byte inputs: packed quantized rows, a 2-D uint8 array-like copied once into an owned vector
//! (a quantized table owns its bytes). Any other dtype is a `TypeError`: bytes are never cast.

use numpy::{PyArrayDescrMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::floats::Floats;
use super::view::view;
use crate::errors::{type_error, value_error};

/// A 2-D uint8 array-like as its bytes in C order and its shape `(rows, width)`.
pub fn read_bytes_2d(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<u8>, [usize; 2])> {
    let viewed = view(obj, what)?;
    let dtype = viewed.array.dtype();
    if dtype.kind() != b'u' || dtype.itemsize() != 1 {
        return Err(type_error(format!(
            "{what} must be a uint8 array of packed rows, got dtype {}",
            dtype.str()?
        )));
    }
    let &[rows, width] = viewed.array.shape() else {
        return Err(value_error(format!(
            "{what} must be 2-D (rows, row bytes), got shape {:?}",
            viewed.array.shape()
        )));
    };
    let bytes = Floats::<u8>::of_view(viewed, what)?.into_vec(what)?;
    Ok((bytes, [rows, width]))
}

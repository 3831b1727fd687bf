//! Tensors <-> NumPy for tables: dtype names, copies out (`weight` getters) and in.

use candle_core::{DType, Device, Tensor};
use candle_embed::dtype::dtype_name;
use numpy::{PyArray1, PyArrayDescrMethods, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{as_ndarray, float_array};
use crate::errors::{type_error, IntoPyResult};
use crate::gil::without_gil;

/// A copy of a tensor as a NumPy array (bfloat16 becomes float32: NumPy has no bfloat16).
pub fn tensor_to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let shape = t.dims().to_vec();
    let t = t.clone();
    macro_rules! copy_as {
        ($T:ty, $dt:expr) => {{
            let v: Vec<$T> = without_gil(py, move || {
                Ok(t.to_device(&Device::Cpu)?
                    .to_dtype($dt)?
                    .flatten_all()?
                    .to_vec1::<$T>()?)
            })?;
            Ok(PyArray1::from_vec(py, v).reshape(shape)?.into_any())
        }};
    }
    match t.dtype() {
        DType::F64 => copy_as!(f64, DType::F64),
        DType::F16 => copy_as!(half::f16, DType::F16),
        DType::I64 => copy_as!(i64, DType::I64),
        DType::U32 => copy_as!(u32, DType::U32),
        _ => copy_as!(f32, DType::F32),
    }
}

/// A float NumPy array as a CPU tensor, keeping float16/float32/float64; any other dtype
/// (integers, bools, complex, objects, long double) is a `TypeError`.
pub fn numpy_to_tensor(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    let arr = as_ndarray(obj)?;
    let dtype = arr.dtype();
    let (kind, size) = (dtype.kind(), dtype.itemsize());
    macro_rules! load {
        ($T:ty) => {{
            let a = float_array::<$T>(arr.as_any(), what)?;
            let shape = a.shape().to_vec();
            let v: Vec<$T> = a.as_array().iter().copied().collect();
            Tensor::from_vec(v, shape, &Device::Cpu)
                .map_err(candle_embed::Error::from)
                .py()
        }};
    }
    match (kind, size) {
        (b'f', 2) => load!(half::f16),
        (b'f', 4) => load!(f32),
        (b'f', 8) => load!(f64),
        _ => Err(type_error(format!(
            "{what} must be a float array, got dtype {}",
            dtype.str()?
        ))),
    }
}

/// A NumPy array copied into a new table on `device` (on the CPU, a large table lands in memory
/// advised for huge pages: `candle_embed::hugepages`).
pub fn numpy_to_table(obj: &Bound<'_, PyAny>, device: &Device) -> PyResult<Tensor> {
    let t = numpy_to_tensor(obj, "weight")?;
    let t = if device.is_cpu() {
        candle_embed::hugepages::into_table(t).py()?
    } else {
        t.to_device(device)
            .map_err(candle_embed::Error::from)
            .py()?
    };
    Ok(t)
}

/// The user-facing dtype name of a tensor.
pub fn dtype_str(t: &Tensor) -> &'static str {
    dtype_name(t.dtype())
}

//! Tensors <-> NumPy for tables and other whole tensors: a copy out (`weight` getters, gradient
//! values, portable-path results) and a copy in (`weight` setters, `from_pretrained`).

use candle_core::{DType, Device, Tensor};
use candle_embed::dtype::{dtype_name, Float};
use candle_embed::storage;
use numpy::Element;
use pyo3::prelude::*;

use super::floats::{float_dtype, Floats};
use super::output::{collect, fill, with_out_float};
use super::view::view;
use crate::errors::IntoPyResult;
use crate::gil::without_gil;

/// A copy of a tensor as a NumPy array of the same shape. Float tensors keep their dtype except
/// bfloat16, which NumPy lacks and comes out as float32 (exactly); the copy goes straight from
/// the tensor's storage into a fresh array.
pub fn tensor_to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    match t.dtype() {
        DType::F64 | DType::F32 | DType::F16 | DType::BF16 => {
            let t = if t.device().is_cpu() && t.is_contiguous() {
                t.clone()
            } else {
                let t = t.clone();
                without_gil(py, move || Ok(t.to_device(&Device::Cpu)?.contiguous()?))?
            };
            let shape = t.dims().to_vec();
            with_out_float!(t.dtype(), D => {
                let (arr, ()) = fill::<D, _, _>(py, None, &shape, &[], |dst| copy_elements(&t, dst))?;
                Ok(arr)
            })
        }
        DType::I64 => converted::<i64>(py, t),
        DType::U32 => converted::<u32>(py, t),
        _ => converted::<f32>(py, t),
    }
}

/// The elements of a contiguous CPU float tensor, converted to the output type `D`: a plain
/// copy when the types agree, else (a bfloat16 table read as float32) an exact widening.
fn copy_elements<D: Float>(t: &Tensor, dst: &mut [D]) -> candle_embed::Result<()> {
    if t.dtype() == D::DT {
        storage::read::<D, ()>(t, |src| dst.copy_from_slice(src))
    } else {
        storage::read::<half::bf16, ()>(t, |src| {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = D::of_f64(s.to_f64());
            }
        })
    }
}

/// A non-float tensor through candle's own conversion to `T`.
fn converted<'py, T>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>>
where
    T: Element + candle_core::WithDType,
{
    let shape = t.dims().to_vec();
    let t = t.clone();
    collect(py, &shape, move || {
        Ok(t.to_device(&Device::Cpu)?
            .to_dtype(T::DTYPE)?
            .flatten_all()?
            .to_vec1::<T>()?)
    })
}

/// A float16/float32/float64 array-like as a new CPU tensor of the same dtype and shape; any
/// other dtype (integers, bools, complex, objects, long double) is a `TypeError`.
pub fn numpy_to_tensor(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    let viewed = view(obj, what)?;
    let dtype = float_dtype(&viewed, what)?;
    with_out_float!(dtype, T => {
        let floats = Floats::<T>::of_view(viewed, what)?;
        let shape = floats.shape().to_vec();
        Tensor::from_vec(floats.into_vec(what)?, shape, &Device::Cpu).py()
    })
}

/// An array-like copied into a new table on `device` (on the CPU, the core's constructors
/// decide the table's memory placement).
pub fn numpy_to_table(obj: &Bound<'_, PyAny>, device: &Device) -> PyResult<Tensor> {
    let t = numpy_to_tensor(obj, "weight")?;
    if device.is_cpu() {
        Ok(t)
    } else {
        t.to_device(device).py()
    }
}

/// The user-facing dtype name of a tensor ("float32", "bfloat16", ...).
pub fn dtype_str(t: &Tensor) -> &'static str {
    dtype_name(t.dtype())
}

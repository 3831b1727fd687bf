//! Rotary position embedding on CUDA, forward and backward (the transpose: rotation by -theta).
//! Portable reference: the candle-op RoPE in `crate::positional` (narrow, mul, add, cat).

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, DType, Tensor};

use super::launch::{
    alloc_output, cuda_device, dims2, grid, ptr_of, suffix, tensor_ptr, u32_len, Kernel, Produce,
};
use super::module::ROPE;
use crate::{bail_invalid, bail_shape, Error, Result};

/// Rotary embedding on CUDA. `x`: `(..., T, head_dim)`; `cos`, `sin`: `(T, rotary_dim / 2)` in
/// float64 for a float64 `x`, else float32 (attention scaling already applied). Columns
/// `rotary_dim..head_dim` pass through. `backward = true` applies the transpose (rotation by
/// -theta), which is the gradient of the forward with respect to `x`.
pub fn rope(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    interleaved: bool,
    backward: bool,
) -> Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 2 {
        bail_shape!("x must be at least 2-D (..., T, head_dim), got {dims:?}");
    }
    let (seq, head_dim) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let (ct, half) = dims2(cos, "cos")?;
    if cos.dims() != sin.dims() || ct != seq || 2 * half > head_dim || half == 0 {
        bail_shape!(
            "cos/sin of shapes {:?}/{:?} do not fit x of shape {dims:?}",
            cos.dims(),
            sin.dims()
        );
    }
    let acc = if x.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    if cos.dtype() != acc || sin.dtype() != acc {
        return Err(Error::dtype(format!(
            "cos/sin must be {acc:?} for an x of {:?}",
            x.dtype()
        )));
    }
    let dev = cuda_device(x)?;
    if !cos.device().same_device(x.device()) || !sin.device().same_device(x.device()) {
        bail_invalid!("cos/sin must be on x's device");
    }
    let dtype = x.dtype();
    let name = format!("ce_rope_{}", suffix(dtype)?);
    if x.elem_count() == 0 {
        return Ok(x.zeros_like()?);
    }
    let n_rows = x.elem_count() / head_dim;
    let (nr32, seq32, hd32, rot32) = (
        u32_len(n_rows, "rows")?,
        u32_len(seq, "sequence length")?,
        u32_len(head_dim, "head_dim")?,
        u32_len(2 * half, "rotary_dim")?,
    );
    let inter = interleaved as u32;
    let sign: f32 = if backward { -1.0 } else { 1.0 };
    let (cos, sin) = (cos.contiguous()?, sin.contiguous()?);
    let (cos_p, sin_p) = (tensor_ptr(&cos)?, tensor_ptr(&sin)?);
    let x = x.contiguous()?;
    let shape = x.shape().clone();
    Ok(x.apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
        let (out, out_p) = alloc_output(&dev, dtype, n_rows * head_dim)?;
        let x_p = ptr_of(&s.slice, off)?;
        let kernel = Kernel::new(&dev, &ROPE, &name)?;
        // One thread per rotated pair or pass-through column.
        let work = n_rows * (half + head_dim - 2 * half);
        let cfg = LaunchConfig {
            grid_dim: (grid(work.div_ceil(256)), 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = kernel.builder();
        b.arg(&x_p).arg(&cos_p).arg(&sin_p).arg(&out_p).arg(&nr32);
        b.arg(&seq32).arg(&hd32).arg(&rot32).arg(&inter).arg(&sign);
        // SAFETY: shapes checked above; out holds x.elem_count() elements.
        unsafe { b.launch(cfg) }.w()?;
        Ok((out, shape.clone()))
    }))?)
}

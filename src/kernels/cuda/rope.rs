//! Rotary position embedding on CUDA, forward and backward (the transpose: rotation by -theta),
//! with the CPU kernel's geometry ([`RopeShape`]: partial rotary, both layouts, per-batch
//! position tables) and its checks. `RotaryEmbedding`'s candle op (`RopeOp`, which carries the
//! backward for autograd) runs [`rope_storage`] as its CUDA forward; [`rope`] is the same
//! kernel on tensors. Portable reference: `RotaryEmbedding::forward_portable` (narrow, mul, cat).

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaDevice, CudaStorage, DType, Layout, Shape, Tensor};

use super::launch::{
    alloc_output, cuda_device, dims2, grid, ptr_of, suffix, tensor_ptr, AccBuf, CResult, Kernel,
    Produce,
};
use super::module::ROPE;
use crate::kernels::cpu::rope::{self, RopeLayout, RopeShape};
use crate::{bail_invalid, Error, Result};

/// The geometry of `x` (`(..., T, head_dim)`) for cos/sin tables of `table_rows x half`
/// (`table_rows = batches * T`), checked by the CPU kernel's own check.
fn shape_of(
    dims: &[usize],
    table_rows: usize,
    half: usize,
    layout: RopeLayout,
) -> Result<RopeShape> {
    if dims.len() < 2 {
        return Err(Error::shape(format!(
            "x must be at least 2-D (..., T, head_dim), got {dims:?}"
        )));
    }
    let (seq_len, head_dim) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let shape = RopeShape {
        head_dim,
        rotary_dim: 2 * half,
        seq_len,
        batches: table_rows.checked_div(seq_len).unwrap_or(0),
        layout,
    };
    let n = dims.iter().product();
    if half == 0 || table_rows != shape.batches * seq_len {
        return Err(Error::shape(format!(
            "cos/sin of {table_rows} rows of {half} do not fit x of shape {dims:?}"
        )));
    }
    rope::check(n, n, &shape, table_rows * half).map_err(Error::shape)?;
    Ok(shape)
}

/// Rotary embedding on CUDA tensors. `x`: `(..., T, head_dim)`; `cos`, `sin`:
/// `(batches * T, rotary_dim / 2)` (batches 1, or `x`'s leading dimension for per-batch
/// positions) in float64 for a float64 `x`, else float32, attention scaling applied. Columns
/// `rotary_dim..head_dim` pass through. `backward = true` applies the transpose.
pub fn rope(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    interleaved: bool,
    backward: bool,
) -> Result<Tensor> {
    let (table_rows, half) = dims2(cos, "cos")?;
    if cos.dims() != sin.dims() {
        bail_invalid!("cos has shape {:?} but sin {:?}", cos.dims(), sin.dims());
    }
    let layout = if interleaved {
        RopeLayout::Interleaved
    } else {
        RopeLayout::Half
    };
    let shape = shape_of(x.dims(), table_rows, half, layout)?;
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
    suffix(dtype)?;
    if x.elem_count() == 0 {
        return Ok(x.zeros_like()?);
    }
    let (cos, sin) = (cos.contiguous()?, sin.contiguous()?);
    let (cos_p, sin_p) = (tensor_ptr(&cos)?, tensor_ptr(&sin)?);
    let x = x.contiguous()?;
    let dims = x.shape().clone();
    Ok(x.apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
        let x_p = ptr_of(&s.slice, off)?;
        let out = launch(
            &dev,
            dtype,
            x_p,
            dims.elem_count(),
            &shape,
            cos_p,
            sin_p,
            backward,
        )?;
        Ok((out, dims.clone()))
    }))?)
}

/// The CUDA forward of `RotaryEmbedding`'s candle op: `x` (storage and layout as candle hands
/// them to a custom op) rotated with the f64 tables `cos64`, `sin64` (`RopeTables`' `(batches,
/// T, rotary_dim / 2)`, uploaded here), `transpose` for the backward.
pub fn rope_storage(
    s: &CudaStorage,
    l: &Layout,
    shape: &RopeShape,
    cos64: &[f64],
    sin64: &[f64],
    transpose: bool,
) -> CResult<(CudaStorage, Shape)> {
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("rope: input must be contiguous")
    };
    let n = end - start;
    if sin64.len() != cos64.len() {
        candle_core::bail!("rope: cos and sin tables differ in length")
    }
    rope::check(n, n, shape, cos64.len()).map_err(candle_core::Error::Msg)?;
    let (dev, dtype) = (&s.device, candle_core::backend::BackendStorage::dtype(s));
    let x_p = ptr_of(&s.slice, start)?;
    // The tables in the kernel's precision (f64, or rounded to f32 as `cos32` is), a few KB.
    let cos = AccBuf::upload(dev, dtype, cos64)?;
    let sin = AccBuf::upload(dev, dtype, sin64)?;
    let out = launch(dev, dtype, x_p, n, shape, cos.ptr(), sin.ptr(), transpose)?;
    Ok((out, l.shape().clone()))
}

/// One launch over `n` elements of `x` (of `dtype`) at `x_p`; a fresh output of that dtype.
#[allow(clippy::too_many_arguments)]
fn launch(
    dev: &CudaDevice,
    dtype: DType,
    x_p: u64,
    n: usize,
    shape: &RopeShape,
    cos_p: u64,
    sin_p: u64,
    transpose: bool,
) -> CResult<CudaStorage> {
    let name = match suffix(dtype) {
        Ok(sfx) => format!("ce_rope_{sfx}"),
        Err(e) => candle_core::bail!("{e}"),
    };
    let (out, out_p) = alloc_output(dev, dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let n_rows = (n / shape.head_dim) as u64;
    let rows_per_batch = n_rows / shape.batches as u64;
    let (Ok(seq), Ok(hd), Ok(rot)) = (
        u32::try_from(shape.seq_len),
        u32::try_from(shape.head_dim),
        u32::try_from(shape.rotary_dim),
    ) else {
        candle_core::bail!("rope: sequence length or head_dim beyond the kernel's u32 range")
    };
    let inter = (shape.layout == RopeLayout::Interleaved) as u32;
    let sign: f32 = if transpose { -1.0 } else { 1.0 };
    let half = shape.rotary_dim / 2;
    // One thread per rotated pair or pass-through column.
    let work = n_rows as usize * (half + shape.head_dim - shape.rotary_dim);
    let cfg = LaunchConfig {
        grid_dim: (grid(work.div_ceil(256)), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let kernel = Kernel::new(dev, &ROPE, &name)?;
    let mut b = kernel.builder();
    b.arg(&x_p).arg(&cos_p).arg(&sin_p).arg(&out_p);
    b.arg(&n_rows)
        .arg(&rows_per_batch)
        .arg(&seq)
        .arg(&hd)
        .arg(&rot);
    b.arg(&inter).arg(&sign);
    // SAFETY: the geometry passed the CPU kernel's check (n a whole number of (T, head_dim)
    // blocks splitting into the table batches, tables of batches * T * rot/2 entries); out
    // holds n elements.
    unsafe { b.launch(cfg) }.w()?;
    Ok(out)
}

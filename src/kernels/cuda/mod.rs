//! CUDA fast paths (feature `cuda`): deterministic sort/segment-based scatter-add and sparse
//! backward, sparse optimizer row updates, EmbeddingBag forward and backward, RoPE forward and
//! backward, and row gather. The kernels live in `embed.cu`, compiled to PTX by `build.rs` and
//! loaded once per device through candle's `CudaDevice::get_or_load_custom_func`.
//!
//! Safety policy: every entry point validates its ids on the host (`ids::validate`, via
//! [`SegmentPlan::new`] or directly) *before* any launch, so an out-of-range id is an
//! [`Error::IndexOutOfRange`] and the CUDA context stays usable. Determinism: no atomics; each
//! output row is written by one block that sums its sources in host-sorted order.
//!
//! Tensors must live on one CUDA device and be f32, f64, f16 or bf16 (math in f32 for the
//! half types, f64 for f64). Outputs are fresh tensors; the optimizer steps and `index_add_`
//! update their targets in place.

use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{
    CpuStorage, CudaDevice, CudaStorage, CustomOp1, DType, InplaceOp1, Layout, Shape, Storage,
    Tensor,
};

use crate::ids::{self, Id};
use crate::kernels::segments::SegmentPlan;
use crate::{bail_invalid, bail_shape, Error, Result, SparseGrad};

/// The PTX of `embed.cu`.
pub const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/embed.ptx"));
const MODULE: &str = "candle_embed";

type CResult<T> = candle_core::Result<T>;

// ---------------------------------------------------------------- plumbing

fn sfx(dtype: DType) -> Result<&'static str> {
    Ok(match dtype {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        other => {
            return Err(Error::dtype(format!(
                "CUDA kernels take float32, float64, float16 or bfloat16 tensors, not {other:?}"
            )))
        }
    })
}

fn cuda_device(t: &Tensor) -> Result<CudaDevice> {
    match t.device() {
        candle_core::Device::Cuda(d) => Ok(d.clone()),
        other => Err(Error::UnsupportedDevice {
            device: crate::device::device_name(other),
            reason: "this kernel runs on CUDA tensors only".into(),
        }),
    }
}

fn func(dev: &CudaDevice, name: &str) -> CResult<candle_core::cuda_backend::CudaFunc> {
    dev.get_or_load_custom_func(name, MODULE, PTX)
}

/// A raw device pointer of any float slice (kernels are typed by name, the pointer is opaque).
fn ptr_of(s: &CudaStorageSlice, offset: usize) -> CResult<u64> {
    use candle_core::cuda_backend::cudarc::driver::DevicePtr;
    macro_rules! p {
        ($v:expr, $t:ty) => {{
            let (ptr, _guard) = $v.device_ptr($v.stream());
            ptr + (offset * std::mem::size_of::<$t>()) as u64
        }};
    }
    Ok(match s {
        CudaStorageSlice::F32(v) => p!(v, f32),
        CudaStorageSlice::F64(v) => p!(v, f64),
        CudaStorageSlice::F16(v) => p!(v, half::f16),
        CudaStorageSlice::BF16(v) => p!(v, half::bf16),
        CudaStorageSlice::U32(v) => p!(v, u32),
        CudaStorageSlice::I64(v) => p!(v, i64),
        _ => candle_core::bail!("candle-embed CUDA kernels: unsupported storage dtype"),
    })
}

fn contiguous_start(l: &Layout) -> CResult<usize> {
    match l.contiguous_offsets() {
        Some((start, _)) => Ok(start),
        None => candle_core::bail!("candle-embed CUDA kernels need contiguous tensors"),
    }
}

fn dev_ptr<T: DeviceRepr>(s: &CudaSlice<T>) -> u64 {
    use candle_core::cuda_backend::cudarc::driver::DevicePtr;
    let (ptr, _guard) = s.device_ptr(s.stream());
    ptr
}

/// Read access to a CUDA tensor's storage: (storage, element offset of a contiguous layout).
fn with_read<R>(t: &Tensor, f: impl FnOnce(&CudaStorage, usize) -> CResult<R>) -> Result<R> {
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cuda(c) => Ok(f(c, contiguous_start(l)?)?),
        _ => Err(Error::invalid("expected a CUDA tensor")),
    }
}

/// Produces a fresh output from the storage of the tensor it is applied to.
struct Produce<F>(F);
impl<F: Fn(&CudaStorage, usize) -> CResult<(CudaStorage, Shape)>> CustomOp1 for Produce<F> {
    fn name(&self) -> &'static str {
        "candle-embed-cuda"
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> CResult<(CpuStorage, Shape)> {
        candle_core::bail!("candle-embed CUDA kernel applied to a CPU tensor")
    }
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> CResult<(CudaStorage, Shape)> {
        (self.0)(s, contiguous_start(l)?)
    }
}

/// Mutates the storage of the tensor it is applied to.
struct Mutate<F>(F);
impl<F: Fn(&mut CudaStorage, usize) -> CResult<()>> InplaceOp1 for Mutate<F> {
    fn name(&self) -> &'static str {
        "candle-embed-cuda-inplace"
    }
    fn cpu_fwd(&self, _: &mut CpuStorage, _: &Layout) -> CResult<()> {
        candle_core::bail!("candle-embed CUDA kernel applied to a CPU tensor")
    }
    fn cuda_fwd(&self, s: &mut CudaStorage, l: &Layout) -> CResult<()> {
        (self.0)(s, contiguous_start(l)?)
    }
}

/// Allocate an uninitialised output of `n` elements of `dtype` (every element gets written).
fn alloc_like(dev: &CudaDevice, dtype: DType, n: usize) -> CResult<(CudaStorageSlice, u64)> {
    // SAFETY: every caller's kernel writes all `n` elements before the tensor is read.
    unsafe {
        Ok(match dtype {
            DType::F32 => {
                let s = dev.alloc::<f32>(n)?;
                let p = dev_ptr(&s);
                (CudaStorageSlice::F32(s), p)
            }
            DType::F64 => {
                let s = dev.alloc::<f64>(n)?;
                let p = dev_ptr(&s);
                (CudaStorageSlice::F64(s), p)
            }
            DType::F16 => {
                let s = dev.alloc::<half::f16>(n)?;
                let p = dev_ptr(&s);
                (CudaStorageSlice::F16(s), p)
            }
            DType::BF16 => {
                let s = dev.alloc::<half::bf16>(n)?;
                let p = dev_ptr(&s);
                (CudaStorageSlice::BF16(s), p)
            }
            _ => candle_core::bail!("unsupported dtype {dtype:?}"),
        })
    }
}

/// Host weights in the kernels' accumulator precision (f64 for f64 tensors, else f32).
enum AccBuf {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
}
impl AccBuf {
    fn upload(dev: &CudaDevice, dtype: DType, w: &[f64]) -> CResult<Self> {
        let w = if w.is_empty() { &[0.0][..] } else { w };
        Ok(if dtype == DType::F64 {
            AccBuf::F64(dev.clone_htod(w)?)
        } else {
            let v: Vec<f32> = w.iter().map(|&x| x as f32).collect();
            AccBuf::F32(dev.clone_htod(&v)?)
        })
    }
    fn ptr(&self) -> u64 {
        match self {
            AccBuf::F32(s) => dev_ptr(s),
            AccBuf::F64(s) => dev_ptr(s),
        }
    }
}

fn upload<T: DeviceRepr + Copy + 'static>(
    dev: &CudaDevice,
    v: &[T],
    pad: T,
) -> CResult<CudaSlice<T>> {
    if v.is_empty() {
        dev.clone_htod(&[pad][..])
    } else {
        dev.clone_htod(v)
    }
}

fn grid(n: usize) -> u32 {
    n.clamp(1, 65_535 * 16) as u32
}

fn row_cfg(rows: usize, dim: usize) -> LaunchConfig {
    let threads = dim.next_power_of_two().clamp(32, 256) as u32;
    LaunchConfig {
        grid_dim: (grid(rows), 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn dims2(t: &Tensor, what: &str) -> Result<(usize, usize)> {
    match t.dims() {
        [a, b] => Ok((*a, *b)),
        d => bail_shape!("{what} must be 2-D, got shape {d:?}"),
    }
}

fn u32_len(n: usize, what: &str) -> Result<u32> {
    u32::try_from(n)
        .map_err(|_| Error::invalid(format!("{what} {n} exceeds the kernels' u32 range")))
}

// ---------------------------------------------------------------- gather

/// `table[ids]` as an `(ids.len(), dim)` tensor on the table's device (a pure copy).
pub fn gather<I: Id>(table: &Tensor, ids: &[I]) -> Result<Tensor> {
    let (rows, dim) = dims2(table, "table")?;
    ids::validate(ids, rows, "index", "an embedding table")?;
    let dev = cuda_device(table)?;
    let n = u32_len(ids.len(), "lookups")?;
    let dim32 = u32_len(dim, "embedding_dim")?;
    let width = table.dtype().size_in_bytes();
    let name = match width {
        2 => "ce_gather_u16",
        4 => "ce_gather_u32",
        8 => "ce_gather_u64",
        _ => return Err(Error::dtype(format!("cannot gather {:?}", table.dtype()))),
    };
    let wide: Vec<i64> = ids.iter().map(|&i| i.wide() as i64).collect();
    let dtype = table.dtype();
    let table = table.contiguous()?;
    Ok(
        table.apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
            let ids_d = upload(&dev, &wide, 0i64)?;
            let (out, out_p) = alloc_like(&dev, dtype, ids.len() * dim)?;
            let src = ptr_of(&s.slice, off)?;
            let f = func(&dev, name)?;
            let cfg = LaunchConfig {
                grid_dim: (grid(ids.len().div_ceil(8)), 1, 1),
                block_dim: (32, 8, 1),
                shared_mem_bytes: 0,
            };
            let ids_p = dev_ptr(&ids_d);
            let mut b = f.builder();
            b.arg(&src).arg(&ids_p).arg(&out_p).arg(&n).arg(&dim32);
            // SAFETY: ids validated against the table's rows; out holds n * dim elements.
            unsafe { b.launch(cfg) }.w()?;
            Ok((
                CudaStorage {
                    slice: out,
                    device: dev.clone(),
                },
                Shape::from((ids.len(), dim)),
            ))
        }))?,
    )
}

// ---------------------------------------------------------------- segment reduce

/// Where a segment reduction writes.
enum Target<'a> {
    /// A fresh `(num_segments, dim)` tensor.
    Fresh,
    /// `dst[rows[s]] += sum` in place.
    AddInto(&'a Tensor),
}

/// out[s] = sum over sorted positions j of segment s of `weights[j] * src[src_rows[j]]`.
fn segment_reduce(
    src: &Tensor,
    plan: &SegmentPlan,
    src_rows: &[u32],
    weights: Option<&[f64]>,
    target: Target<'_>,
) -> Result<Option<Tensor>> {
    let (_, dim) = dims2(src, "source")?;
    let dev = cuda_device(src)?;
    let dtype = src.dtype();
    let name = format!("ce_segment_reduce_{}", sfx(dtype)?);
    let nseg = u32_len(plan.num_segments(), "segments")?;
    let dim32 = u32_len(dim, "embedding_dim")?;
    let src = src.contiguous()?;
    let launch = |src_p: u64, out_p: u64, add_into: u32| -> CResult<()> {
        let order_d = upload(&dev, src_rows, 0u32)?;
        let offs_d = upload(&dev, &plan.offsets, 0u32)?;
        let rows_d = upload(&dev, &plan.rows, 0i64)?;
        let w = AccBuf::upload(&dev, dtype, weights.unwrap_or(&[]))?;
        let has_w = weights.is_some() as u32;
        let (order_p, offs_p, rows_p, w_p) = (
            dev_ptr(&order_d),
            dev_ptr(&offs_d),
            dev_ptr(&rows_d),
            w.ptr(),
        );
        let f = func(&dev, &name)?;
        let mut b = f.builder();
        b.arg(&src_p)
            .arg(&order_p)
            .arg(&w_p)
            .arg(&has_w)
            .arg(&offs_p);
        b.arg(&nseg)
            .arg(&dim32)
            .arg(&out_p)
            .arg(&rows_p)
            .arg(&add_into);
        // SAFETY: plan rows validated; order entries index rows of src; out sized by the caller.
        unsafe { b.launch(row_cfg(plan.num_segments(), dim)) }.w()?;
        Ok(())
    };
    match target {
        Target::Fresh => {
            if plan.num_segments() == 0 {
                return Ok(Some(Tensor::zeros((0, dim), dtype, src.device())?));
            }
            let out = src.apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
                let (out, out_p) = alloc_like(&dev, dtype, plan.num_segments() * dim)?;
                launch(ptr_of(&s.slice, off)?, out_p, 0)?;
                Ok((
                    CudaStorage {
                        slice: out,
                        device: dev.clone(),
                    },
                    Shape::from((plan.num_segments(), dim)),
                ))
            }))?;
            Ok(Some(out))
        }
        Target::AddInto(dst) => {
            if plan.num_segments() == 0 {
                return Ok(None);
            }
            let src_p = with_read(&src, |s, off| ptr_of(&s.slice, off))?;
            // `src` stays alive (and its storage unchanged) for the whole launch.
            dst.inplace_op1(&Mutate(|d: &mut CudaStorage, off: usize| {
                launch(src_p, ptr_of(&d.slice, off)?, 1)
            }))?;
            Ok(None)
        }
    }
}

fn check_same_device(a: &Tensor, b: &Tensor) -> Result<()> {
    if !a.device().same_device(b.device()) {
        bail_invalid!("tensors are on different devices");
    }
    if a.dtype() != b.dtype() {
        return Err(Error::dtype(format!(
            "dtype mismatch: {:?} vs {:?}",
            a.dtype(),
            b.dtype()
        )));
    }
    Ok(())
}

/// Coalesce `(ids, values)` into a [`SparseGrad`]: sorted unique rows, summed in input order.
pub fn coalesce<I: Id>(ids: &[I], values: &Tensor, num_rows: usize) -> Result<SparseGrad> {
    embedding_backward(ids, values, num_rows, None, false)
}

/// The sparse gradient of a lookup: rows of `grad_output` (`(ids.len(), dim)`) summed per id,
/// skipping `padding_idx`, each scaled by `1/count` when `scale_grad_by_freq`.
pub fn embedding_backward<I: Id>(
    ids: &[I],
    grad_output: &Tensor,
    num_rows: usize,
    padding_idx: Option<usize>,
    scale_grad_by_freq: bool,
) -> Result<SparseGrad> {
    let (n, _) = dims2(grad_output, "grad_output")?;
    if n != ids.len() {
        bail_shape!("grad_output has {n} rows for {} ids", ids.len());
    }
    let plan = SegmentPlan::new(ids, num_rows, padding_idx)?;
    let w = scale_grad_by_freq.then(|| plan.inverse_frequency());
    let values = segment_reduce(grad_output, &plan, &plan.order, w.as_deref(), Target::Fresh)?
        .expect("fresh output");
    Ok(SparseGrad::from_coalesced_unchecked(
        plan.rows, values, num_rows,
    ))
}

/// `dst[ids[i]] += src[i]` in place, deterministic (sorted, one block per distinct row).
pub fn index_add_<I: Id>(dst: &Tensor, ids: &[I], src: &Tensor) -> Result<()> {
    let (rows, dim) = dims2(dst, "dst")?;
    let (n, sdim) = dims2(src, "src")?;
    if n != ids.len() || sdim != dim {
        bail_shape!(
            "src has shape ({n}, {sdim}); expected ({}, {dim})",
            ids.len()
        );
    }
    check_same_device(dst, src)?;
    if !dst.is_contiguous() {
        bail_invalid!("index_add_ needs a contiguous destination");
    }
    let plan = SegmentPlan::new(ids, rows, None)?;
    segment_reduce(src, &plan, &plan.order, None, Target::AddInto(dst))?;
    Ok(())
}

/// `dst` with `src` rows added at `ids`; `dst` itself is unchanged.
pub fn index_add<I: Id>(dst: &Tensor, ids: &[I], src: &Tensor) -> Result<Tensor> {
    ids::validate(ids, dims2(dst, "dst")?.0, "index", "an embedding table")?;
    let out = dst.copy()?;
    index_add_(&out, ids, src)?;
    Ok(out)
}

// ---------------------------------------------------------------- EmbeddingBag

/// How a bag pools its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BagMode {
    Sum,
    Mean,
    Max,
}

/// Check CSR offsets (`B + 1` entries, `0`, non-decreasing, last = `n`).
fn check_offsets(offsets: &[i64], n: usize) -> Result<()> {
    if offsets.first() != Some(&0) || *offsets.last().unwrap() != n as i64 {
        bail_invalid!("offsets must start at 0 and end at the number of ids ({n})");
    }
    if let Some(w) = offsets.windows(2).find(|w| w[0] > w[1]) {
        bail_invalid!("offsets must be non-decreasing, got {} then {}", w[0], w[1]);
    }
    Ok(())
}

/// EmbeddingBag forward on CUDA: `(B, dim)` pooled rows. `offsets` is CSR (`B + 1` entries);
/// `per_sample_weights` only with `Sum`; rows equal to `padding_idx` are skipped and not counted.
pub fn bag_forward<I: Id>(
    table: &Tensor,
    ids: &[I],
    offsets: &[i64],
    per_sample_weights: Option<&[f64]>,
    mode: BagMode,
    padding_idx: Option<usize>,
) -> Result<Tensor> {
    let (rows, dim) = dims2(table, "table")?;
    ids::validate(ids, rows, "index", "an embedding table")?;
    check_offsets(offsets, ids.len())?;
    if let Some(w) = per_sample_weights {
        if mode != BagMode::Sum {
            bail_invalid!("per_sample_weights are only supported with mode='sum'");
        }
        if w.len() != ids.len() {
            bail_shape!(
                "per_sample_weights has {} entries for {} ids",
                w.len(),
                ids.len()
            );
        }
    }
    let dev = cuda_device(table)?;
    let dtype = table.dtype();
    let name = format!("ce_bag_forward_{}", sfx(dtype)?);
    let nbags = offsets.len() - 1;
    let (nb32, dim32) = (u32_len(nbags, "bags")?, u32_len(dim, "embedding_dim")?);
    let mode32: u32 = match mode {
        BagMode::Sum => 0,
        BagMode::Mean => 1,
        BagMode::Max => 2,
    };
    let pad = padding_idx.map_or(-1i64, |p| p as i64);
    let wide: Vec<i64> = ids.iter().map(|&i| i.wide() as i64).collect();
    let table = table.contiguous()?;
    Ok(
        table.apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
            let ids_d = upload(&dev, &wide, 0i64)?;
            let offs_d = upload(&dev, offsets, 0i64)?;
            let w = AccBuf::upload(&dev, dtype, per_sample_weights.unwrap_or(&[]))?;
            let has_w = per_sample_weights.is_some() as u32;
            let argmax =
                dev.alloc_zeros::<i64>(if mode == BagMode::Max { nbags * dim } else { 1 })?;
            let (out, out_p) = alloc_like(&dev, dtype, (nbags * dim).max(1))?;
            let (src, ids_p, offs_p, w_p, am_p) = (
                ptr_of(&s.slice, off)?,
                dev_ptr(&ids_d),
                dev_ptr(&offs_d),
                w.ptr(),
                dev_ptr(&argmax),
            );
            let f = func(&dev, &name)?;
            let mut b = f.builder();
            b.arg(&src)
                .arg(&ids_p)
                .arg(&offs_p)
                .arg(&w_p)
                .arg(&has_w)
                .arg(&nb32);
            b.arg(&dim32).arg(&mode32).arg(&pad).arg(&out_p).arg(&am_p);
            // SAFETY: ids validated, offsets checked as CSR over ids; out holds B * dim elements.
            unsafe { b.launch(row_cfg(nbags, dim)) }.w()?;
            Ok((
                CudaStorage {
                    slice: out,
                    device: dev.clone(),
                },
                Shape::from((nbags, dim)),
            ))
        }))?,
    )
}

/// EmbeddingBag backward on CUDA (`Sum` / `Mean`): the coalesced sparse gradient of the table.
/// Each lookup `j` of bag `b` contributes `grad_output[b] * (w_j | 1/count_b | 1)`.
pub fn bag_backward<I: Id>(
    grad_output: &Tensor,
    ids: &[I],
    offsets: &[i64],
    per_sample_weights: Option<&[f64]>,
    mode: BagMode,
    padding_idx: Option<usize>,
    num_rows: usize,
) -> Result<SparseGrad> {
    let (nbags, _) = dims2(grad_output, "grad_output")?;
    check_offsets(offsets, ids.len())?;
    if offsets.len() != nbags + 1 {
        bail_shape!(
            "grad_output has {nbags} rows for {} bags",
            offsets.len() - 1
        );
    }
    if mode == BagMode::Max {
        bail_invalid!(
            "the CUDA bag backward covers mode='sum' and 'mean'; use the portable path for 'max'"
        );
    }
    let plan = SegmentPlan::new(ids, num_rows, padding_idx)?;
    let mut bag_of = vec![0u32; ids.len()];
    let mut scale = vec![1.0f64; ids.len()];
    for b in 0..nbags {
        let (lo, hi) = (offsets[b] as usize, offsets[b + 1] as usize);
        let count = ids[lo..hi]
            .iter()
            .filter(|i| Some(i.wide()) != padding_idx.map(|p| p as i128))
            .count();
        for j in lo..hi {
            bag_of[j] = b as u32;
            scale[j] = match (mode, per_sample_weights) {
                (BagMode::Sum, Some(w)) => w[j],
                (BagMode::Mean, _) => 1.0 / count.max(1) as f64,
                _ => 1.0,
            };
        }
    }
    let src_rows: Vec<u32> = plan.order.iter().map(|&p| bag_of[p as usize]).collect();
    let weights: Vec<f64> = plan.order.iter().map(|&p| scale[p as usize]).collect();
    let weighted = mode == BagMode::Mean || per_sample_weights.is_some();
    let values = segment_reduce(
        grad_output,
        &plan,
        &src_rows,
        weighted.then_some(&weights[..]),
        Target::Fresh,
    )?
    .expect("fresh output");
    Ok(SparseGrad::from_coalesced_unchecked(
        plan.rows, values, num_rows,
    ))
}

// ---------------------------------------------------------------- optimizers

fn check_state(weight: &Tensor, state: &Tensor, shape: &[usize], what: &str) -> Result<()> {
    check_same_device(weight, state)?;
    if state.dims() != shape {
        bail_shape!("{what} has shape {:?}, expected {shape:?}", state.dims());
    }
    if !state.is_contiguous() {
        bail_invalid!("{what} must be contiguous");
    }
    Ok(())
}

/// Launch a row-update kernel with arguments
/// `(w, states.., [flag], rows, grad, nnz, dim, scalars..)`; `weight` and `states` are
/// updated in place by the kernel, on the rows of `grad` only.
fn row_update(
    name: &str,
    weight: &Tensor,
    states: &[Option<&Tensor>],
    flag: Option<u32>,
    grad: &SparseGrad,
    scalars: &[f64],
    threads: Option<u32>,
) -> Result<()> {
    let (rows, dim) = dims2(weight, "weight")?;
    if grad.num_rows() != rows || (grad.nnz() > 0 && grad.dim() != dim) {
        bail_shape!(
            "gradient of shape {:?} for a table of shape ({rows}, {dim})",
            grad.shape()
        );
    }
    if grad.nnz() == 0 {
        return Ok(());
    }
    if !weight.is_contiguous() {
        bail_invalid!("weight must be contiguous");
    }
    check_same_device(weight, grad.values())?;
    let dev = cuda_device(weight)?;
    let name = format!("{name}_{}", sfx(weight.dtype())?);
    let values = grad.values().contiguous()?;
    let nnz = u32_len(grad.nnz(), "rows")?;
    let dim32 = u32_len(dim, "embedding_dim")?;
    let g_p = with_read(&values, |s, off| ptr_of(&s.slice, off))?;
    // The states are tensors distinct from the weight, borrowed for this whole call, so their
    // device pointers stay valid through the launch. `None` is an unused slot (null pointer).
    let mut state_ps = Vec::with_capacity(states.len());
    for s in states {
        state_ps.push(match s {
            Some(t) => with_read(t, |st, off| ptr_of(&st.slice, off))?,
            None => 0u64,
        });
    }
    let rows_d = dev.clone_htod(grad.indices())?;
    let rows_p = dev_ptr(&rows_d);
    let mut cfg = row_cfg(grad.nnz(), dim);
    if let Some(t) = threads {
        cfg.block_dim = (t, 1, 1);
    }
    weight.inplace_op1(&Mutate(|w: &mut CudaStorage, off: usize| {
        let w_p = ptr_of(&w.slice, off)?;
        let f = func(&dev, &name)?;
        let mut b = f.builder();
        b.arg(&w_p);
        for p in &state_ps {
            b.arg(p);
        }
        if let Some(flag) = &flag {
            b.arg(flag);
        }
        b.arg(&rows_p).arg(&g_p).arg(&nnz).arg(&dim32);
        for x in scalars {
            b.arg(x);
        }
        // SAFETY: grad rows are unique and in range (SparseGrad invariant); states match weight.
        unsafe { b.launch(cfg) }.w()?;
        Ok(())
    }))?;
    Ok(())
}

/// Sparse SGD on the rows of `grad`: `g' = g + wd*w; buf = momentum*buf + g'; w -= lr*buf`
/// (no buffer: `w -= lr*g'`). `momentum_buf` has the weight's shape.
pub fn sgd_step(
    weight: &Tensor,
    momentum_buf: Option<&Tensor>,
    grad: &SparseGrad,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
) -> Result<()> {
    if let Some(b) = momentum_buf {
        check_state(weight, b, weight.dims(), "momentum buffer")?;
    }
    row_update(
        "ce_sgd_rows",
        weight,
        &[momentum_buf],
        Some(momentum_buf.is_some() as u32),
        grad,
        &[lr, momentum, weight_decay],
        None,
    )
}

/// Sparse element-wise Adagrad: `state += g^2; w -= clr * g / (sqrt(state) + eps)`, with
/// `clr = lr / (1 + (step-1) * lr_decay)` computed by the caller.
pub fn adagrad_step(
    weight: &Tensor,
    state_sum: &Tensor,
    grad: &SparseGrad,
    clr: f64,
    eps: f64,
) -> Result<()> {
    check_state(weight, state_sum, weight.dims(), "state_sum")?;
    row_update(
        "ce_adagrad_rows",
        weight,
        &[Some(state_sum)],
        None,
        grad,
        &[clr, eps],
        None,
    )
}

/// Sparse row-wise Adagrad (FBGEMM): `state[r] += mean(g_r^2); w_r -= lr * g_r / (sqrt(state[r]) + eps)`.
/// `state` has shape `(num_rows,)`.
pub fn rowwise_adagrad_step(
    weight: &Tensor,
    state: &Tensor,
    grad: &SparseGrad,
    lr: f64,
    eps: f64,
) -> Result<()> {
    check_state(weight, state, &weight.dims()[..1], "row state")?;
    row_update(
        "ce_rowwise_adagrad_rows",
        weight,
        &[Some(state)],
        None,
        grad,
        &[lr, eps],
        Some(256),
    )
}

/// SparseAdam (lazy) at global step `step` (1-based): updates `m`, `v`, `weight` on the rows
/// of `grad` only.
#[allow(clippy::too_many_arguments)]
pub fn sparse_adam_step(
    weight: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    grad: &SparseGrad,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    step: u64,
) -> Result<()> {
    check_state(weight, exp_avg, weight.dims(), "exp_avg")?;
    check_state(weight, exp_avg_sq, weight.dims(), "exp_avg_sq")?;
    if step == 0 {
        bail_invalid!("SparseAdam steps count from 1");
    }
    let t = step as f64;
    let step_size = lr * (1.0 - betas.1.powf(t)).sqrt() / (1.0 - betas.0.powf(t));
    row_update(
        "ce_sparse_adam_rows",
        weight,
        &[Some(exp_avg), Some(exp_avg_sq)],
        None,
        grad,
        &[step_size, betas.0, betas.1, eps],
        None,
    )
}

// ---------------------------------------------------------------- RoPE

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
    let name = format!("ce_rope_{}", sfx(dtype)?);
    let n_rows = x.elem_count() / head_dim.max(1);
    let (nr32, seq32, hd32, rot32) = (
        u32_len(n_rows, "rows")?,
        u32_len(seq, "sequence length")?,
        u32_len(head_dim, "head_dim")?,
        u32_len(2 * half, "rotary_dim")?,
    );
    let inter = interleaved as u32;
    let sign: f32 = if backward { -1.0 } else { 1.0 };
    let (cos, sin) = (cos.contiguous()?, sin.contiguous()?);
    let cos_p = with_read(&cos, |s, off| ptr_of(&s.slice, off))?;
    let sin_p = with_read(&sin, |s, off| ptr_of(&s.slice, off))?;
    let x = x.contiguous()?;
    let shape = x.shape().clone();
    if x.elem_count() == 0 {
        return Ok(x.zeros_like()?);
    }
    Ok(x.apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
        let (out, out_p) = alloc_like(&dev, dtype, n_rows * head_dim)?;
        let x_p = ptr_of(&s.slice, off)?;
        let f = func(&dev, &name)?;
        let work = n_rows * (half + head_dim - 2 * half);
        let cfg = LaunchConfig {
            grid_dim: (grid(work.div_ceil(256)), 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = f.builder();
        b.arg(&x_p).arg(&cos_p).arg(&sin_p).arg(&out_p).arg(&nr32);
        b.arg(&seq32).arg(&hd32).arg(&rot32).arg(&inter).arg(&sign);
        // SAFETY: shapes checked above; out holds x.elem_count() elements.
        unsafe { b.launch(cfg) }.w()?;
        Ok((
            CudaStorage {
                slice: out,
                device: dev.clone(),
            },
            shape.clone(),
        ))
    }))?)
}

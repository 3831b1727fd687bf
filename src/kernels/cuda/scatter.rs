//! Deterministic segment reductions on CUDA: coalesce, the embedding backward and scatter-add
//! (`index_add`). The host sorts the lookups by destination row ([`SegmentPlan`]); the kernel
//! then runs one block per distinct row and sums that row's sources in sorted order, so results
//! are bit-identical run to run, with no atomics.
//!
//! Portable references: `SparseGrad::from_rows` / candle's `index_add` (same sums, any order).

use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaDevice, CudaStorage, DType, Shape, Tensor};

use super::launch::{
    alloc_output, check_same_device, cuda_device, dev_ptr, dims2, ptr_of, row_cfg, suffix,
    tensor_ptr, u32_len, upload, AccBuf, CResult, Kernel, Mutate, Produce,
};
use super::module::SCATTER;
use crate::ids::{self, Id};
use crate::kernels::segments::SegmentPlan;
use crate::{bail_invalid, bail_shape, Result, SparseGrad};

/// A segment reduction: `out[s] = sum over sorted positions j of segment s of
/// weights[j] * src[src_rows[j]]`, with `src_rows` and `weights` in the plan's sorted order
/// (`weights = None`: all ones).
pub(super) struct Segments<'a> {
    pub plan: &'a SegmentPlan,
    pub src_rows: &'a [u32],
    pub weights: Option<&'a [f64]>,
}

/// What one launch needs, checked on the host.
struct Launch {
    dev: CudaDevice,
    dtype: DType,
    name: String,
    nseg: u32,
    dim: u32,
}

impl Segments<'_> {
    /// The sums as a fresh `(num_segments, dim)` tensor on `src`'s device.
    pub fn reduce(&self, src: &Tensor) -> Result<Tensor> {
        let (nseg, dim) = (self.plan.num_segments(), dims2(src, "source")?.1);
        let l = self.prepare(src, dim)?;
        if nseg == 0 || dim == 0 {
            return Ok(Tensor::zeros((nseg, dim), l.dtype, src.device())?);
        }
        let src = src.contiguous()?;
        Ok(src.apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
            let (out, out_p) = alloc_output(&l.dev, l.dtype, nseg * dim)?;
            self.launch(&l, ptr_of(&s.slice, off)?, out_p, false)?;
            Ok((out, Shape::from((nseg, dim))))
        }))?)
    }

    /// `dst[plan.rows[s]] += sum` in place; `dst` is contiguous with `src`'s dtype and device.
    pub fn add_into(&self, src: &Tensor, dst: &Tensor) -> Result<()> {
        let dim = dims2(src, "source")?.1;
        let l = self.prepare(src, dim)?;
        if self.plan.num_segments() == 0 || dim == 0 {
            return Ok(());
        }
        let src = src.contiguous()?;
        // `src` is borrowed (and its storage unchanged) for the whole launch.
        let src_p = tensor_ptr(&src)?;
        dst.inplace_op1(&Mutate(|d: &mut CudaStorage, off: usize| {
            self.launch(&l, src_p, ptr_of(&d.slice, off)?, true)
        }))?;
        Ok(())
    }

    fn prepare(&self, src: &Tensor, dim: usize) -> Result<Launch> {
        let dtype = src.dtype();
        Ok(Launch {
            dev: cuda_device(src)?,
            dtype,
            name: format!("ce_segment_reduce_{}", suffix(dtype)?),
            nseg: u32_len(self.plan.num_segments(), "segments")?,
            dim: u32_len(dim, "embedding_dim")?,
        })
    }

    fn launch(&self, l: &Launch, src_p: u64, out_p: u64, add_into: bool) -> CResult<()> {
        let dev = &l.dev;
        let order_d = upload(dev, self.src_rows)?;
        let offs_d = upload(dev, &self.plan.offsets)?;
        let rows_d = upload(dev, &self.plan.rows)?;
        let w = AccBuf::upload(dev, l.dtype, self.weights.unwrap_or(&[]))?;
        let (has_w, add_into) = (self.weights.is_some() as u32, add_into as u32);
        let (order_p, offs_p, rows_p, w_p) = (
            dev_ptr(&order_d),
            dev_ptr(&offs_d),
            dev_ptr(&rows_d),
            w.ptr(),
        );
        let kernel = Kernel::new(dev, &SCATTER, &l.name)?;
        let mut b = kernel.builder();
        b.arg(&src_p).arg(&order_p).arg(&w_p).arg(&has_w);
        b.arg(&offs_p).arg(&l.nseg).arg(&l.dim);
        b.arg(&out_p).arg(&rows_p).arg(&add_into);
        // SAFETY: plan rows validated; src_rows index rows of src; out sized by the caller.
        unsafe { b.launch(row_cfg(l.nseg as usize, l.dim as usize)) }.w()?;
        Ok(())
    }
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
    let values = Segments {
        plan: &plan,
        src_rows: &plan.order,
        weights: w.as_deref(),
    }
    .reduce(grad_output)?;
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
    Segments {
        plan: &plan,
        src_rows: &plan.order,
        weights: None,
    }
    .add_into(src, dst)
}

/// `dst` with `src` rows added at `ids`; `dst` itself is unchanged.
pub fn index_add<I: Id>(dst: &Tensor, ids: &[I], src: &Tensor) -> Result<Tensor> {
    ids::validate(ids, dims2(dst, "dst")?.0, "index", "an embedding table")?;
    let out = dst.copy()?;
    index_add_(&out, ids, src)?;
    Ok(out)
}

//! Deterministic segment reductions on CUDA: coalesce, the embedding backward and scatter-add
//! (`index_add`). The host sorts the lookups by destination row ([`SegmentPlan`]); the kernel
//! then runs one block per distinct row and sums that row's sources in sorted order, so results
//! are bit-identical run to run, with no atomics.
//!
//! Portable references: `SparseGrad::from_rows` / candle's `index_add` (same sums, any order).

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, PushKernelArg};
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

/// A segment reduction with its plan on the device: `out[s] = sum over sorted positions j of
/// segment s of weights[j] * src[src_rows[j]]`, with `src_rows` and `weights` in the plan's
/// sorted order (`weights = None`: all ones). Built once per plan, it can run many times, so a
/// benchmark can time the kernel apart from the host-side sort and upload.
pub struct Segments {
    dev: CudaDevice,
    dtype: DType,
    kernel: String,
    src_shape: (usize, usize),
    nseg: usize,
    /// One past the largest destination row (0 for an empty plan).
    row_bound: usize,
    order: CudaSlice<u32>,
    offsets: CudaSlice<u32>,
    rows: CudaSlice<i64>,
    weights: Option<AccBuf>,
}

impl Segments {
    /// Upload `plan` for sources shaped like `src` (2-D, CUDA); every `src_rows` entry must
    /// index a row of `src`.
    pub fn new(
        src: &Tensor,
        plan: &SegmentPlan,
        src_rows: &[u32],
        weights: Option<&[f64]>,
    ) -> Result<Self> {
        let src_shape = dims2(src, "source")?;
        let (dev, dtype) = (cuda_device(src)?, src.dtype());
        let kernel = format!("ce_segment_reduce_{}", suffix(dtype)?);
        if src_rows.len() != plan.order.len() || weights.is_some_and(|w| w.len() != src_rows.len())
        {
            bail_shape!(
                "a segment plan of {} positions got {} source rows",
                plan.order.len(),
                src_rows.len()
            );
        }
        if let Some(&bad) = src_rows.iter().find(|&&r| r as usize >= src_shape.0) {
            bail_shape!(
                "source row {bad} is past the {} rows of the source",
                src_shape.0
            );
        }
        u32_len(plan.num_segments(), "segments")?;
        u32_len(src_shape.1, "embedding_dim")?;
        Ok(Segments {
            dtype,
            kernel,
            src_shape,
            nseg: plan.num_segments(),
            row_bound: plan.rows.last().map_or(0, |&r| r as usize + 1),
            order: upload(&dev, src_rows)?,
            offsets: upload(&dev, &plan.offsets)?,
            rows: upload(&dev, &plan.rows)?,
            weights: weights
                .map(|w| AccBuf::upload(&dev, dtype, w))
                .transpose()?,
            dev,
        })
    }

    fn check_src(&self, src: &Tensor) -> Result<()> {
        if dims2(src, "source")? != self.src_shape || src.dtype() != self.dtype {
            bail_shape!(
                "the plan was made for a {:?} source of shape {:?}, got {:?} of shape {:?}",
                self.dtype,
                self.src_shape,
                src.dtype(),
                src.dims()
            );
        }
        if !matches!(src.device(), candle_core::Device::Cuda(d) if d.id() == self.dev.id()) {
            bail_invalid!("the source is not on the plan's device");
        }
        Ok(())
    }

    /// The sums as a fresh `(num_segments, dim)` tensor on `src`'s device.
    pub fn reduce(&self, src: &Tensor) -> Result<Tensor> {
        self.check_src(src)?;
        let (nseg, dim) = (self.nseg, self.src_shape.1);
        if nseg == 0 || dim == 0 {
            return Ok(Tensor::zeros((nseg, dim), self.dtype, src.device())?);
        }
        let src = src.contiguous()?;
        Ok(
            src.apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
                let (out, out_p) = alloc_output(&self.dev, self.dtype, nseg * dim)?;
                self.launch(ptr_of(&s.slice, off)?, out_p, false)?;
                Ok((out, Shape::from((nseg, dim))))
            }))?,
        )
    }

    /// `dst[plan.rows[s]] += sum` in place; `dst` is a contiguous `(rows, dim)` tensor with
    /// `src`'s dtype and device and a row for every destination of the plan.
    pub fn add_into(&self, src: &Tensor, dst: &Tensor) -> Result<()> {
        self.check_src(src)?;
        check_same_device(dst, src)?;
        let (rows, dim) = dims2(dst, "destination")?;
        if dim != self.src_shape.1 || rows < self.row_bound {
            bail_shape!(
                "destination of shape ({rows}, {dim}) for a plan writing rows < {} of width {}",
                self.row_bound,
                self.src_shape.1
            );
        }
        if !dst.is_contiguous() {
            bail_invalid!("the destination must be contiguous");
        }
        if self.nseg == 0 || dim == 0 {
            return Ok(());
        }
        let src = src.contiguous()?;
        // `src` is borrowed (and its storage unchanged) for the whole launch.
        let src_p = tensor_ptr(&src)?;
        dst.inplace_op1(&Mutate(|d: &mut CudaStorage, off: usize| {
            self.launch(src_p, ptr_of(&d.slice, off)?, true)
        }))?;
        Ok(())
    }

    fn launch(&self, src_p: u64, out_p: u64, add_into: bool) -> CResult<()> {
        let (nseg, dim) = (self.nseg as u32, self.src_shape.1 as u32);
        let w_p = self.weights.as_ref().map_or(0, AccBuf::ptr);
        let (has_w, add_into) = (self.weights.is_some() as u32, add_into as u32);
        let (order_p, offs_p, rows_p) = (
            dev_ptr(&self.order),
            dev_ptr(&self.offsets),
            dev_ptr(&self.rows),
        );
        let kernel = Kernel::new(&self.dev, &SCATTER, &self.kernel)?;
        let mut b = kernel.builder();
        b.arg(&src_p).arg(&order_p).arg(&w_p).arg(&has_w);
        b.arg(&offs_p).arg(&nseg).arg(&dim);
        b.arg(&out_p).arg(&rows_p).arg(&add_into);
        // SAFETY: the plan's rows were validated, src_rows index rows of src (`new`), the
        // output was sized (or checked, for add_into) by the caller.
        unsafe { b.launch(row_cfg(self.nseg, self.src_shape.1)) }.w()?;
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
    let values =
        Segments::new(grad_output, &plan, &plan.order, w.as_deref())?.reduce(grad_output)?;
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
    Segments::new(src, &plan, &plan.order, None)?.add_into(src, dst)
}

/// `dst` with `src` rows added at `ids`; `dst` itself is unchanged.
pub fn index_add<I: Id>(dst: &Tensor, ids: &[I], src: &Tensor) -> Result<Tensor> {
    ids::validate(ids, dims2(dst, "dst")?.0, "index", "an embedding table")?;
    let out = dst.copy()?;
    index_add_(&out, ids, src)?;
    Ok(out)
}

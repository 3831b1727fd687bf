//! EmbeddingBag on CUDA. Forward: one block per bag reduces its rows (sum, weighted sum, mean
//! or max) in bag order. Backward (sum / mean): a segment reduce over a host plan that maps each
//! lookup to its bag's output-gradient row, scaled by its weight or `1 / count`.
//!
//! The bags come validated by the crate's one offsets check ([`EmbeddingBag::bags`]), and the
//! reduction is the CPU kernel's [`Reduce`]. Portable reference: `EmbeddingBag::forward_portable`
//! (gather, then per-bag reductions in candle ops).
//!
//! [`EmbeddingBag::bags`]: crate::EmbeddingBag::bags

use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Shape, Tensor};

use super::launch::{
    alloc_output, cuda_device, dev_ptr, dims2, ptr_of, row_cfg, suffix, u32_len, upload, AccBuf,
    Kernel, Produce,
};
use super::module::BAG;
use super::scatter::Segments;
use crate::ids::{self, Id};
use crate::kernels::cpu::bag::{Bags, Reduce};
use crate::kernels::segments::SegmentPlan;
use crate::{bail_invalid, bail_shape, Result, SparseGrad};

/// The kernels index `ids` through the bounds, so a launch needs the invariant that
/// [`crate::EmbeddingBag::bags`] established: `B + 1` non-decreasing bounds ending at most at
/// `ids.len()`, and per-sample weights (if any) one per id.
fn launchable<I>(bags: &Bags<'_, I>, weights: Option<&[f64]>) -> Result<()> {
    let b = &bags.bounds;
    if b.is_empty() || b.windows(2).any(|w| w[0] > w[1]) || b[b.len() - 1] > bags.ids.len() {
        bail_invalid!("bag bounds must be the checked CSR bounds of EmbeddingBag::bags");
    }
    if weights.is_some_and(|w| w.len() != bags.ids.len()) {
        bail_shape!("per_sample_weights must hold one weight per id");
    }
    Ok(())
}

/// EmbeddingBag forward on CUDA: `(B, dim)` pooled rows of `table`, in its dtype.
/// `per_sample_weights` (sum mode only, checked by the caller) scale each id's row; rows equal
/// to `padding_idx` are skipped and not counted; an empty bag gives zeros.
pub fn bag_forward<I: Id>(
    table: &Tensor,
    bags: &Bags<'_, I>,
    per_sample_weights: Option<&[f64]>,
    mode: Reduce,
    padding_idx: Option<usize>,
) -> Result<Tensor> {
    launchable(bags, per_sample_weights)?;
    let (rows, dim) = dims2(table, "table")?;
    ids::validate(bags.ids, rows, "index", "an embedding table")?;
    let dev = cuda_device(table)?;
    let dtype = table.dtype();
    let name = format!("ce_bag_forward_{}", suffix(dtype)?);
    let nbags = bags.num_bags();
    if nbags == 0 || dim == 0 {
        return Ok(Tensor::zeros((nbags, dim), dtype, table.device())?);
    }
    let (nb32, dim32) = (u32_len(nbags, "bags")?, u32_len(dim, "embedding_dim")?);
    let mode32: u32 = match mode {
        Reduce::Sum => 0,
        Reduce::Mean => 1,
        Reduce::Max => 2,
    };
    let pad = padding_idx.map_or(-1i64, |p| p as i64);
    let wide: Vec<i64> = bags.ids.iter().map(|&i| i.wide() as i64).collect();
    let offsets: Vec<i64> = bags.bounds.iter().map(|&b| b as i64).collect();
    let table = table.contiguous()?;
    Ok(
        table.apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
            let ids_d = upload(&dev, &wide)?;
            let offs_d = upload(&dev, &offsets)?;
            let w = per_sample_weights
                .map(|w| AccBuf::upload(&dev, dtype, w))
                .transpose()?;
            let has_w = w.is_some() as u32;
            let (out, out_p) = alloc_output(&dev, dtype, nbags * dim)?;
            let (src, ids_p, offs_p) = (ptr_of(&s.slice, off)?, dev_ptr(&ids_d), dev_ptr(&offs_d));
            let w_p = w.as_ref().map_or(0, AccBuf::ptr);
            let kernel = Kernel::new(&dev, &BAG, &name)?;
            let mut b = kernel.builder();
            b.arg(&src).arg(&ids_p).arg(&offs_p).arg(&w_p).arg(&has_w);
            b.arg(&nb32).arg(&dim32).arg(&mode32).arg(&pad).arg(&out_p);
            // SAFETY: ids validated, bounds checked as CSR over ids; out holds B * dim elements.
            unsafe { b.launch(row_cfg(nbags, dim)) }.w()?;
            Ok((out, Shape::from((nbags, dim))))
        }))?,
    )
}

/// EmbeddingBag backward on CUDA (`Sum` / `Mean`): the coalesced sparse gradient of a table of
/// `num_rows` rows, values in `grad_output`'s dtype on its device. Each lookup `j` of bag `b`
/// contributes `grad_output[b] * (w_j | 1/count_b | 1)`; `padding_idx` rows get nothing.
pub fn bag_backward<I: Id>(
    grad_output: &Tensor,
    bags: &Bags<'_, I>,
    per_sample_weights: Option<&[f64]>,
    mode: Reduce,
    padding_idx: Option<usize>,
    num_rows: usize,
) -> Result<SparseGrad> {
    launchable(bags, per_sample_weights)?;
    let (nbags, _) = dims2(grad_output, "grad_output")?;
    if bags.num_bags() != nbags {
        bail_shape!("grad_output has {nbags} rows for {} bags", bags.num_bags());
    }
    if mode == Reduce::Max {
        bail_invalid!("the CUDA bag backward covers mode='sum' and 'mean'");
    }
    u32_len(nbags, "bags")?;
    let ids = bags.ids;
    let plan = SegmentPlan::new(ids, num_rows, padding_idx)?;
    let (bag_of, scale) = bags.position_scales(mode, padding_idx, |p| {
        per_sample_weights.map_or(1.0, |w| w[p])
    })?;
    // Bag indices fit in u32: checked above.
    let src_rows: Vec<u32> = plan
        .order
        .iter()
        .map(|&p| bag_of[p as usize] as u32)
        .collect();
    let weights: Vec<f64> = plan.order.iter().map(|&p| scale[p as usize]).collect();
    let weighted = mode == Reduce::Mean || per_sample_weights.is_some();
    let values = Segments::new(
        grad_output,
        &plan,
        &src_rows,
        weighted.then_some(&weights[..]),
    )?
    .reduce(grad_output)?;
    Ok(SparseGrad::from_coalesced_unchecked(
        plan.rows, values, num_rows,
    ))
}

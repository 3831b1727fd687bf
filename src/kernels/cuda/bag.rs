//! EmbeddingBag on CUDA. Forward: one block per bag reduces its rows (sum, weighted sum, mean
//! or max) in bag order. Backward (sum / mean): a segment reduce over a host plan that maps each
//! lookup to its bag's output-gradient row, scaled by its weight or `1 / count`.
//!
//! Portable reference: the candle-op bag in `crate::bag` (gather, then per-bag reductions).

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
use crate::kernels::segments::SegmentPlan;
use crate::{bail_invalid, bail_shape, BagMode, Result, SparseGrad};

/// Check CSR offsets (`B + 1` entries, `0`, non-decreasing, last = `n`).
fn check_offsets(offsets: &[i64], n: usize) -> Result<()> {
    if offsets.first() != Some(&0) || offsets.last() != Some(&(n as i64)) {
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
    let name = format!("ce_bag_forward_{}", suffix(dtype)?);
    let nbags = offsets.len() - 1;
    if nbags == 0 || dim == 0 {
        return Ok(Tensor::zeros((nbags, dim), dtype, table.device())?);
    }
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
            let ids_d = upload(&dev, &wide)?;
            let offs_d = upload(&dev, offsets)?;
            let w = AccBuf::upload(&dev, dtype, per_sample_weights.unwrap_or(&[]))?;
            let has_w = per_sample_weights.is_some() as u32;
            let argmax =
                dev.alloc_zeros::<i64>(if mode == BagMode::Max { nbags * dim } else { 1 })?;
            let (out, out_p) = alloc_output(&dev, dtype, nbags * dim)?;
            let (src, ids_p, offs_p, w_p, am_p) = (
                ptr_of(&s.slice, off)?,
                dev_ptr(&ids_d),
                dev_ptr(&offs_d),
                w.ptr(),
                dev_ptr(&argmax),
            );
            let kernel = Kernel::new(&dev, &BAG, &name)?;
            let mut b = kernel.builder();
            b.arg(&src).arg(&ids_p).arg(&offs_p).arg(&w_p).arg(&has_w);
            b.arg(&nb32).arg(&dim32).arg(&mode32).arg(&pad);
            b.arg(&out_p).arg(&am_p);
            // SAFETY: ids validated, offsets checked as CSR over ids; out holds B * dim elements.
            unsafe { b.launch(row_cfg(nbags, dim)) }.w()?;
            Ok((out, Shape::from((nbags, dim))))
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
    if let Some(w) = per_sample_weights {
        if w.len() != ids.len() {
            bail_shape!(
                "per_sample_weights has {} entries for {} ids",
                w.len(),
                ids.len()
            );
        }
    }
    u32_len(nbags, "bags")?;
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

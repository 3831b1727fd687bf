//! The fast CPU kernel over packed rows: dequantize and pool in one pass, the packed row read
//! once (codes, then its scale and bias), nothing dequantized into a buffer first.
//!
//! Bag `b` (ids `k` in its bounds, padding left out):
//! - sum / mean, in f32, as FBGEMM's `EmbeddingSpMDM` kernels do:
//!   `acc_j = fma(w_k * scale_r, code_rj, acc_j + w_k * bias_r)` for `r = ids[k]`: the bias is
//!   added once per row and weight, then one fused multiply-add per element; mean then multiplies
//!   by `1 / count` (count of non-padding ids). Same rounding as FBGEMM (`mul_add` is a true fused
//!   multiply-add on every CPU), so f32 results equal PyTorch's
//!   `embedding_bag_byte_rowwise_offsets` / `embedding_bag_4bit_rowwise_offsets` bit for bit.
//! - max: `max_k fma(scale_r, code_rj, bias_r)` per column (the first occurrence on ties), 0
//!   for an empty bag, as [`crate::EmbeddingBag`].
//!
//! A lookup is the bag of one id each ([`Bounds::Singles`]): `fma(scale, code, bias)`.
//! Parallel over bags (each bag summed by one thread, in id order: bit-identical for any thread
//! count), columns in tiles of [`TILE`] kept in registers, rows prefetched [`DISTANCE`] ids
//! ahead. Ids must be validated and bounds checked by the caller.

use super::format::{Bits, RowLayout};
use crate::dtype::Float;
use crate::ids::Id;
use crate::kernels::cpu::bag::{Reduce, TILE};
use crate::kernels::cpu::prefetch::{prefetch_bytes, DISTANCE};
use crate::threads;

/// Below this many output elements the pool's dispatch costs more than it saves.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// Which ids form each bag.
#[derive(Clone, Copy, Debug)]
pub enum Bounds<'a> {
    /// CSR bounds, `B + 1` entries: bag `b` is `ids[bounds[b]..bounds[b + 1]]`.
    Csr(&'a [usize]),
    /// Every id is a bag of its own (a lookup).
    Singles,
}

impl Bounds<'_> {
    #[inline(always)]
    fn of(&self, b: usize) -> (usize, usize) {
        match self {
            Bounds::Csr(bounds) => (bounds[b], bounds[b + 1]),
            Bounds::Singles => (b, b + 1),
        }
    }
}

/// Inputs shared by every bag of one call.
pub struct PoolArgs<'a, I> {
    /// The packed table, `rows * layout.row_bytes()` bytes.
    pub packed: &'a [u8],
    /// The row layout.
    pub layout: RowLayout,
    /// Validated ids, bag after bag.
    pub ids: &'a [I],
    /// The bags.
    pub bounds: Bounds<'a>,
    /// One weight per id (sum only).
    pub weights: Option<&'a [f32]>,
    /// Row left out of every bag.
    pub padding: Option<usize>,
    /// The reduction.
    pub mode: Reduce,
}

/// Dequantize and reduce every bag into `out` (`B * dim` elements, each written once).
pub fn pool<I: Id, D: Float>(args: &PoolArgs<'_, I>, out: &mut [D]) {
    let dim = args.layout.dim;
    if dim == 0 || out.is_empty() {
        return;
    }
    let num_bags = out.len() / dim;
    let run = |first_bag: usize, out: &mut [D]| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the clone is compiled for.
                return unsafe { bags_avx2(args, first_bag, out) };
            }
        }
        bags_serial(args, first_bag, out)
    };
    if threads::get_num_threads() <= 1 || args.ids.len().max(num_bags) * dim < PARALLEL_MIN_ELEMS {
        return run(0, out);
    }
    let chunk = threads::chunk_for(num_bags, 16);
    threads::for_each_chunk_mut(out, chunk * dim, |c, out| run(c * chunk, out));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bags_avx2<I: Id, D: Float>(args: &PoolArgs<'_, I>, first_bag: usize, out: &mut [D]) {
    bags_serial(args, first_bag, out)
}

/// `acc_j = fma(s, code_j, acc_j + b)` over the tile of columns starting at `c0`.
#[inline(always)]
fn accumulate(bits: Bits, row: &[u8], c0: usize, acc: &mut [f32], s: f32, b: f32) {
    match bits {
        Bits::Eight => {
            for (a, &q) in acc.iter_mut().zip(&row[c0..]) {
                *a = f32::from(q).mul_add(s, *a + b);
            }
        }
        Bits::Four => {
            for (a, &q) in acc.chunks_exact_mut(2).zip(&row[c0 / 2..]) {
                a[0] = f32::from(q & 0x0F).mul_add(s, a[0] + b);
                a[1] = f32::from(q >> 4).mul_add(s, a[1] + b);
            }
        }
    }
}

/// `acc_j = max(acc_j, fma(s, code_j, b))` (strictly greater replaces: ties keep the first).
#[inline(always)]
fn maximum(bits: Bits, row: &[u8], c0: usize, acc: &mut [f32], s: f32, b: f32) {
    let keep = |a: &mut f32, q: u8| {
        let x = f32::from(q).mul_add(s, b);
        if x > *a {
            *a = x;
        }
    };
    match bits {
        Bits::Eight => acc
            .iter_mut()
            .zip(&row[c0..])
            .for_each(|(a, &q)| keep(a, q)),
        Bits::Four => {
            for (a, &q) in acc.chunks_exact_mut(2).zip(&row[c0 / 2..]) {
                keep(&mut a[0], q & 0x0F);
                keep(&mut a[1], q >> 4);
            }
        }
    }
}

/// Bags `first_bag..first_bag + out.len() / dim`, one after the other.
#[inline(always)]
fn bags_serial<I: Id, D: Float>(args: &PoolArgs<'_, I>, first_bag: usize, out: &mut [D]) {
    let PoolArgs {
        packed,
        layout,
        ids,
        bounds,
        weights,
        padding,
        mode,
    } = *args;
    let (dim, width) = (layout.dim, layout.row_bytes());
    let row_of = |pos: usize| {
        let r = ids[pos].index() * width;
        &packed[r..r + width]
    };
    let end = bounds.of(first_bag + out.len() / dim - 1).1;
    let prefetch = |pos: usize| {
        if pos < end {
            prefetch_bytes(row_of(pos).as_ptr(), width);
        }
    };
    let start = bounds.of(first_bag).0;
    (start..(start + DISTANCE).min(end)).for_each(prefetch);
    let mut tile = [0f32; TILE];
    for (b, dst) in out.chunks_exact_mut(dim).enumerate() {
        let (lo, hi) = bounds.of(first_bag + b);
        for c0 in (0..dim).step_by(TILE) {
            let acc = &mut tile[..TILE.min(dim - c0)];
            acc.fill(if mode == Reduce::Max {
                f32::NEG_INFINITY
            } else {
                0.0
            });
            let mut count = 0usize;
            for pos in lo..hi {
                if c0 == 0 {
                    prefetch(pos + DISTANCE);
                }
                if Some(ids[pos].index()) == padding {
                    continue;
                }
                count += 1;
                let row = row_of(pos);
                let (scale, bias) = layout.scale_bias(row);
                match (mode, weights) {
                    (Reduce::Max, _) => maximum(layout.bits, row, c0, acc, scale, bias),
                    (_, Some(ws)) => {
                        let w = ws[pos];
                        accumulate(layout.bits, row, c0, acc, w * scale, w * bias);
                    }
                    (_, None) => accumulate(layout.bits, row, c0, acc, scale, bias),
                }
            }
            let dst = &mut dst[c0..c0 + acc.len()];
            if count == 0 {
                dst.fill(D::of_f64(0.0));
                continue;
            }
            // FBGEMM's mean: one f32 reciprocal, then a product (exact for the other modes).
            let factor = if mode == Reduce::Mean {
                1.0 / count as f32
            } else {
                1.0
            };
            for (d, &a) in dst.iter_mut().zip(acc.iter()) {
                *d = D::of_f64(f64::from(a * factor));
            }
        }
    }
}

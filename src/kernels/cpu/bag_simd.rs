//! f32 bag sum / mean with each bag's output columns held in AVX registers across the bag.
//!
//! The scheme of FBGEMM's float `EmbeddingSpMDM` kernel (PyTorch's CPU `embedding_bag`): for a
//! block of `8 R` columns, `R` accumulator registers of 8 lanes, one load-and-add per register
//! per row of the bag, the rows a row-size-dependent distance ahead prefetched
//! ([`RowsAhead`](super::prefetch::RowsAhead)), and one store per register when the bag ends.
//! The generic loop of [`super::bag`] keeps its accumulator tile in memory at widths it has no fixed size for
//! (D = 128: a load, an add and a store per 8 columns per row); here there are no stores until
//! the bag is done.
//!
//! Bit-identical to the generic loop, which stays the slow reference: each column gets the
//! same f32 additions in the same (bag) order starting from +0, a weight is applied as a
//! separate product then a sum (no fused multiply-add, as `Float::add_row` rounds them), and
//! the mean multiplies by the same `1 / count`. Taken for f32 tables with f32 outputs whose
//! rows are whole registers (`D % 8 == 0`), on CPUs with AVX2; anything else returns `false`
//! and runs the generic loop.

use std::any::TypeId;

use super::bag_args::{BagArgs, Reduce};
use crate::dtype::Float;
use crate::ids::Id;

/// f32 lanes of one AVX register.
const LANES: usize = 8;

/// Accumulators per column block without weights: all 16 of AVX2's registers (the row's
/// operand is folded into the add, so none is needed for it): 128 columns.
const REGS: usize = 16;

/// With weights a register holds the broadcast weight and one the product: 8 accumulators
/// (64 columns) leave room for both.
const REGS_WEIGHTED: usize = 8;

/// `s` as a slice of `B` when `A` is `B` (`None` otherwise).
fn same_type<A: 'static, B: 'static>(s: &[A]) -> Option<&[B]> {
    // SAFETY: A and B are the same type (checked), so the slice is reinterpreted as itself.
    (TypeId::of::<A>() == TypeId::of::<B>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<B>(), s.len()) })
}

/// [`same_type`] for a mutable slice.
fn same_type_mut<A: 'static, B: 'static>(s: &mut [A]) -> Option<&mut [B]> {
    // SAFETY: as in `same_type`; the borrow is handed on, so the slice stays unaliased.
    (TypeId::of::<A>() == TypeId::of::<B>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<B>(), s.len()) })
}

/// Reduce bags `first_bag..first_bag + out.len() / dim` (sum or mean) into `out` with the
/// register kernel, when it applies (see the module docs); `false`, with `out` untouched, when
/// it does not. `args` is as [`super::bag::bag_reduce`] takes it (ids validated, bounds
/// checked).
pub fn try_sum_bags<S: Float, D: Float, I: Id>(
    args: &BagArgs<'_, S, D, I>,
    first_bag: usize,
    out: &mut [D],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if args.mode == Reduce::Max
            || args.dim % LANES != 0
            || !std::is_x86_feature_detected!("avx2")
        {
            return false;
        }
        let (Some(table), Some(out)) = (
            same_type::<S, f32>(args.table),
            same_type_mut::<D, f32>(out),
        ) else {
            return false;
        };
        let weights = match args.weights {
            Some(ws) => match same_type::<D, f32>(ws) {
                Some(ws) => Some(ws),
                None => return false,
            },
            None => None,
        };
        let bags = F32Bags {
            table,
            dim: args.dim,
            ids: args.ids,
            bounds: args.bounds,
            weights,
            padding: args.padding,
            mean: args.mode == Reduce::Mean,
        };
        // SAFETY: the CPU has AVX2 (checked above); ids are validated and bounds checked by
        // the caller, as `bag_reduce` requires.
        unsafe { x86::sum_bags(&bags, first_bag, out) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (args, first_bag, out);
        false
    }
}

/// The inputs of [`try_sum_bags`] once the types are known to be f32.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct F32Bags<'a, I> {
    table: &'a [f32],
    dim: usize,
    ids: &'a [I],
    bounds: &'a [usize],
    weights: Option<&'a [f32]>,
    padding: Option<usize>,
    mean: bool,
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{F32Bags, LANES, REGS, REGS_WEIGHTED};
    use crate::ids::Id;
    use crate::kernels::cpu::prefetch::RowsAhead;

    /// Every bag of the chunk, column block after column block.
    ///
    /// # Safety
    /// The CPU has AVX2; ids are validated (`< table.len() / dim`), `bounds` has
    /// `first_bag + out.len() / dim + 1` non-decreasing entries at most `ids.len()`, and
    /// `weights`, when given, is as long as `ids`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn sum_bags<I: Id>(b: &F32Bags<'_, I>, first_bag: usize, out: &mut [f32]) {
        let dim = b.dim;
        let (start, end) = (b.bounds[first_bag], b.bounds[first_bag + out.len() / dim]);
        let ahead = RowsAhead::<_, false>::new(b.table.as_ptr(), dim * 4, b.ids, start, end);
        let regs = if b.weights.is_some() {
            REGS_WEIGHTED
        } else {
            REGS
        };
        for (k, dst) in out.chunks_exact_mut(dim).enumerate() {
            let (lo, hi) = (b.bounds[first_bag + k], b.bounds[first_bag + k + 1]);
            let mut c0 = 0;
            while c0 < dim {
                let r = regs.min((dim - c0) / LANES);
                let blk = Block {
                    bags: b,
                    lo,
                    hi,
                    c0,
                    // The first block asks for whole rows ahead; the later ones find them.
                    ahead: (c0 == 0).then_some(&ahead),
                };
                let dst = &mut dst[c0..c0 + r * LANES];
                macro_rules! dispatch {
                    ($($n:literal)*) => {
                        match (r, b.weights.is_some()) {
                            $(($n, false) => block::<$n, false, I>(&blk, dst),)*
                            $(($n, true) if $n <= REGS_WEIGHTED => block::<$n, true, I>(&blk, dst),)*
                            _ => unreachable!("block of {r} registers"),
                        }
                    };
                }
                let count = dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
                if b.mean && count > 0 {
                    // The generic loop's scale: 1 / count, both rounded to f32 first. Here,
                    // not in `block`, where the u64 -> f64 conversion's temporaries made the
                    // register allocator spill the accumulators of the whole loop.
                    let inv = 1.0f32 / (count as f64) as f32;
                    dst.iter_mut().for_each(|x| *x *= inv);
                }
                c0 += r * LANES;
            }
        }
    }

    /// One column block `c0..c0 + 8 R` of the bag `ids[lo..hi]`.
    struct Block<'a, 'b, I> {
        bags: &'b F32Bags<'a, I>,
        lo: usize,
        hi: usize,
        c0: usize,
        ahead: Option<&'b RowsAhead<'a, I, false>>,
    }

    /// `dst = sum_k (w_k *) row_k[c0..c0 + 8 R]` over the non-padding ids, in bag order, with
    /// `R` registers held across the bag; returns their count (the mean's divisor).
    ///
    /// Never inlined: in its own function the register allocator keeps all `R` accumulators
    /// in registers; inlined into [`sum_bags`] (24 blocks in one body) it spilled 13 of the 16
    /// to the stack, a load and a store per register per row, as the generic loop.
    ///
    /// # Safety
    /// As [`sum_bags`]; `dst` has `8 R` elements and `c0 + 8 R <= dim`.
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    unsafe fn block<const R: usize, const WEIGHTED: bool, I: Id>(
        blk: &Block<'_, '_, I>,
        dst: &mut [f32],
    ) -> usize {
        let b = blk.bags;
        let base = b.table.as_ptr().add(blk.c0);
        let mut acc = [_mm256_setzero_ps(); R];
        let mut count = 0usize;
        for pos in blk.lo..blk.hi {
            if let Some(ahead) = blk.ahead {
                ahead.before(pos);
            }
            let id = b.ids.get_unchecked(pos).index();
            if Some(id) == b.padding {
                continue;
            }
            count += 1;
            let row = base.add(id * b.dim);
            let w = match b.weights {
                Some(ws) if WEIGHTED => _mm256_set1_ps(*ws.get_unchecked(pos)),
                _ => _mm256_setzero_ps(),
            };
            for (r, a) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(row.add(r * LANES));
                // Product and sum rounded separately, as the generic loop does.
                let x = if WEIGHTED { _mm256_mul_ps(x, w) } else { x };
                *a = _mm256_add_ps(*a, x);
            }
        }
        debug_assert_eq!(dst.len(), R * LANES);
        for (r, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(dst.as_mut_ptr().add(r * LANES), *a);
        }
        count
    }
}

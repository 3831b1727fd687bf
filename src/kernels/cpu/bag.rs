//! Bag reduction: `out[b, :] = reduce_{k in bag b, ids[k] != padding} w_k * table[ids[k], :]`
//! with `reduce` one of sum / mean / max, bags given as CSR bounds (`bounds[b]..bounds[b + 1]`).
//!
//! f32 sums and means of whole-register rows take the register kernel of [`super::bag_simd`]
//! (same bits); everything else runs the generic loop here, its slow reference.
//!
//! Parallel over bags; each bag is accumulated in a small on-stack `Acc` tile (a column block of
//! at most [`TILE`] elements, which the compiler keeps in L1 / registers) and its output row is
//! written once (tiles of 32 or 64 columns, as for D = 32 / 64, in a fixed-size accumulator kept
//! in registers: 28 % fewer instructions at D = 64 by callgrind, same bits). Rows a
//! row-size-dependent distance ahead are prefetched ([`super::tuning`]). The sum over a bag runs
//! in bag order in one thread, so the result is bit-identical for any thread count. Ids must be validated and
//! `bounds` checked (non-decreasing, `bounds[B] <= ids.len()`) by the caller.

use rayon::prelude::*;

pub use super::bag_args::{BagArgs, Bags, Reduce};
use super::prefetch::RowsAhead;
use crate::alloc::{checked_elems, try_filled};
use crate::dtype::{Accumulator, Float};
use crate::ids::Id;
use crate::{threads, Result};

/// Columns accumulated per pass over a bag (128 f32 = 512 bytes, 16 AVX registers).
pub const TILE: usize = 128;

/// Below this many gathered elements the pool's dispatch costs more than it saves.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// Reduce every bag into `out` (`B * dim` elements, every one overwritten).
pub fn bag_reduce<S: Float, D: Float, I: Id>(args: &BagArgs<'_, S, D, I>, out: &mut [D]) {
    let dim = args.dim;
    let num_bags = args.bounds.len().saturating_sub(1);
    debug_assert_eq!(out.len(), num_bags * dim);
    if dim == 0 || num_bags == 0 {
        return;
    }
    let run = |first_bag: usize, out: &mut [D]| {
        if super::bag_simd::try_sum_bags(args, first_bag, out) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the clone is compiled for.
                return unsafe { bags_avx2(args, first_bag, out) };
            }
        }
        bags_serial(args, first_bag, out)
    };
    let work = args.ids.len().max(num_bags) * dim;
    if work < PARALLEL_MIN_ELEMS {
        return run(0, out);
    }
    let chunk = threads::chunk_for(num_bags, 16);
    threads::for_each_chunk_mut(out, chunk * dim, |c, out| run(c * chunk, out));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bags_avx2<S: Float, D: Float, I: Id>(
    args: &BagArgs<'_, S, D, I>,
    first_bag: usize,
    out: &mut [D],
) {
    bags_serial(args, first_bag, out)
}

/// Bags `first_bag..first_bag + out.len() / dim`, one after the other.
#[inline(always)]
fn bags_serial<S: Float, D: Float, I: Id>(
    args: &BagArgs<'_, S, D, I>,
    first_bag: usize,
    out: &mut [D],
) {
    let BagArgs {
        table,
        dim,
        ids,
        bounds,
        weights,
        padding,
        mode,
    } = *args;
    let (start, end) = (bounds[first_bag], bounds[first_bag + out.len() / dim]);
    let ahead = RowsAhead::<_, false>::new(
        table.as_ptr(),
        dim * std::mem::size_of::<S>(),
        ids,
        start,
        end,
    );
    let mut acc = [<S::Acc as num_traits::Zero>::zero(); TILE];
    for (b, dst) in out.chunks_exact_mut(dim).enumerate() {
        let (lo, hi) = (bounds[first_bag + b], bounds[first_bag + b + 1]);
        let bag = &ids[lo..hi];
        for c0 in (0..dim).step_by(TILE) {
            let w = TILE.min(dim - c0);
            let acc = &mut acc[..w];
            let first_tile = c0 == 0;
            let mut count = 0usize;
            match mode {
                Reduce::Sum | Reduce::Mean => {
                    let tile = SumTile {
                        table,
                        dim,
                        c0,
                        bag,
                        weights: weights.map(|ws| &ws[lo..hi]),
                        padding,
                    };
                    let pf = |k: usize| {
                        if first_tile {
                            ahead.before(lo + k);
                        }
                    };
                    // Common tile widths get a fixed-size accumulator the compiler keeps in
                    // registers across the bag; the per-column sums run in the same order.
                    count = match w {
                        32 => tile.sum_fixed::<32>(&mut acc[..32], pf),
                        64 => tile.sum_fixed::<64>(&mut acc[..64], pf),
                        _ => tile.sum(acc, pf),
                    };
                    if mode == Reduce::Mean && count > 0 {
                        let inv = S::acc_from_f64(1.0) / S::acc_from_f64(count as f64);
                        acc.iter_mut().for_each(|a| *a = *a * inv);
                    }
                    S::Acc::store(acc, &mut dst[c0..c0 + w]);
                }
                Reduce::Max => {
                    acc.fill(num_traits::Float::neg_infinity());
                    for (k, &id) in bag.iter().enumerate() {
                        if first_tile {
                            ahead.before(lo + k);
                        }
                        let id = id.index();
                        if Some(id) == padding {
                            continue;
                        }
                        count += 1;
                        let row = &table[id * dim + c0..id * dim + c0 + w];
                        // Strictly greater: ties keep the first occurrence (as the backward).
                        for (a, &x) in acc.iter_mut().zip(row) {
                            let x = x.to_acc();
                            if x > *a {
                                *a = x;
                            }
                        }
                    }
                    let o = &mut dst[c0..c0 + w];
                    if count == 0 {
                        o.fill(D::of_f64(0.0));
                    } else {
                        S::Acc::store(acc, o);
                    }
                }
            }
        }
    }
}

/// One column tile `c0..c0 + acc.len()` of one sum/mean bag.
struct SumTile<'a, S, D, I> {
    table: &'a [S],
    dim: usize,
    c0: usize,
    bag: &'a [I],
    /// The bag's own weights (aligned with `bag`).
    weights: Option<&'a [D]>,
    padding: Option<usize>,
}

impl<S: Float, D: Float, I: Id> SumTile<'_, S, D, I> {
    /// `acc = sum_k w_k * table[bag[k], c0..c0 + acc.len()]` over the non-padding ids, in bag
    /// order (the reference order); `pf(k)` runs before id `k` is read. Returns the count.
    #[inline(always)]
    fn sum(&self, acc: &mut [S::Acc], pf: impl Fn(usize)) -> usize {
        let w = acc.len();
        acc.fill(num_traits::Zero::zero());
        let mut count = 0;
        for (k, &id) in self.bag.iter().enumerate() {
            pf(k);
            let id = id.index();
            if Some(id) == self.padding {
                continue;
            }
            count += 1;
            let a0 = id * self.dim + self.c0;
            let weight = self.weights.map(|ws| S::acc_from_f64(ws[k].as_f64()));
            S::add_row(acc, &self.table[a0..a0 + w], weight);
        }
        count
    }

    /// [`Self::sum`] for a tile of exactly `W` columns, accumulated in a local `[Acc; W]`: once
    /// `sum` is inlined here, every length in it is the constant `W`, so the accumulator stays
    /// in registers across the bag instead of going through memory for every row.
    #[inline(always)]
    fn sum_fixed<const W: usize>(&self, out: &mut [S::Acc], pf: impl Fn(usize)) -> usize {
        let mut acc = [<S::Acc as num_traits::Zero>::zero(); W];
        let count = self.sum(&mut acc, pf);
        out.copy_from_slice(&acc);
        count
    }
}

/// Each column's argmax position (index into `ids`) for every bag, `B * dim` entries;
/// `usize::MAX` where a bag has no non-padding id. Ties: the first occurrence. Serial per bag,
/// parallel over bags.
pub fn bag_argmax<S: Float, I: Id>(
    table: &[S],
    dim: usize,
    ids: &[I],
    bounds: &[usize],
    padding: Option<usize>,
) -> Result<Vec<usize>> {
    let num_bags = bounds.len().saturating_sub(1);
    let mut arg = try_filled(checked_elems(&[num_bags, dim], 8)?, usize::MAX)?;
    if dim == 0 || num_bags == 0 {
        return Ok(arg);
    }
    let one = |b: usize, arg: &mut [usize]| {
        let mut best = vec![<S::Acc as num_traits::Float>::neg_infinity(); dim];
        let lo = bounds[b];
        for (pos, id) in (lo..).zip(&ids[lo..bounds[b + 1]]) {
            let id = id.index();
            if Some(id) == padding {
                continue;
            }
            let row = &table[id * dim..id * dim + dim];
            for ((a, bst), &x) in arg.iter_mut().zip(best.iter_mut()).zip(row) {
                let x = x.to_acc();
                if *a == usize::MAX || x > *bst {
                    *bst = x;
                    *a = pos;
                }
            }
        }
    };
    threads::install(|| {
        arg.par_chunks_mut(dim)
            .with_min_len(64)
            .enumerate()
            .for_each(|(b, a)| one(b, a));
    });
    Ok(arg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::bag_simd::{try_sum_bags_on, Kind};

    /// The fixed-width accumulators give the generic loop's bits (same per-column order), with
    /// and without weights, with padding ids in the bag.
    #[test]
    fn fixed_width_sums_match_the_generic_loop_bit_for_bit() {
        let (rows, dim) = (50usize, 160usize);
        let table: Vec<f32> = (0..rows * dim)
            .map(|i| ((i as f32) * 0.731).sin() * 3.0)
            .collect();
        let bag: Vec<i64> = (0..37).map(|k| (k * 17 + k * k) % rows as i64).collect();
        let ws: Vec<f32> = (0..bag.len()).map(|k| 0.5 + k as f32 * 0.01).collect();
        for weights in [None, Some(&ws[..])] {
            for (c0, w) in [(0usize, 32usize), (0, 64), (64, 64), (128, 32), (96, 64)] {
                let tile = SumTile {
                    table: &table,
                    dim,
                    c0,
                    bag: &bag,
                    weights,
                    padding: Some(bag[3] as usize),
                };
                let mut want = vec![0f32; w];
                let n = tile.sum(&mut want, |_| {});
                let mut got = vec![f32::NAN; w];
                let m = match w {
                    32 => tile.sum_fixed::<32>(&mut got, |_| {}),
                    _ => tile.sum_fixed::<64>(&mut got, |_| {}),
                };
                assert_eq!(n, m);
                assert!(n < bag.len());
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "c0 {c0} w {w}");
            }
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The register kernel gives the generic loop's bits (run on an f64 output, which never
    /// takes it, then rounded: f32 sums stored to f64 are exact) for every block width, with
    /// and without weights and padding, empty bags and all-padding bags, sum and mean.
    #[test]
    fn register_kernel_matches_the_generic_loop_bit_for_bit() {
        let rows = 61usize;
        for dim in [8usize, 16, 24, 64, 120, 128, 136, 256, 264, 272, 528] {
            let table: Vec<f32> = (0..rows * dim)
                .map(|i| ((i as f32) * 0.731).sin() * 3.0 + 1e-3 * (i % 7) as f32)
                .collect();
            let ids: Vec<i64> = (0..300).map(|k| (k * 17 + k * k) % rows as i64).collect();
            // bags of 0..=40 ids, an empty one, one made only of the padding row
            let mut bounds = vec![0usize, 0, 3];
            while *bounds.last().unwrap() < ids.len() {
                let l = *bounds.last().unwrap();
                bounds.push((l + 1 + (l * 7) % 40).min(ids.len()));
            }
            let pad = ids[1] as usize; // bag 1 is ids[0..3]; ids[1] alone is never a bag
            let ws: Vec<f32> = (0..ids.len()).map(|k| 0.5 + k as f32 * 0.01).collect();
            for mode in [Reduce::Sum, Reduce::Mean] {
                for (weights, padding) in
                    [(None, None), (None, Some(pad)), (Some(&ws[..]), Some(pad))]
                {
                    if mode == Reduce::Mean && weights.is_some() {
                        continue;
                    }
                    let nb = bounds.len() - 1;
                    let args = BagArgs {
                        table: &table[..],
                        dim,
                        ids: &ids[..],
                        bounds: &bounds[..],
                        weights,
                        padding,
                        mode,
                    };
                    let ws64: Vec<f64> = ws.iter().map(|&w| w as f64).collect();
                    let args64 = BagArgs::<f32, f64, i64> {
                        table: &table[..],
                        dim,
                        ids: &ids[..],
                        bounds: &bounds[..],
                        weights: weights.map(|_| &ws64[..]),
                        padding,
                        mode,
                    };
                    let mut want = vec![f64::NAN; nb * dim];
                    bag_reduce(&args64, &mut want);
                    let want: Vec<f32> = want.iter().map(|&x| x as f32).collect();
                    for kind in [Kind::Avx2, Kind::Avx512] {
                        let mut got = vec![f32::NAN; nb * dim];
                        let fits = kind.available() && dim % kind.lanes() == 0;
                        assert_eq!(try_sum_bags_on(kind, &args, 0, &mut got), fits);
                        if fits {
                            assert_eq!(
                                bits(&got),
                                bits(&want),
                                "{kind:?} dim {dim} {mode:?} w {} pad {padding:?}",
                                weights.is_some()
                            );
                        }
                    }
                    // and the choice bag_reduce makes
                    let mut got = vec![f32::NAN; nb * dim];
                    bag_reduce(&args, &mut got);
                    assert_eq!(bits(&got), bits(&want), "dim {dim} {mode:?}");
                }
            }
        }
    }
}

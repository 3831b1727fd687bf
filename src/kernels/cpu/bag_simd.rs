//! f32 bag sum / mean with each bag's output columns held in AVX registers across the bag.
//!
//! The scheme of FBGEMM's float `EmbeddingSpMDM` kernel (PyTorch's CPU `embedding_bag`): for a
//! block of `L R` columns, `R` accumulator registers of `L` lanes (AVX2: 8, AVX-512: 16), one
//! load-and-add per register per row of the bag, and one store per register when the bag ends.
//! The row a row-size-dependent distance ahead ([`RowsAhead`](super::prefetch::RowsAhead)) is
//! requested line by line between the adds, as FBGEMM's generated code does, rather than in a
//! loop of its own before them (seventh session, BENCHMARKS.md).
//!
//! The generic loop of [`super::bag`] keeps its accumulator tile in memory at widths it has no fixed size for
//! (D = 128: a load, an add and a store per 8 columns per row); here there are no stores until
//! the bag is done.
//!
//! Bit-identical to the generic loop, which stays the slow reference: each column gets the
//! same f32 additions in the same (bag) order starting from +0, a weight is applied as a
//! separate product then a sum (no fused multiply-add, as `Float::add_row` rounds them), and
//! the mean multiplies by the same `1 / count`. Taken for f32 tables with f32 outputs whose
//! rows are whole registers: AVX-512 where the CPU has it and `D % 16 == 0`, else AVX2 where
//! `D % 8 == 0`; anything else returns `false` and runs the generic loop.

use std::any::TypeId;

use super::bag_args::{BagArgs, Reduce};
use crate::dtype::Float;
use crate::ids::Id;

/// The register kinds the kernel is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// AVX2: 8 f32 lanes, 16 registers.
    Avx2,
    /// AVX-512F: 16 f32 lanes, 32 registers (compiled where build.rs sets
    /// `candle_embed_avx512`).
    Avx512,
}

impl Kind {
    /// f32 lanes of one register.
    pub fn lanes(self) -> usize {
        match self {
            Kind::Avx2 => 8,
            Kind::Avx512 => 16,
        }
    }

    /// Whether this build and this CPU can run the kind.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Kind::Avx2 => std::is_x86_feature_detected!("avx2"),
                #[cfg(candle_embed_avx512)]
                Kind::Avx512 => std::is_x86_feature_detected!("avx512f"),
                #[cfg(not(candle_embed_avx512))]
                Kind::Avx512 => false,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// The widest available kind whose registers divide rows of `dim` columns.
    fn for_dim(dim: usize) -> Option<Kind> {
        [Kind::Avx512, Kind::Avx2]
            .into_iter()
            .find(|k| dim % k.lanes() == 0 && k.available())
    }
}

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
/// register kernel, on the widest register kind that fits the rows, when it applies (see the
/// module docs); `false`, with `out` untouched, when it does not. `args` is as
/// [`super::bag::bag_reduce`] takes it (ids validated, bounds checked).
pub fn try_sum_bags<S: Float, D: Float, I: Id>(
    args: &BagArgs<'_, S, D, I>,
    first_bag: usize,
    out: &mut [D],
) -> bool {
    Kind::for_dim(args.dim).is_some_and(|kind| try_sum_bags_on(kind, args, first_bag, out))
}

/// [`try_sum_bags`] on the register kind `kind` (`false` where the CPU lacks it or its
/// registers do not divide the rows); the tests run every kind.
pub fn try_sum_bags_on<S: Float, D: Float, I: Id>(
    kind: Kind,
    args: &BagArgs<'_, S, D, I>,
    first_bag: usize,
    out: &mut [D],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if args.mode == Reduce::Max || args.dim % kind.lanes() != 0 || !kind.available() {
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
        // SAFETY: the CPU has the kind's features (checked above), its lanes divide `dim`; ids
        // are validated and bounds checked by the caller, as `bag_reduce` requires.
        unsafe {
            match kind {
                Kind::Avx2 => avx2::sum_bags(&bags, first_bag, out),
                #[cfg(candle_embed_avx512)]
                Kind::Avx512 => avx512::sum_bags(&bags, first_bag, out),
                #[cfg(not(candle_embed_avx512))]
                Kind::Avx512 => unreachable!("not available in this build"),
            }
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (kind, args, first_bag, out);
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

/// `$block::<R, WEIGHTED, I>(args)` for the block's register count `R` (a literal of the list)
/// and weighting, weighted blocks only up to the weighted register budget.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch_block {
    (($r:expr, $weighted:expr, $max_weighted:expr) => $block:ident::<$i:ty>($blk:expr, $dst:expr);
     $($n:literal)*) => {
        match ($r, $weighted) {
            $(($n, false) => $block::<$n, false, $i>($blk, $dst),)*
            $(($n, true) if $n <= $max_weighted => $block::<$n, true, $i>($blk, $dst),)*
            (r, _) => unreachable!("block of {r} registers"),
        }
    };
}

/// One register kind's kernel: `sum_bags` and its column-block reducer, written once and
/// instantiated per kind with the kind's register type, lane count, register budget and
/// intrinsics, each compiled with the kind's `target_feature`.
#[cfg(target_arch = "x86_64")]
macro_rules! register_kernel {
    (
        $(#[$attr:meta])*
        $kind:ident: $feature:literal, $reg:ty, lanes $lanes:literal,
        regs $regs:literal, weighted $regs_weighted:literal,
        $zero:ident, $splat:ident, $load:ident, $mul:ident, $add:ident, $store:ident
    ) => {
        $(#[$attr])*
        mod $kind {
            use std::arch::x86_64::*;

            use super::F32Bags;
            use crate::ids::Id;
            use crate::kernels::cpu::prefetch::RowsAhead;

            /// f32 lanes of one register.
            const LANES: usize = $lanes;
            /// Accumulators per column block without weights (the row's operand is folded into
            /// the add, so no register is needed for it).
            const REGS: usize = $regs;
            /// With weights a register holds the broadcast weight and one the product.
            const REGS_WEIGHTED: usize = $regs_weighted;

            /// Every bag of the chunk, column block after column block.
            ///
            /// # Safety
            /// The CPU has the kind's features; ids are validated (`< table.len() / dim`),
            /// `dim % LANES == 0`, `bounds` has `first_bag + out.len() / dim + 1`
            /// non-decreasing entries at most `ids.len()`, and `weights`, when given, is as
            /// long as `ids`.
            #[target_feature(enable = $feature)]
            pub unsafe fn sum_bags<I: Id>(b: &F32Bags<'_, I>, first_bag: usize, out: &mut [f32]) {
                let dim = b.dim;
                let (start, end) = (b.bounds[first_bag], b.bounds[first_bag + out.len() / dim]);
                let ahead = RowsAhead::<_, false>::new(b.table.as_ptr(), dim * 4, b.ids, start, end);
                let regs = if b.weights.is_some() { REGS_WEIGHTED } else { REGS };
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
                            // The first block asks for the rows ahead (a line per register);
                            // the later ones find them, or the hardware's streamer brings them.
                            ahead: (c0 == 0).then_some(&ahead),
                        };
                        let dst = &mut dst[c0..c0 + r * LANES];
let count = dispatch_block!(
                            (r, b.weights.is_some(), REGS_WEIGHTED) => block::<I>(&blk, dst);
                            1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16
                        );
                        if b.mean && count > 0 {
                            // The generic loop's scale: 1 / count, both rounded to f32 first.
                            // Here, not in `block`, where the u64 -> f64 conversion's
                            // temporaries made the register allocator spill the accumulators
                            // of the whole loop.
                            let inv = 1.0f32 / (count as f64) as f32;
                            dst.iter_mut().for_each(|x| *x *= inv);
                        }
                        c0 += r * LANES;
                    }
                }
            }

            /// One column block `c0..c0 + LANES R` of the bag `ids[lo..hi]`.
            struct Block<'a, 'b, I> {
                bags: &'b F32Bags<'a, I>,
                lo: usize,
                hi: usize,
                c0: usize,
                ahead: Option<&'b RowsAhead<'a, I, false>>,
            }

            /// `dst = sum_k (w_k *) row_k[c0..c0 + LANES R]` over the non-padding ids, in bag
            /// order, with `R` registers held across the bag; returns their count (the mean's
            /// divisor). The first block requests the row `distance` positions ahead, its line
            /// `r` after register `r`'s add (at most `R` lines).
            ///
            /// Never inlined: in its own function the register allocator keeps all `R`
            /// accumulators in registers; inlined into `sum_bags` (many blocks in one body) it
            /// spilled most of them to the stack, a load and a store per register per row.
            ///
            /// # Safety
            /// As `sum_bags`; `dst` has `LANES R` elements and `c0 + LANES R <= dim`.
            #[target_feature(enable = $feature)]
            #[inline(never)]
            unsafe fn block<const R: usize, const WEIGHTED: bool, I: Id>(
                blk: &Block<'_, '_, I>,
                dst: &mut [f32],
            ) -> usize {
                let b = blk.bags;
                let base = b.table.as_ptr().add(blk.c0);
                let (ids, dim) = (b.ids.as_ptr(), b.dim);
                let pad = b.padding.unwrap_or(usize::MAX);
                let ahead = blk.ahead.copied();
                // At most one line per register: on 2 KiB rows (D = 512, 16 registers) asking
                // for all 32 lines was 1.08-1.27x slower than for the first 16 (seventh
                // session); the hardware's streamer follows a row once it is under way.
                let lines = match ahead {
                    Some(a) => a.lines().min(R),
                    None => 0,
                };
                let mut acc = [$zero(); R];
                let mut count = 0usize;
                for pos in blk.lo..blk.hi {
                    let next = match ahead {
                        Some(a) => a.line_start(pos).map(|p| (a, p)),
                        None => None,
                    };
                    let id = (*ids.add(pos)).index();
                    if id == pad {
                        // No adds to spread the requests over: the row ahead in one go.
                        if let Some(a) = ahead {
                            a.before(pos);
                        }
                        continue;
                    }
                    count += 1;
                    let row = base.add(id * dim);
                    let w = match b.weights {
                        Some(ws) if WEIGHTED => $splat(*ws.get_unchecked(pos)),
                        _ => $zero(),
                    };
                    for (r, a) in acc.iter_mut().enumerate() {
                        let x = $load(row.add(r * LANES));
                        // Product and sum rounded separately, as the generic loop does.
                        let x = if WEIGHTED { $mul(x, w) } else { x };
                        *a = $add(*a, x);
                        // Line r of the row ahead after register r's add.
                        if let Some((ahead, p)) = next {
                            if r < lines {
                                ahead.request_line(p, r);
                            }
                        }
                    }
                }
                debug_assert_eq!(dst.len(), R * LANES);
                for (r, a) in acc.iter().enumerate() {
                    $store(dst.as_mut_ptr().add(r * LANES), *a);
                }
                count
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
register_kernel!(
    avx2: "avx2", __m256, lanes 8, regs 16, weighted 8,
    _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_add_ps,
    _mm256_storeu_ps
);

#[cfg(all(target_arch = "x86_64", candle_embed_avx512))]
register_kernel!(
    // Stable since Rust 1.89, newer than the MSRV; compiled only under `candle_embed_avx512`,
    // which build.rs sets for Rust 1.89 and later.
    #[allow(clippy::incompatible_msrv)]
    avx512: "avx512f", __m512, lanes 16, regs 16, weighted 16,
    _mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps, _mm512_mul_ps, _mm512_add_ps,
    _mm512_storeu_ps
);

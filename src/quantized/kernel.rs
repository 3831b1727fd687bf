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
//! count), columns in blocks accumulated in registers (AVX-512 blocks of up to 128 columns, a
//! multiple of 16, [`super::simd512`], where the CPU and the compiler have it; AVX2 blocks of up
//! to 64, a multiple of 8, [`super::simd`]; the portable block loop, their reference in the
//! tests, elsewhere), rows prefetched a row-size-dependent distance ahead
//! ([`crate::kernels::cpu::tuning`], as the f32 bag), outputs past the streaming threshold
//! written with streaming stores ([`crate::kernels::cpu::stream`], as the gather). Ids must be
//! validated and bounds checked by the caller.

use super::format::{Bits, RowLayout};
pub use super::pool_args::{Bounds, PoolArgs};
#[cfg(all(target_arch = "x86_64", candle_embed_avx512))]
use super::regs::Avx512;
#[cfg(target_arch = "x86_64")]
use super::regs::{Avx2, Regs};
#[cfg(target_arch = "x86_64")]
use super::simd;
use crate::dtype::Float;
use crate::ids::Id;
use crate::kernels::cpu::bag::Reduce;
use crate::kernels::cpu::prefetch::RowsAhead;
use crate::kernels::cpu::stream::{self, StreamWidth};
use crate::kernels::cpu::tuning;
use crate::threads;

/// Below this many output elements the pool's dispatch costs more than it saves.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// Dequantize and reduce every bag into `out` (`B * dim` elements, each written once).
pub fn pool<I: Id, D: Float>(args: &PoolArgs<'_, I>, out: &mut [D]) {
    let dim = args.layout.dim;
    if dim == 0 || out.is_empty() {
        return;
    }
    let num_bags = out.len() / dim;
    // Large outputs (a lookup of many ids, above all) are written with streaming stores, by the
    // gather's rule: past the threshold an ordinary store first reads each output line.
    let stream = (std::mem::size_of_val(out) >= tuning::get().stream_min_bytes)
        .then(|| stream::width_for(out.as_ptr().cast(), dim * std::mem::size_of::<D>()))
        .flatten();
    let run = |first_bag: usize, out: &mut [D]| {
        match simd_level() {
            // SAFETY (both): `simd_level` checked the features each clone is compiled for.
            #[cfg(all(target_arch = "x86_64", candle_embed_avx512))]
            AVX512 => unsafe { bags_avx512(args, first_bag, out, stream) },
            #[cfg(target_arch = "x86_64")]
            AVX2 => unsafe { bags_avx2(args, first_bag, out, stream) },
            _ => bags_serial::<I, D, PORTABLE>(args, first_bag, out, stream),
        }
        // The weakly ordered streaming stores, visible before the chunk is reported done.
        if stream.is_some() {
            stream::fence();
        }
    };
    if threads::get_num_threads() <= 1 || args.ids.len().max(num_bags) * dim < PARALLEL_MIN_ELEMS {
        return run(0, out);
    }
    let chunk = threads::chunk_for(num_bags, 16);
    threads::for_each_chunk_mut(out, chunk * dim, |c, out| run(c * chunk, out));
}

/// The register kernels a block can use: [`PORTABLE`] (the block loop in a stack array),
/// [`AVX2`] (eight `__m256` accumulators: blocks of 8-64 columns), [`AVX512`] (eight `__m512`:
/// blocks of 16-128 columns, so a 128-column row in one pass over its bag).
const PORTABLE: u8 = 0;
const AVX2: u8 = 1;
const AVX512: u8 = 2;

/// The best register kernel this CPU (and compiler) has.
fn simd_level() -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c");
        #[cfg(candle_embed_avx512)]
        if avx2 && std::is_x86_feature_detected!("avx512f") {
            return AVX512;
        }
        if avx2 {
            return AVX2;
        }
    }
    PORTABLE
}

/// `bags_serial` at a register level, compiled with that level's CPU features (the callers
/// check them): one entry point per level.
macro_rules! bags_with_features {
    ($(#[$cfg:meta])* $name:ident, $features:literal, $level:ident) => {
        $(#[$cfg])*
        #[target_feature(enable = $features)]
        unsafe fn $name<I: Id, D: Float>(
            args: &PoolArgs<'_, I>,
            first_bag: usize,
            out: &mut [D],
            stream: Option<StreamWidth>,
        ) {
            bags_serial::<I, D, $level>(args, first_bag, out, stream)
        }
    };
}

bags_with_features!(
    #[cfg(target_arch = "x86_64")]
    bags_avx2,
    "avx2,fma,f16c",
    AVX2
);
bags_with_features!(
    #[cfg(all(target_arch = "x86_64", candle_embed_avx512))]
    bags_avx512,
    "avx2,fma,f16c,avx512f",
    AVX512
);

/// Columns reduced per pass over a bag: 64 f32 accumulators, eight AVX registers, leaving the
/// other eight for the codes, the scale and the bias (FBGEMM's generated kernels block the row
/// the same way). A bag's rows, read once for the first block, are in L1 for the next ones.
const BLOCK: usize = 64;

/// The AVX-512 kernel's block: eight `__m512` accumulators (of 32 registers).
const WIDE_BLOCK: usize = 128;

/// The width of the next block when `rest` columns of the row are left: with AVX-512 a whole
/// [`WIDE_BLOCK`], or a rest that is a multiple of 16 (one block), otherwise (and below AVX-512)
/// [`BLOCK`]-column blocks; every block starts a multiple of 64 columns into the row.
fn block_width(level: u8, rest: usize) -> usize {
    match level {
        AVX512 if rest >= WIDE_BLOCK => WIDE_BLOCK,
        AVX512 if rest % 16 == 0 => rest,
        _ => rest.min(BLOCK),
    }
}

/// The codes of columns `c0..c0 + codes.len()` of a packed row as bytes, one per column (the
/// 4-bit row unpacked: element `2i` is the low nibble of byte `i`, `2i + 1` the high one).
#[inline(always)]
fn codes_of<'a>(bits: Bits, row: &'a [u8], c0: usize, codes: &'a mut [u8]) -> &'a [u8] {
    match bits {
        Bits::Eight => &row[c0..c0 + codes.len()],
        Bits::Four => {
            for (pair, &q) in codes.chunks_exact_mut(2).zip(&row[c0 / 2..]) {
                pair[0] = q & 0x0F;
                pair[1] = q >> 4;
            }
            codes
        }
    }
}

/// One block of columns of one bag: the ids `lo..hi`, `acc` the block's accumulators (its
/// length is the block width; a fixed-size array's here, so they stay in registers).
struct Block<'a, 'b, I> {
    args: &'b PoolArgs<'a, I>,
    c0: usize,
    lo: usize,
    hi: usize,
}

impl<I: Id> Block<'_, '_, I> {
    /// Reduce the bag's rows into `acc` (sum / mean: `acc_j = fma(s, code_j, acc_j + b)` with
    /// `s`, `b` the row's scale and bias times its weight; max: `acc_j = max(acc_j, fma(s,
    /// code_j, b))`, strictly greater replaces so ties keep the first). `pf(pos)` runs before
    /// the id at `pos` is read. Returns the count of non-padding ids.
    #[inline(always)]
    fn reduce(&self, acc: &mut [f32], pf: impl Fn(usize)) -> usize {
        let layout = self.args.layout;
        let mut buf = [0u8; BLOCK];
        let max = self.args.mode == Reduce::Max;
        acc.fill(if max { f32::NEG_INFINITY } else { 0.0 });
        self.for_rows(layout, pf, |row, weight| {
            let (mut s, mut b) = layout.scale_bias(row);
            let codes = codes_of(layout.bits, row, self.c0, &mut buf[..acc.len()]);
            if max {
                for (a, &q) in acc.iter_mut().zip(codes) {
                    let x = f32::from(q).mul_add(s, b);
                    if x > *a {
                        *a = x;
                    }
                }
                return;
            }
            if let Some(w) = weight {
                (s, b) = (w * s, w * b);
            }
            for (a, &q) in acc.iter_mut().zip(codes) {
                *a = f32::from(q).mul_add(s, *a + b);
            }
        })
    }

    /// The bag's rows in id order, padding left out: `f(row, weight)` with the packed row
    /// (`layout`'s width) and the id's weight (`None`: unweighted); `pf(pos)` runs before the
    /// id at `pos` is read. Returns the count of rows visited.
    #[inline(always)]
    fn for_rows(
        &self,
        layout: RowLayout,
        pf: impl Fn(usize),
        mut f: impl FnMut(&[u8], Option<f32>),
    ) -> usize {
        let PoolArgs {
            packed,
            ids,
            weights,
            padding,
            ..
        } = *self.args;
        let width = layout.row_bytes();
        let mut count = 0;
        for pos in self.lo..self.hi {
            pf(pos);
            let id = ids[pos].index();
            if Some(id) == padding {
                continue;
            }
            count += 1;
            // Not `weights.map(..)`: a closure call (seen with `map_or`) can stay a call in the
            // AVX2 instances, and a call spills every accumulator register.
            #[allow(clippy::manual_map)]
            let weight = match weights {
                Some(ws) => Some(ws[pos]),
                None => None,
            };
            f(&packed[id * width..(id + 1) * width], weight);
        }
        count
    }

    /// [`Self::reduce`] with the `G::LANES * V` accumulators in registers of kind `G`
    /// ([`super::simd`], [`super::simd512`]: the same operations lane by lane, so the same bits),
    /// stored to `out` (`G::LANES * V` elements). Inlined into a caller with `G`'s features.
    ///
    /// # Safety
    /// The CPU has `G`'s features; `self.c0 + G::LANES * V <= dim`.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn reduce_regs<G: Regs, const V: usize, const FOUR: bool>(
        &self,
        out: &mut [f32],
        pf: impl Fn(usize),
    ) -> usize {
        // The code width as a constant: each instance reads its rows without a branch.
        let layout = RowLayout {
            bits: if FOUR { Bits::Four } else { Bits::Eight },
            ..self.args.layout
        };
        let max = self.args.mode == Reduce::Max;
        // SAFETY (every call below): `G`'s features are there and `c0 + LANES * V <= dim`.
        let mut acc = [unsafe { G::splat(if max { f32::NEG_INFINITY } else { 0.0 }) }; V];
        let count = self.for_rows(layout, pf, |row, weight| {
            let (s, b) = unsafe { simd::scale_bias(layout, row) };
            let sb = match weight {
                Some(w) if !max => (w * s, w * b),
                _ => (s, b),
            };
            match max {
                true => unsafe { G::add_row::<V, true>(&mut acc, layout.bits, row, self.c0, sb) },
                false => unsafe { G::add_row::<V, false>(&mut acc, layout.bits, row, self.c0, sb) },
            }
        });
        assert_eq!(out.len(), G::LANES * V);
        for (v, a) in acc.iter().enumerate() {
            // SAFETY: `out` holds `LANES * V` elements (asserted).
            unsafe { G::store(out.as_mut_ptr().add(G::LANES * v), *a) };
        }
        count
    }

    /// [`Self::reduce_regs`] for a block of `out.len()` columns (a multiple of `G::LANES`, at
    /// most eight registers), the register count a constant.
    ///
    /// # Safety
    /// As [`Self::reduce_regs`].
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn reduce_in<G: Regs>(&self, out: &mut [f32], pf: impl Fn(usize)) -> usize {
        // One instance per register count and code width (both constants inside).
        macro_rules! by_width {
            ($four:literal) => {
                match out.len() / G::LANES {
                    8 => self.reduce_regs::<G, 8, $four>(out, pf),
                    7 => self.reduce_regs::<G, 7, $four>(out, pf),
                    6 => self.reduce_regs::<G, 6, $four>(out, pf),
                    5 => self.reduce_regs::<G, 5, $four>(out, pf),
                    4 => self.reduce_regs::<G, 4, $four>(out, pf),
                    3 => self.reduce_regs::<G, 3, $four>(out, pf),
                    2 => self.reduce_regs::<G, 2, $four>(out, pf),
                    _ => self.reduce_regs::<G, 1, $four>(out, pf),
                }
            };
        }
        // SAFETY (every arm): the caller's contract, `out.len() == LANES * V`.
        unsafe {
            match self.args.layout.bits {
                Bits::Eight => by_width!(false),
                Bits::Four => by_width!(true),
            }
        }
    }

    /// A block of up to [`BLOCK`] columns (a multiple of 8) in AVX2 registers.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; the block ends inside the row.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn reduce_simd(&self, out: &mut [f32], pf: impl Fn(usize)) -> usize {
        // SAFETY: the features are this function's; the block is the caller's.
        unsafe { self.reduce_in::<Avx2>(out, pf) }
    }

    /// A block of up to [`WIDE_BLOCK`] columns (a multiple of 16) in AVX-512 registers.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA, F16C and AVX-512F; the block ends inside the row.
    #[cfg(all(target_arch = "x86_64", candle_embed_avx512))]
    #[target_feature(enable = "avx2,fma,f16c,avx512f")]
    unsafe fn reduce_simd512(&self, out: &mut [f32], pf: impl Fn(usize)) -> usize {
        // SAFETY: the features are this function's; the block is the caller's.
        unsafe { self.reduce_in::<Avx512>(out, pf) }
    }

    /// [`Self::reduce`] into a local `[f32; W]` (every length a constant once inlined), copied
    /// to `out`.
    #[inline(always)]
    fn reduce_fixed<const W: usize>(&self, out: &mut [f32], pf: impl Fn(usize)) -> usize {
        let mut acc = [0f32; W];
        let count = self.reduce(&mut acc, pf);
        out.copy_from_slice(&acc);
        count
    }
}

/// Bags `first_bag..first_bag + out.len() / dim`, one after the other, with the register
/// kernel `LEVEL` (only inside [`bags_avx2`] / [`bags_avx512`], which have the features):
/// [`AVX512`] reduces blocks of up to [`WIDE_BLOCK`] columns whose width is a multiple of 16,
/// [`AVX2`] blocks of up to [`BLOCK`] whose width is a multiple of 8, the portable loop the
/// rest. `stream`: write each block with streaming stores of that width (`out` and its rows
/// aligned to it, [`stream::width_for`]; the caller fences).
#[inline(always)]
fn bags_serial<I: Id, D: Float, const LEVEL: u8>(
    args: &PoolArgs<'_, I>,
    first_bag: usize,
    out: &mut [D],
    stream: Option<StreamWidth>,
) {
    let PoolArgs {
        packed,
        layout,
        ids,
        bounds,
        mode,
        ..
    } = *args;
    let (dim, width) = (layout.dim, layout.row_bytes());
    let (start, end) = (
        bounds.of(first_bag).0,
        bounds.of(first_bag + out.len() / dim - 1).1,
    );
    let ahead = RowsAhead::<_, true>::new(packed.as_ptr(), width, ids, start, end);
    let mut tile = [0f32; WIDE_BLOCK];
    // The streamed blocks' rounded values (reused: no zero-fill per block).
    let mut rounded = [D::zero(); WIDE_BLOCK];
    for (b, dst) in out.chunks_exact_mut(dim).enumerate() {
        let (lo, hi) = bounds.of(first_bag + b);
        let mut next = 0;
        while next < dim {
            let c0 = next;
            let acc = &mut tile[..block_width(LEVEL, dim - c0)];
            next += acc.len();
            let block = Block { args, c0, lo, hi };
            let pf = |pos: usize| {
                if c0 == 0 {
                    ahead.before(pos);
                }
            };
            // SAFETY (the register arms): `LEVEL` is only above `PORTABLE` inside `bags_avx2` /
            // `bags_avx512` (the features are checked), and each block ends inside the row.
            let count = match acc.len() {
                #[cfg(all(target_arch = "x86_64", candle_embed_avx512))]
                w if LEVEL == AVX512 && w % 16 == 0 => unsafe { block.reduce_simd512(acc, pf) },
                #[cfg(target_arch = "x86_64")]
                w if LEVEL >= AVX2 && w % 8 == 0 => unsafe { block.reduce_simd(acc, pf) },
                BLOCK => block.reduce_fixed::<BLOCK>(acc, pf),
                _ => block.reduce(acc, pf),
            };
            let dst = &mut dst[c0..next];
            if count == 0 {
                dst.fill(D::of_f64(0.0));
                continue;
            }
            // FBGEMM's mean: one f32 reciprocal, then a product (exact for the other modes).
            if mode == Reduce::Mean {
                let factor = 1.0 / count as f32;
                acc.iter_mut().for_each(|a| *a *= factor);
            }
            match stream {
                None => D::from_f32_slice(acc, dst),
                Some(w) => {
                    let rounded = &mut rounded[..dst.len()];
                    D::from_f32_slice(acc, rounded);
                    // SAFETY: distinct buffers of `size_of_val(dst)` bytes; `dst` starts `c0`
                    // (a multiple of 64) elements into an aligned row, and its size is a whole
                    // number of 64-element blocks (at least 128 bytes: a multiple of `w`) or
                    // the row's minus such blocks, so a multiple of `w` too.
                    unsafe {
                        let bytes = std::mem::size_of_val(dst);
                        stream::copy_row(rounded.as_ptr().cast(), dst.as_mut_ptr().cast(), bytes, w)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;

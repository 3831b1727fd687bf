//! What a scan reads: [`Rows`], a table of `n` rows of `D` that can multiply query vectors with
//! a range of its rows. A float [`Table`] does it by `gemm` (several queries) or by a fused dot
//! kernel (gensim's usual one query vector); a quantized table (int8 / int4,
//! `crate::quantized::attend`) by dotting the queries with its codes.

use std::any::TypeId;
use std::ops::Range;

use super::Table;
use crate::dtype::{Accumulator, Float};
use crate::kernels::cpu::linalg::{gemm_with, Threads};
use crate::kernels::cpu::prefetch::prefetch_bytes;

/// Up to this many query vectors, products use the fused dot kernel; more use `gemm` (which
/// reads each row once for a whole block of queries). One: gensim's queries are one (mean)
/// vector, and several vectors keep `gemm`'s summation order (3CosMul amplifies any change of
/// rounding near a zero denominator).
const FEW_QUERIES: usize = 1;

/// A table a similarity scan reads: `len()` rows of `dim()`, each row's Euclidean norm, and the
/// products of query vectors with a range of rows.
pub trait Rows: Sync {
    /// The type of queries, norms and scores.
    type Acc: Accumulator;
    /// Number of rows.
    fn len(&self) -> usize;
    /// True when there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The row length `D`.
    fn dim(&self) -> usize;
    /// `|v_i|` of every row.
    fn norms(&self) -> &[Self::Acc];
    /// `out.values[j * nr + (i - rows.start)] = q_j . v_i` for the `nq = q.len() / D` query
    /// vectors `q` (row-major) and the `nr` rows of `rows`, on the calling thread.
    fn products(&self, q: &[Self::Acc], rows: Range<usize>, out: &mut Products<Self::Acc>);
}

/// Where [`Rows::products`] writes, reused from tile to tile by one thread.
#[derive(Debug, Default)]
pub struct Products<A> {
    /// The products, `nq x nr` row-major at the front (at least that long).
    pub values: Vec<A>,
    /// The table's scratch space (e.g. a tile widened from 16 bits, a query's sum).
    pub scratch: Vec<A>,
}

/// A tile's rows as the accumulation type: the table itself when it already is (f32, f64),
/// else widened into `scratch` (f16, bf16: exact).
fn rows_as_acc<'s, T: Float>(rows: &'s [T], scratch: &'s mut Vec<T::Acc>) -> &'s [T::Acc] {
    if TypeId::of::<T>() == TypeId::of::<T::Acc>() {
        // SAFETY: T and T::Acc are the same type (checked just above), so the slice is
        // reinterpreted as itself.
        return unsafe { std::slice::from_raw_parts(rows.as_ptr() as *const T::Acc, rows.len()) };
    }
    scratch.clear();
    scratch.extend(rows.iter().map(|v| v.to_acc()));
    scratch
}

impl<T: Float> Rows for Table<'_, T> {
    type Acc = T::Acc;

    fn len(&self) -> usize {
        self.norms.len()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn norms(&self) -> &[T::Acc] {
        self.norms
    }

    fn products(&self, q: &[T::Acc], range: Range<usize>, out: &mut Products<T::Acc>) {
        let (dim, nr) = (self.dim, range.len());
        let nq = q.len() / dim.max(1);
        let Products { values, scratch } = out;
        let rows = rows_as_acc(&self.rows[range.start * dim..range.end * dim], scratch);
        let values = &mut values[..nq * nr];
        if nq <= FEW_QUERIES {
            for (q, line) in q.chunks_exact(dim.max(1)).zip(values.chunks_exact_mut(nr)) {
                dots(q, rows, line);
            }
            return;
        }
        // values (nq x nr) = q (nq x D) @ rows^T (D x nr)
        gemm_with(
            Threads::Caller,
            (nq, nr, dim),
            values,
            q,
            (dim, 1),
            rows,
            (1, dim),
        );
    }
}

/// Lanes of the dot kernel's accumulators: two AVX2 registers of f32 per row, so the four rows
/// in flight keep eight independent sums (enough to hide the add latency).
const LANES: usize = 16;

/// `out[i] = q . row_i` for the rows of `rows` (`out.len()` rows of `q.len()`). Four rows at a
/// time share each load of `q`; each row sums in `LANES` lanes (element `j` in lane `j %
/// LANES`, the tail's products first), then the lanes pairwise: the same order for every row
/// whatever the thread, tile or instruction set (each clone below is the same code, compiled
/// for wider registers; no fused multiply-add, so every clone rounds alike).
pub(crate) fn dots<A: Accumulator>(q: &[A], rows: &[A], out: &mut [A]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[cfg(candle_embed_avx512)]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the clone is compiled for.
            return unsafe { dots_avx512(q, rows, out) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the clone is compiled for.
            return unsafe { dots_avx2(q, rows, out) };
        }
    }
    dots_serial(q, rows, out)
}

/// One 512-bit register holds a row's 16 lanes of f32: half the AVX2 clone's loads and
/// arithmetic per row, which lets one core keep up with its share of the memory bandwidth
/// (on a loaded 2-core AVX-512 machine: 0.88x NumPy's `sgemv` time against 0.99x for the AVX2
/// clone, one thread). Compiled only where the feature is stable (Rust 1.89; see build.rs).
#[cfg(all(target_arch = "x86_64", candle_embed_avx512))]
#[target_feature(enable = "avx512f")]
unsafe fn dots_avx512<A: Accumulator>(q: &[A], rows: &[A], out: &mut [A]) {
    dots_serial(q, rows, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2<A: Accumulator>(q: &[A], rows: &[A], out: &mut [A]) {
    dots_serial(q, rows, out)
}

/// How far ahead of the row being summed the kernel asks for memory, in blocks of four rows.
/// The scan is memory-bound: each `LANES`-chunk of each row requests the same chunk of the
/// row `AHEAD` blocks later, so the requests are spread over the loop (one per line read, as
/// OpenBLAS's `sgemv_t` kernels do) rather than issued in a burst at the start of each block,
/// which stalls the loads behind the burst. One to four blocks ahead (4.8 to 19 KB for 300 f32
/// columns) measured alike, 384 B to 2.4 KB slower; the burst version took 1.10x NumPy's
/// `sgemv` time (one thread), this one 0.88x.
const AHEAD: usize = 2;

#[inline(always)]
fn dots_serial<A: Accumulator>(q: &[A], rows: &[A], out: &mut [A]) {
    let dim = q.len();
    if dim == 0 {
        out.fill(A::zero());
        return;
    }
    let ahead = AHEAD * 4 * dim;
    // Fixed-size chunks: no bounds checks in the loop, so the lanes vectorise.
    let (qb, qt) = lanes(q);
    let mut blocks = rows.chunks_exact(4 * dim);
    let mut outs = out.chunks_exact_mut(4);
    for (block, o) in (&mut blocks).zip(&mut outs) {
        let (r0, rest) = block.split_at(dim);
        let (r1, rest) = rest.split_at(dim);
        let (r2, r3) = rest.split_at(dim);
        let ((b0, t0), (b1, t1)) = (lanes(r0), lanes(r1));
        let ((b2, t2), (b3, t3)) = (lanes(r2), lanes(r3));
        let (mut a0, mut a1) = (tail(qt, t0), tail(qt, t1));
        let (mut a2, mut a3) = (tail(qt, t2), tail(qt, t3));
        for ((((qs, x0), x1), x2), x3) in qb.iter().zip(b0).zip(b1).zip(b2).zip(b3) {
            for x in [x0, x1, x2, x3] {
                prefetch_bytes(x.as_ptr().wrapping_add(ahead), 1);
            }
            for l in 0..LANES {
                a0[l] += qs[l] * x0[l];
                a1[l] += qs[l] * x1[l];
                a2[l] += qs[l] * x2[l];
                a3[l] += qs[l] * x3[l];
            }
        }
        // The rows' last lines (the tails, and a chunk straddling two lines).
        for r in 1..=4 {
            prefetch_bytes(block.as_ptr().wrapping_add(ahead + r * dim - 1), 1);
        }
        for (o, a) in o.iter_mut().zip([a0, a1, a2, a3]) {
            *o = reduce(&a);
        }
    }
    for (row, o) in blocks
        .remainder()
        .chunks_exact(dim)
        .zip(outs.into_remainder())
    {
        let (b, t) = lanes(row);
        let mut a = tail(qt, t);
        for (qs, xs) in qb.iter().zip(b) {
            for l in 0..LANES {
                a[l] += qs[l] * xs[l];
            }
        }
        *o = reduce(&a);
    }
}

/// `v` as whole chunks of `LANES` and the rest (what `slice::as_chunks` does, stable only
/// since Rust 1.88, above this crate's MSRV).
#[inline(always)]
fn lanes<A>(v: &[A]) -> (&[[A; LANES]], &[A]) {
    let n = v.len() / LANES;
    let (body, rest) = v.split_at(n * LANES);
    // SAFETY: `body` holds exactly `n * LANES` elements, which are `n` arrays of `LANES` (an
    // array has no padding and its element's alignment), borrowed for `v`'s lifetime.
    let chunks = unsafe { std::slice::from_raw_parts(body.as_ptr() as *const [A; LANES], n) };
    (chunks, rest)
}

/// Lanes holding the products of the last `dim % LANES` elements (`q`'s and `row`'s tails), one
/// per lane, the other lanes zero.
#[inline(always)]
fn tail<A: Accumulator>(q: &[A], row: &[A]) -> [A; LANES] {
    let mut lanes = [A::zero(); LANES];
    for (a, (x, y)) in lanes.iter_mut().zip(q.iter().zip(row)) {
        *a = *x * *y;
    }
    lanes
}

/// The lanes summed pairwise (lane `i` with lane `i + width`, halving the width).
#[inline(always)]
fn reduce<A: Accumulator>(lanes: &[A; LANES]) -> A {
    let mut l = *lanes;
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            l[i] += l[i + width];
        }
    }
    l[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeded values in [-1, 1) (the crate's generator).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = crate::rng::Rng::new(seed, 0);
        (0..n).map(|_| 2.0 * rng.uniform() - 1.0).collect()
    }

    /// Every clone this CPU can run gives the portable code's bits, and all are within float
    /// tolerance of the float64 dot products (row counts that leave a partial block of four,
    /// dims with and without a tail of `LANES`).
    fn check<A: Accumulator + std::fmt::Debug>(tol: f64) {
        for dim in [1, 5, 16, 17, 31, 300] {
            for n in [0, 1, 3, 4, 7, 13] {
                let (q64, r64) = (values(dim, 1), values(n * dim, 2));
                let q: Vec<A> = q64.iter().map(|&v| A::of_f64(v)).collect();
                let rows: Vec<A> = r64.iter().map(|&v| A::of_f64(v)).collect();
                let mut portable = vec![A::zero(); n];
                dots_serial(&q, &rows, &mut portable);
                let mut best = vec![A::zero(); n];
                dots(&q, &rows, &mut best);
                assert_eq!(best, portable, "dim {dim}, {n} rows");
                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    let mut avx2 = vec![A::zero(); n];
                    // SAFETY: the CPU supports the clone's features (checked just above).
                    unsafe { dots_avx2(&q, &rows, &mut avx2) };
                    assert_eq!(avx2, portable, "AVX2, dim {dim}, {n} rows");
                }
                for (i, got) in portable.iter().enumerate() {
                    let row = &r64[i * dim..(i + 1) * dim];
                    let want: f64 = row.iter().zip(&q64).map(|(a, b)| a * b).sum();
                    let err = (<A as Accumulator>::to_f64(*got) - want).abs();
                    assert!(
                        err <= tol * dim as f64,
                        "dim {dim} row {i}: {got:?} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_clone_gives_the_portable_bits_f32() {
        check::<f32>(1e-6);
    }

    #[test]
    fn every_clone_gives_the_portable_bits_f64() {
        check::<f64>(1e-15);
    }
}

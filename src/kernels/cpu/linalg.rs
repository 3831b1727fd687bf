//! Dense products on slices: `gemm` (the `gemm` crate, candle's CPU matmul) with any strides,
//! on the crate's pool or on the calling thread alone, and a fixed-order dot product.
//!
//! Shared by weight tying (`techniques::attend`) and similarity queries (`similarity`).

use num_traits::Zero;

use crate::dtype::Float;
use crate::threads;

/// How a product may use threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Threads {
    /// The crate's pool (the product is one large call).
    Pool,
    /// The calling thread only (the product is one tile of work already running in parallel;
    /// the result then never depends on the pool's size).
    Caller,
}

/// `dst (m x n) = lhs (m x k) @ rhs (k x n)`, any strides (in elements), `dst` row-major,
/// on the crate's pool. `T` is f16, f32 or f64 (the `gemm` crate's kernels).
///
/// Panics if a strided extent falls outside its slice (checked before any unsafe call).
pub(crate) fn gemm_strided<T: Float>(
    shape: (usize, usize, usize),
    dst: &mut [T],
    lhs: &[T],
    lhs_strides: (usize, usize),
    rhs: &[T],
    rhs_strides: (usize, usize),
) {
    gemm_with(
        Threads::Pool,
        shape,
        dst,
        lhs,
        lhs_strides,
        rhs,
        rhs_strides,
    )
}

/// [`gemm_strided`] with the threading chosen by the caller, for any element type of the
/// `gemm` crate's kernels (f16, f32, f64: table types and accumulation types alike).
pub(crate) fn gemm_with<T: num_traits::Float + Send + Sync + 'static>(
    threading: Threads,
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    lhs: &[T],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[T],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    assert_eq!(dst.len(), m * n);
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    if m > 0 && n > 0 && k > 0 {
        assert!(
            last(m, k, lhs_rs, lhs_cs) < lhs.len(),
            "gemm: lhs too short"
        );
        assert!(
            last(k, n, rhs_rs, rhs_cs) < rhs.len(),
            "gemm: rhs too short"
        );
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst.fill(T::zero());
        return;
    }
    let mut run = |par: gemm::Parallelism| {
        // SAFETY: the extents were checked above; dst (row-major m x n, exclusive borrow) does
        // not alias the shared borrows lhs / rhs; T is f16, f32 or f64 (gemm's kernels).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                false,
                lhs.as_ptr(),
                lhs_cs as isize,
                lhs_rs as isize,
                rhs.as_ptr(),
                rhs_cs as isize,
                rhs_rs as isize,
                T::zero(),
                T::one(),
                false,
                false,
                false,
                par,
            )
        }
    };
    match threading {
        Threads::Caller => run(gemm::Parallelism::None),
        Threads::Pool => threads::install(|| {
            run(if rayon::current_num_threads() > 1 {
                gemm::Parallelism::Rayon(0)
            } else {
                gemm::Parallelism::None
            })
        }),
    }
}

/// Dot product accumulated in `T::Acc` over 16 lanes (vectorises; fixed order).
#[inline]
pub(crate) fn dot<T: Float>(a: &[T], b: &[T]) -> T::Acc {
    const L: usize = 16;
    let mut acc = [T::Acc::zero(); L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..L {
            acc[l] += x[l].to_acc() * y[l].to_acc();
        }
    }
    let mut s = T::Acc::zero();
    for (x, y) in ra.iter().zip(rb) {
        s += x.to_acc() * y.to_acc();
    }
    acc.iter().fold(s, |t, &v| t + v)
}

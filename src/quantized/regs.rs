//! The register kinds the packed-row kernel's blocks run on ([`super::kernel`]): AVX2's eight
//! f32 lanes ([`super::simd`]) and, where built, AVX-512's sixteen ([`super::simd512`]). One
//! block reducer is written once over [`Regs`]; each kind's `#[target_feature]` entry point in
//! the kernel instantiates it, so the operations are inlined with that kind's features.
//!
//! Every function is `#[inline(always)]` and not a `target_feature` function itself: it is only
//! called (inlined) inside a caller that has the kind's features, where the intrinsics inline
//! too. A call left in the row loop would spill every accumulator register.

use std::arch::x86_64::{__m256, _mm256_set1_ps, _mm256_storeu_ps};

use super::format::Bits;

/// A register of `LANES` f32 lanes holding accumulators of a block's columns.
pub trait Regs {
    /// The register type.
    type Reg: Copy;
    /// f32 lanes a register.
    const LANES: usize;

    /// `x` in every lane.
    ///
    /// # Safety
    /// The CPU has the kind's features (the caller's `target_feature` context).
    unsafe fn splat(x: f32) -> Self::Reg;

    /// One row into the `LANES * V` accumulators from column `c0` (the kind's `add_row`).
    ///
    /// # Safety
    /// As [`Regs::splat`]; `c0 + LANES * V <= dim` of the row's layout.
    unsafe fn add_row<const V: usize, const MAX: bool>(
        acc: &mut [Self::Reg; V],
        bits: Bits,
        row: &[u8],
        c0: usize,
        sb: (f32, f32),
    );

    /// Store `r` to `LANES` f32 at `out`.
    ///
    /// # Safety
    /// As [`Regs::splat`]; `out` is valid for `LANES` writes.
    unsafe fn store(out: *mut f32, r: Self::Reg);
}

/// `impl Regs` for a kind from its register type, lane count, splat and store intrinsics and
/// its module's `add_row`.
macro_rules! impl_regs {
    ($(#[$attr:meta])* $kind:ident, $reg:ty, $lanes:literal, $splat:path, $store:path, $($add_row:ident)::+) => {
        $(#[$attr])*
        impl Regs for $kind {
            type Reg = $reg;
            const LANES: usize = $lanes;

            #[inline(always)]
            unsafe fn splat(x: f32) -> $reg {
                // SAFETY: the caller's contract (the kind's features).
                unsafe { $splat(x) }
            }

            #[inline(always)]
            unsafe fn add_row<const V: usize, const MAX: bool>(
                acc: &mut [$reg; V],
                bits: Bits,
                row: &[u8],
                c0: usize,
                sb: (f32, f32),
            ) {
                // SAFETY: the caller's contract.
                unsafe { $($add_row)::+::<V, MAX>(acc, bits, row, c0, sb) }
            }

            #[inline(always)]
            unsafe fn store(out: *mut f32, r: $reg) {
                // SAFETY: the caller's contract.
                unsafe { $store(out, r) }
            }
        }
    };
}

/// AVX2 + FMA + F16C: eight lanes.
pub struct Avx2;

impl_regs!(
    Avx2,
    __m256,
    8,
    _mm256_set1_ps,
    _mm256_storeu_ps,
    super::simd::add_row
);

/// AVX-512F: sixteen lanes (Rust >= 1.89, see build.rs).
#[cfg(candle_embed_avx512)]
pub struct Avx512;

impl_regs!(
    #[cfg(candle_embed_avx512)]
    #[allow(clippy::incompatible_msrv)] // only built with Rust >= 1.89 (build.rs)
    Avx512,
    std::arch::x86_64::__m512,
    16,
    std::arch::x86_64::_mm512_set1_ps,
    std::arch::x86_64::_mm512_storeu_ps,
    super::simd512::add_row
);

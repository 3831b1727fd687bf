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

/// AVX2 + FMA + F16C: eight lanes.
pub struct Avx2;

impl Regs for Avx2 {
    type Reg = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        // SAFETY: the caller's contract (AVX).
        unsafe { _mm256_set1_ps(x) }
    }

    #[inline(always)]
    unsafe fn add_row<const V: usize, const MAX: bool>(
        acc: &mut [__m256; V],
        bits: Bits,
        row: &[u8],
        c0: usize,
        sb: (f32, f32),
    ) {
        // SAFETY: the caller's contract.
        unsafe { super::simd::add_row::<V, MAX>(acc, bits, row, c0, sb) }
    }

    #[inline(always)]
    unsafe fn store(out: *mut f32, r: __m256) {
        // SAFETY: the caller's contract.
        unsafe { _mm256_storeu_ps(out, r) }
    }
}

/// AVX-512F: sixteen lanes (Rust >= 1.89, see build.rs).
#[cfg(candle_embed_avx512)]
pub struct Avx512;

#[cfg(candle_embed_avx512)]
#[allow(clippy::incompatible_msrv)] // only built with Rust >= 1.89 (build.rs)
impl Regs for Avx512 {
    type Reg = std::arch::x86_64::__m512;
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self::Reg {
        // SAFETY: the caller's contract (AVX-512F).
        unsafe { std::arch::x86_64::_mm512_set1_ps(x) }
    }

    #[inline(always)]
    unsafe fn add_row<const V: usize, const MAX: bool>(
        acc: &mut [Self::Reg; V],
        bits: Bits,
        row: &[u8],
        c0: usize,
        sb: (f32, f32),
    ) {
        // SAFETY: the caller's contract.
        unsafe { super::simd512::add_row::<V, MAX>(acc, bits, row, c0, sb) }
    }

    #[inline(always)]
    unsafe fn store(out: *mut f32, r: Self::Reg) {
        // SAFETY: the caller's contract.
        unsafe { std::arch::x86_64::_mm512_storeu_ps(out, r) }
    }
}

//! AVX-512 pieces of the packed-row kernel ([`super::kernel`]): [`super::simd`]'s steps sixteen
//! columns a register, so a block of up to 128 columns keeps its accumulators in eight `__m512`
//! registers and a 128-wide row (D=128, the common width) is reduced in one pass over its bag
//! instead of two. Lane by lane the operations are the AVX2 steps' (`fma(code, s, acc + b)`;
//! max: `fma(code, s, b)` replacing the running maximum only when strictly greater), so every
//! path gives the same bits.
//!
//! Compiled only where the compiler has the stable `avx512f` target feature (Rust 1.89+, the
//! `candle_embed_avx512` cfg from build.rs). Every function needs a CPU with AVX-512F (the
//! caller checks once; F16C for the 4-bit scale and bias, which every AVX-512 CPU has) and
//! columns `col..col + 16` inside the row's `dim`.

// These intrinsics are stable since Rust 1.89, newer than the MSRV; the module is compiled only
// under `candle_embed_avx512`, which build.rs sets for Rust 1.89 and later.
#![allow(clippy::incompatible_msrv)]

use std::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_cvtepi32_ps, _mm512_cvtepu8_epi32, _mm512_fmadd_ps,
    _mm512_max_ps, _mm512_set1_ps, _mm_and_si128, _mm_loadl_epi64, _mm_loadu_si128, _mm_set1_epi8,
    _mm_srli_epi16, _mm_unpacklo_epi8,
};

use super::format::Bits;

/// Codes of columns `col..col + 16` of `row` as sixteen f32 lanes (4 bits: element `2i` is the
/// low nibble of byte `i`, `2i + 1` the high one).
///
/// # Safety
/// AVX-512F is available; `col + 16 <= dim` of the row's layout and `row` is a whole packed row.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn codes16(bits: Bits, row: &[u8], col: usize) -> __m512 {
    let bytes = match bits {
        Bits::Eight => {
            debug_assert!(col + 16 <= row.len());
            // SAFETY: bytes `col..col + 16` are codes of this row (caller's contract).
            unsafe { _mm_loadu_si128(row.as_ptr().add(col).cast()) }
        }
        Bits::Four => {
            debug_assert!(col / 2 + 8 <= row.len());
            // SAFETY: bytes `col / 2..col / 2 + 8` hold the codes of columns `col..col + 16`.
            let x = unsafe { _mm_loadl_epi64(row.as_ptr().add(col / 2).cast()) };
            let low = _mm_and_si128(x, _mm_set1_epi8(0x0F));
            let high = _mm_and_si128(_mm_srli_epi16::<4>(x), _mm_set1_epi8(0x0F));
            _mm_unpacklo_epi8(low, high)
        }
    };
    _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes))
}

/// One row into a block of `16 * V` columns from `c0`: [`super::simd::add_row`]'s step with
/// sixteen lanes a register (`MAX`: `vmaxps x, acc`, ties keep the first).
///
/// # Safety
/// AVX-512F is available; `c0 + 16 * V <= dim` of the row's layout.
#[inline]
#[target_feature(enable = "avx512f")]
pub unsafe fn add_row<const V: usize, const MAX: bool>(
    acc: &mut [__m512; V],
    bits: Bits,
    row: &[u8],
    c0: usize,
    (s, b): (f32, f32),
) {
    let (s, b) = (_mm512_set1_ps(s), _mm512_set1_ps(b));
    for (v, a) in acc.iter_mut().enumerate() {
        // SAFETY: `c0 + 16 * v + 16 <= dim` (caller's contract).
        let codes = unsafe { codes16(bits, row, c0 + 16 * v) };
        *a = match MAX {
            true => _mm512_max_ps(_mm512_fmadd_ps(codes, s, b), *a),
            false => _mm512_fmadd_ps(codes, s, _mm512_add_ps(*a, b)),
        };
    }
}

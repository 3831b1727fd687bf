//! AVX2 + FMA (+ F16C) pieces of the packed-row kernel ([`super::kernel`]): a row's codes eight
//! columns at a time as f32 lanes, its scale and bias broadcast, and the one-row steps of a
//! column block whose `V` accumulators are `__m256` registers.
//!
//! Why by hand: the portable block loop keeps its 64 accumulators in a stack array, which the
//! compiler reloads and stores around every row; these steps keep them in eight registers, as
//! FBGEMM's generated `EmbeddingSpMDM` kernels do (`vpmovzxbd` 8 codes, `vcvtdq2ps`,
//! `vaddps acc, bias`, `vfmadd231ps acc, codes, scale`). The operations are the portable loop's,
//! lane by lane (`fma(code, s, acc + b)`; max: `fma(code, s, b)` replacing the running maximum
//! only when strictly greater), so both give the same bits.
//!
//! Every function needs a CPU with AVX2, FMA and F16C (the caller checks once) and columns
//! `col..col + 8` inside the row's `dim` (`col + 8 <= dim`, so the loads stay in the row).

use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_cvtepi32_ps, _mm256_cvtepu8_epi32, _mm256_fmadd_ps,
    _mm256_max_ps, _mm256_set1_ps, _mm_and_si128, _mm_cvtph_ps, _mm_cvtsi32_si128, _mm_cvtss_f32,
    _mm_loadl_epi64, _mm_movehdup_ps, _mm_set1_epi8, _mm_srli_epi16, _mm_unpacklo_epi8,
};

use super::format::{Bits, RowLayout};

/// Codes of columns `col..col + 8` of `row` as eight f32 lanes (4 bits: element `2i` is the
/// low nibble of byte `i`, `2i + 1` the high one).
///
/// # Safety
/// AVX2 is available; `col + 8 <= dim` of the row's layout and `row` is a whole packed row.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn codes8(bits: Bits, row: &[u8], col: usize) -> __m256 {
    let bytes = match bits {
        Bits::Eight => {
            debug_assert!(col + 8 <= row.len());
            // SAFETY: bytes `col..col + 8` are codes of this row (caller's contract).
            unsafe { _mm_loadl_epi64(row.as_ptr().add(col).cast()) }
        }
        Bits::Four => {
            debug_assert!(col / 2 + 4 <= row.len());
            // SAFETY: bytes `col / 2..col / 2 + 4` hold the codes of columns `col..col + 8`.
            let four = unsafe { row.as_ptr().add(col / 2).cast::<i32>().read_unaligned() };
            let x = _mm_cvtsi32_si128(four);
            let low = _mm_and_si128(x, _mm_set1_epi8(0x0F));
            let high = _mm_and_si128(_mm_srli_epi16::<4>(x), _mm_set1_epi8(0x0F));
            _mm_unpacklo_epi8(low, high)
        }
    };
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes))
}

/// The row's scale and bias as f32 (the 4-bit row's f16 pair widened by one `vcvtph2ps`:
/// exact, as [`RowLayout::scale_bias`]).
///
/// Not a `target_feature` function but always inlined (into the callers, which are): a call
/// in the row loop would spill every accumulator register, which no ABI preserves.
///
/// # Safety
/// F16C is available.
#[inline(always)]
pub unsafe fn scale_bias(layout: RowLayout, row: &[u8]) -> (f32, f32) {
    match layout.bits {
        Bits::Eight => layout.scale_bias(row),
        Bits::Four => {
            let sb = &row[layout.codes_bytes()..][..4];
            let pair = i32::from_le_bytes([sb[0], sb[1], sb[2], sb[3]]);
            // SAFETY: the caller's contract (F16C); the others are SSE2, always there.
            let wide = unsafe { _mm_cvtph_ps(_mm_cvtsi32_si128(pair)) };
            unsafe { (_mm_cvtss_f32(wide), _mm_cvtss_f32(_mm_movehdup_ps(wide))) }
        }
    }
}

/// One row into a block: sum `acc_v = fma(codes(c0 + 8v), s, acc_v + b)`, or with `MAX`
/// `acc_v = x > acc_v ? x : acc_v` for `x = fma(codes, s, b)` (`vmaxps x, acc` returns its first
/// operand only when strictly greater: ties keep the first). A constant, so each instance is
/// small enough to be inlined (a call would spill every accumulator).
///
/// # Safety
/// AVX2, FMA and F16C are available; `c0 + 8 * V <= dim` of the row's layout.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn add_row<const V: usize, const MAX: bool>(
    acc: &mut [__m256; V],
    bits: Bits,
    row: &[u8],
    c0: usize,
    (s, b): (f32, f32),
) {
    let (s, b) = (_mm256_set1_ps(s), _mm256_set1_ps(b));
    for (v, a) in acc.iter_mut().enumerate() {
        // SAFETY: `c0 + 8 * v + 8 <= dim` (caller's contract).
        let codes = unsafe { codes8(bits, row, c0 + 8 * v) };
        *a = match MAX {
            true => _mm256_max_ps(_mm256_fmadd_ps(codes, s, b), *a),
            false => _mm256_fmadd_ps(codes, s, _mm256_add_ps(*a, b)),
        };
    }
}

//! f16 rows widened and narrowed eight elements at a time (F16C), for the reductions that read
//! f16 tables and write f16 outputs.
//!
//! Why not `half::f16::to_f32` per element: on a build without `target_feature = "f16c"` (the
//! default x86-64 target) every call first asks the CPU-feature cache, then converts one
//! element through a function the compiler cannot inline or vectorise, so an f16 bag read half
//! the bytes of an f32 bag and ran about 4x slower. Here the feature is checked once per row and
//! the row is converted in registers (`vcvtph2ps`, 8 lanes) and added into the accumulator
//! straight away. Bits are those of the per-element loop: the conversion is exact, and the
//! weighted sum is a product then a sum (`acc + x * w`), never fused, as in the scalar loop.
//! Off x86-64, or on a CPU without F16C, the scalar loop runs ([`add_row_scalar`]).

use half::f16;

/// `acc[j] += row[j] (* weight)` for `j < acc.len()` (`row` at least as long), f16 widened
/// to f32 exactly; the same bits as [`add_row_scalar`].
#[inline]
pub fn add_row(acc: &mut [f32], row: &[f16], weight: Option<f32>) {
    let row = &row[..acc.len()];
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("f16c") && std::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has the features; the slices have equal lengths.
            return unsafe { x86::add_row_f16c(acc, row, weight) };
        }
    }
    add_row_scalar(acc, row, weight)
}

/// The slow reference of [`add_row`]: one element at a time.
#[inline(always)]
pub fn add_row_scalar(acc: &mut [f32], row: &[f16], weight: Option<f32>) {
    match weight {
        None => acc.iter_mut().zip(row).for_each(|(a, x)| *a += x.to_f32()),
        Some(w) => acc
            .iter_mut()
            .zip(row)
            .for_each(|(a, x)| *a += x.to_f32() * w),
    }
}

/// `dst[j] = src[j]` rounded to f16 (to nearest, ties to even), through `half`'s slice
/// conversion (F16C eight at a time when the CPU has it; one feature check per call).
#[inline]
pub fn narrow(src: &[f32], dst: &mut [f16]) {
    use half::slice::HalfFloatSliceExt;
    dst.convert_from_f32_slice(src);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use half::f16;
    use std::arch::x86_64::{
        __m128i, _mm256_add_ps, _mm256_cvtph_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps,
        _mm256_storeu_ps, _mm_loadu_si128,
    };

    /// [`super::add_row`] eight lanes at a time, the tail per element.
    ///
    /// # Safety
    /// The CPU has AVX and F16C; `acc.len() == row.len()`.
    #[target_feature(enable = "avx,f16c")]
    pub unsafe fn add_row_f16c(acc: &mut [f32], row: &[f16], weight: Option<f32>) {
        let n = acc.len();
        let body = n - n % 8;
        let (a, r) = (acc.as_mut_ptr(), row.as_ptr());
        let mut j = 0;
        // SAFETY (every access below): `j + 8 <= body <= n` and both slices hold `n` elements.
        match weight {
            None => {
                while j < body {
                    let x = _mm256_cvtph_ps(_mm_loadu_si128(r.add(j).cast::<__m128i>()));
                    _mm256_storeu_ps(a.add(j), _mm256_add_ps(_mm256_loadu_ps(a.add(j)), x));
                    j += 8;
                }
            }
            Some(w) => {
                let w8 = _mm256_set1_ps(w);
                while j < body {
                    let x = _mm256_cvtph_ps(_mm_loadu_si128(r.add(j).cast::<__m128i>()));
                    let sum = _mm256_add_ps(_mm256_loadu_ps(a.add(j)), _mm256_mul_ps(x, w8));
                    _mm256_storeu_ps(a.add(j), sum);
                    j += 8;
                }
            }
        }
        super::add_row_scalar(&mut acc[body..], &row[body..], weight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The F16C path gives the scalar loop's bits, weighted and not, for every tail length,
    /// over values that include subnormals, infinities and the largest finite f16.
    #[test]
    fn vector_rows_match_the_scalar_loop_bit_for_bit() {
        let specials = [
            0x0001u16, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x8001, 0x3C00,
        ];
        for n in 0..40usize {
            let row: Vec<f16> = (0..n)
                .map(|i| match i % 5 {
                    0 => f16::from_bits(specials[i % specials.len()]),
                    _ => f16::from_f32(((i as f32) * 0.37).sin() * 100.0),
                })
                .collect();
            for weight in [None, Some(0.3f32), Some(-7.5)] {
                let start: Vec<f32> = (0..n).map(|i| i as f32 * 0.125 - 2.0).collect();
                let (mut fast, mut slow) = (start.clone(), start);
                add_row(&mut fast, &row, weight);
                add_row_scalar(&mut slow, &row, weight);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&slow), "n {n} weight {weight:?}");
            }
        }
    }

    /// Narrowing rounds as `f16::from_f64` of the same value (one rounding, ties to even).
    #[test]
    fn narrow_matches_per_element_rounding() {
        let src: Vec<f32> = (0..37)
            .map(|i| ((i as f32) * 1.7).sin() * 70000.0 + 1e-7 * i as f32)
            .collect();
        let mut dst = vec![f16::ZERO; src.len()];
        narrow(&src, &mut dst);
        for (d, &s) in dst.iter().zip(&src) {
            assert_eq!(d.to_bits(), f16::from_f64(f64::from(s)).to_bits(), "{s}");
        }
    }
}

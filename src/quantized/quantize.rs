//! Row-wise quantization with FBGEMM's rounding, so our packed bytes equal PyTorch's
//! `embedding_bag_byte_prepack` / `embedding_bag_4bit_prepack` byte for byte.
//!
//! Per row, all in f32 (a float64 table is rounded to f32 first; f16 and bf16 widen exactly):
//! - 8 bits: `range = max - min`, stored `scale = range / 255`, `bias = min`; codes
//!   `lrint((x - min) * (255 / (range + 1e-8)))` (round half to even).
//! - 4 bits: `bias = f16(min)`, `min' = f32(bias)`, `range = max - min'`; `scale = f16(range / 15)`
//!   (1 when the range or the rounded scale is 0, or its inverse overflows), stored as f16;
//!   codes `clamp(lrint((x - min') / scale), 0, 15)` (as `* (1 / scale)`).
//!
//! Refused (an [`Error::InvalidArgument`] naming the row, before any output exists): non-finite
//! values, a row whose range overflows f32, and for 4 bits a minimum or scale beyond f16's range
//! (FBGEMM would store an infinite scale and every element would dequantize to NaN).
//!
//! [`quantize`] is the fast kernel (rows in parallel; the minimum and maximum taken over eight
//! lanes as FBGEMM's AVX2 kernel takes them, which is what PyTorch runs on x86);
//! [`quantize_reference`] is FBGEMM's scalar reference transcribed element by element. They agree
//! on every row except in the sign of a stored zero bias when a row's minimum is a zero present
//! with both signs (FBGEMM's own two kernels differ there too).

use half::f16;

use super::format::{Bits, RowLayout};
use crate::alloc::{checked_elems, try_alloc, try_collect, try_with_capacity};
use crate::dtype::Float;
use crate::{threads, Error, Result};

/// `kEpsilon` of FBGEMM's 8-bit quantizer.
const EPSILON: f32 = 1e-8;

/// The stored parameters of one row and how codes are computed from it.
struct Params {
    /// Subtracted before scaling (`min`, or f16-rounded `min` for 4 bits).
    min: f32,
    /// Multiplies `x - min`.
    inverse: f32,
    /// The scale and bias bytes, as stored.
    scale_bias: [u8; 8],
}

/// FBGEMM's per-row parameters for a row with minimum `min` and maximum `max` (finite).
fn params(bits: Bits, min: f32, max: f32) -> std::result::Result<Params, String> {
    let range = max - min;
    if !range.is_finite() {
        return Err(format!(
            "its values span more than float32's range ({min} to {max})"
        ));
    }
    let mut scale_bias = [0u8; 8];
    Ok(match bits {
        Bits::Eight => {
            scale_bias[..4].copy_from_slice(&(range / 255.0).to_le_bytes());
            scale_bias[4..].copy_from_slice(&min.to_le_bytes());
            Params {
                min,
                inverse: 255.0 / (range + EPSILON),
                scale_bias,
            }
        }
        Bits::Four => {
            let bias = f16::from_f32(min);
            let min = bias.to_f32();
            let range = max - min;
            let mut scale = if range == 0.0 { 1.0 } else { range / 15.0 };
            let scale16 = f16::from_f32(scale);
            if !bias.is_finite() || !scale16.is_finite() {
                return Err(format!(
                    "4-bit rows store scale and bias as float16, and its values ({min} to {max}) \
                     exceed float16's range (|x| <= 65504, span <= 15 x 65504)"
                ));
            }
            scale = scale16.to_f32();
            if scale == 0.0 {
                scale = 1.0;
            }
            let mut inverse = 1.0 / scale;
            if inverse.is_infinite() {
                scale = 1.0;
                inverse = 1.0;
            }
            scale_bias[..2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
            scale_bias[2..4].copy_from_slice(&bias.to_le_bytes());
            Params {
                min,
                inverse,
                scale_bias,
            }
        }
    })
}

/// A row's first non-finite value, as an error message.
fn non_finite(row: &[f32]) -> Option<String> {
    row.iter()
        .position(|x| !x.is_finite())
        .map(|j| format!("column {j} is {}, which cannot be quantized", row[j]))
}

/// Minimum and maximum as FBGEMM's AVX2 kernel takes them: eight lanes over the whole blocks of
/// eight (`min_ps` / `max_ps`: a tie keeps the newer value), lanes combined in order, then the
/// remainder (`std::min` / `std::max`: a tie keeps the older one).
fn min_max_lanes(row: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::MAX; 8], [-f32::MAX; 8]);
    let blocks = row.chunks_exact(8);
    let rest = blocks.remainder();
    for block in blocks {
        for i in 0..8 {
            lo[i] = if lo[i] < block[i] { lo[i] } else { block[i] };
            hi[i] = if hi[i] > block[i] { hi[i] } else { block[i] };
        }
    }
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for (&l, &h) in lo.iter().zip(&hi).chain(rest.iter().zip(rest)) {
        min = if l < min { l } else { min };
        max = if max < h { h } else { max };
    }
    (min, max)
}

/// Codes of one row into `codes` (`layout.codes_bytes()` bytes); vectorisable loops.
#[inline(always)]
fn encode(bits: Bits, p: &Params, row: &[f32], codes: &mut [u8]) {
    let (min, inv) = (p.min, p.inverse);
    match bits {
        // `as u8` saturates, as the AVX2 kernel's `packus` does (values lie in [0, 255]).
        Bits::Eight => {
            for (c, &x) in codes.iter_mut().zip(row) {
                *c = ((x - min) * inv).round_ties_even() as u8;
            }
        }
        Bits::Four => {
            let q = |x: f32| ((x - min) * inv).round_ties_even().clamp(0.0, 15.0) as u8;
            for (c, pair) in codes.iter_mut().zip(row.chunks_exact(2)) {
                *c = q(pair[0]) | (q(pair[1]) << 4);
            }
        }
    }
}

/// Quantize rows `first..first + out.len() / row_bytes` of `values`; the first bad row's error.
fn quantize_rows<T: Float>(
    values: &[T],
    layout: RowLayout,
    first: usize,
    out: &mut [u8],
) -> std::result::Result<(), (usize, String)> {
    let (dim, codes) = (layout.dim, layout.codes_bytes());
    let mut row = Vec::new();
    if row.try_reserve_exact(dim).is_err() {
        return Err((first, format!("cannot allocate a row of {dim} floats")));
    }
    row.resize(dim, 0f32);
    for (k, dst) in out.chunks_exact_mut(layout.row_bytes()).enumerate() {
        let r = first + k;
        for (f, &x) in row.iter_mut().zip(&values[r * dim..(r + 1) * dim]) {
            *f = x.as_f64() as f32;
        }
        if let Some(m) = non_finite(&row) {
            return Err((r, m));
        }
        let (min, max) = if dim == 0 {
            (0.0, 0.0)
        } else {
            min_max_lanes(&row)
        };
        let p = params(layout.bits, min, max).map_err(|m| (r, m))?;
        let (code_bytes, sb) = dst.split_at_mut(codes);
        encode(layout.bits, &p, &row, code_bytes);
        sb.copy_from_slice(&p.scale_bias[..layout.bits.scale_bias_bytes()]);
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_rows_avx2<T: Float>(
    values: &[T],
    layout: RowLayout,
    first: usize,
    out: &mut [u8],
) -> std::result::Result<(), (usize, String)> {
    quantize_rows(values, layout, first, out)
}

fn row_error((row, msg): (usize, String)) -> Error {
    Error::invalid(format!("row {row}: {msg}"))
}

/// The packed table of `values` (`rows x layout.dim`, row-major): the fast kernel. The first
/// bad row (lowest index, whatever the thread count) is reported.
pub fn quantize<T: Float>(values: &[T], rows: usize, layout: RowLayout) -> Result<Vec<u8>> {
    let width = layout.row_bytes();
    let mut out = try_alloc::<u8>(checked_elems(&[rows, width], 1)?)?;
    // Untouched yet (a fresh zeroed allocation): a large table gets huge pages, as a float one.
    crate::hugepages::advise(out.as_ptr(), out.len());
    if rows == 0 || width == 0 {
        return Ok(out);
    }
    let run = |first: usize, out: &mut [u8]| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the clone is compiled for.
                return unsafe { quantize_rows_avx2(values, layout, first, out) };
            }
        }
        quantize_rows(values, layout, first, out)
    };
    let chunk = threads::chunk_for(rows, 64);
    let n_chunks = rows.div_ceil(chunk);
    let mut errors: Vec<Option<(usize, String)>> = try_with_capacity(n_chunks)?;
    errors.resize(n_chunks, None);
    let slots = std::sync::Mutex::new(&mut errors);
    threads::for_each_chunk_mut(&mut out, chunk * width, |c, part| {
        if let Err(e) = run(c * chunk, part) {
            slots.lock().unwrap_or_else(|p| p.into_inner())[c] = Some(e);
        }
    });
    match errors.into_iter().flatten().next() {
        Some(e) => Err(row_error(e)),
        None => Ok(out),
    }
}

/// FBGEMM's scalar reference (`FloatOrHalfToFused8BitRowwiseQuantizedSBFloatRef`,
/// `FloatOrHalfToFusedNBitRowwiseQuantizedSBHalfRef`), one element at a time, one thread.
pub fn quantize_reference<T: Float>(
    values: &[T],
    rows: usize,
    layout: RowLayout,
) -> Result<Vec<u8>> {
    let (dim, width, bits) = (layout.dim, layout.row_bytes(), layout.bits);
    let mut out = try_alloc::<u8>(checked_elems(&[rows, width], 1)?)?;
    for r in 0..rows {
        let row = try_collect(
            values[r * dim..(r + 1) * dim]
                .iter()
                .map(|x| x.as_f64() as f32),
        )?;
        if let Some(m) = non_finite(&row) {
            return Err(row_error((r, m)));
        }
        // `std::min_element` / `std::max_element`: the first smallest / largest.
        let first = row.first().copied().unwrap_or(0.0);
        let min = row.iter().fold(first, |m, &x| if x < m { x } else { m });
        let max = row.iter().fold(first, |m, &x| if x > m { x } else { m });
        let p = params(bits, min, max).map_err(|m| row_error((r, m)))?;
        let dst = &mut out[r * width..(r + 1) * width];
        for (j, &x) in row.iter().enumerate() {
            let v = ((x - p.min) * p.inverse).round_ties_even();
            match bits {
                Bits::Eight => dst[j] = v as u8,
                Bits::Four => {
                    let q = v.clamp(0.0, f32::from(bits.max_code())) as u8;
                    if j % 2 == 0 {
                        dst[j / 2] = q;
                    } else {
                        dst[j / 2] |= q << 4;
                    }
                }
            }
        }
        let sb = bits.scale_bias_bytes();
        dst[width - sb..].copy_from_slice(&p.scale_bias[..sb]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(values: &[f32], dim: usize) -> usize {
        values.len() / dim
    }

    #[test]
    fn fast_equals_reference_byte_for_byte() {
        let dim = 37 * 2;
        let values: Vec<f32> = (0..dim * 300)
            .map(|i| ((i as f32 * 0.731).sin() * 3.0) + (i % 7) as f32 * 0.01)
            .collect();
        for bits in [Bits::Eight, Bits::Four] {
            let layout = RowLayout::new(dim, bits).unwrap();
            let n = rows_of(&values, dim);
            assert_eq!(
                quantize(&values, n, layout).unwrap(),
                quantize_reference(&values, n, layout).unwrap()
            );
        }
    }

    #[test]
    fn constant_rows_and_fbgemm_corner_cases() {
        // A constant row: 8 bits stores scale 0 and codes 0; 4 bits falls back to scale 1.
        let layout8 = RowLayout::new(2, Bits::Eight).unwrap();
        let p = quantize(&[1.5f32, 1.5], 1, layout8).unwrap();
        assert_eq!(&p[..2], &[0, 0]);
        assert_eq!(layout8.scale_bias(&p), (0.0, 1.5));
        let layout4 = RowLayout::new(2, Bits::Four).unwrap();
        let p = quantize(&[1.5f32, 1.5], 1, layout4).unwrap();
        assert_eq!(layout4.scale_bias(&p), (1.0, 1.5));
        // A range so small its f16 scale underflows to 0: scale 1 as well.
        let p = quantize(&[0.0f32, 1e-9], 1, layout4).unwrap();
        assert_eq!(layout4.scale_bias(&p), (1.0, 0.0));
    }

    #[test]
    fn bad_rows_are_errors_naming_the_row() {
        let layout = RowLayout::new(2, Bits::Eight).unwrap();
        let v = [0.0f32, 1.0, 2.0, f32::NAN, 0.0, f32::INFINITY];
        for f in [quantize::<f32>, quantize_reference::<f32>] {
            match f(&v, 3, layout) {
                Err(Error::InvalidArgument(m)) => assert!(m.starts_with("row 1:"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        let wide = [-3e38f32, 3e38];
        assert!(quantize(&wide, 1, layout).is_err());
        let layout4 = RowLayout::new(2, Bits::Four).unwrap();
        assert!(quantize(&[0.0f32, 1e6], 1, layout4).is_err());
        assert!(quantize(&[-7e4f32, 0.0], 1, layout4).is_err());
    }
}

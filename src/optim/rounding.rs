//! How an updated value reaches the table: computed in the accumulator type (f32 for f16 /
//! bf16 tables), then rounded to the table dtype, to nearest or stochastically.
//!
//! Stochastic rounding is FBGEMM's rule (`fbgemm_gpu/utils/stochastic_rounding.cuh`): add
//! uniform random bits below the last mantissa bit the narrow type keeps, then truncate toward
//! zero. With `x` between the two neighbours `lo <= |x| < hi` of the narrow type,
//!
//! ```text
//! P(|result| = hi) = (|x| - lo) / (hi - lo),   so   E[result] = x   (exactly, up to 2^-32)
//! ```
//!
//! An update far smaller than the table's spacing (`lr·g` below half a bf16 step, where
//! round-to-nearest returns the old value every time) still moves the row on average. Unlike
//! FBGEMM's f16 kernel, values below f16's smallest normal (2^-14) use f16's fixed subnormal
//! spacing 2^-24, so they stay unbiased too. NaN and infinities are converted as they are.
//!
//! The random bits of row `r` at step `t` of table `i` are drawn from the crate's xoshiro256++
//! seeded with `(seed, i, t, r)` (one 64-bit draw per element, its high half used), so a run
//! gives the same bits for any thread count and any split of the rows.

use half::{bf16, f16};

use crate::dtype::Float;
use crate::rng::{splitmix64, Rng};

/// The 64-bit key of step `step` of table `table` under `seed`; each row draws from
/// `Rng::new(key, row)`.
pub(crate) fn step_key(seed: u64, table: usize, step: u64) -> u64 {
    let mut s = seed ^ (table as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut t = splitmix64(&mut s) ^ step;
    splitmix64(&mut t)
}

/// `x` rounded to bf16 with the random bits `random`: the 16 bits bf16 drops get the top 16
/// random bits added, then are cleared. Adding to the bit pattern adds to the magnitude, and
/// a carry into the kept bits (a binade boundary included) is exactly rounding away from zero.
pub fn bf16_stochastic(x: f32, random: u32) -> bf16 {
    if !x.is_finite() {
        return bf16::from_f32(x);
    }
    // Finite magnitudes are <= 0x7F7F_FFFF, so the sum cannot reach the sign bit.
    let bits = x.to_bits().wrapping_add(random >> 16) & 0xFFFF_0000;
    bf16::from_bits((bits >> 16) as u16)
}

/// `x` rounded to f16 with the random bits `random`. f16 keeps 10 mantissa bits at exponents
/// from -14 up (13 of f32's 23 are dropped) and a fixed spacing of 2^-24 below; the dropped
/// low bits of `|x|` get as many random bits added, then are cleared, and the (now exactly
/// representable) value is converted.
pub fn f16_stochastic(x: f32, random: u32) -> f16 {
    if !x.is_finite() {
        return f16::from_f32(x);
    }
    let sign = x.to_bits() & 0x8000_0000;
    let magnitude = x.to_bits() & 0x7FFF_FFFF;
    // Unbiased exponent of |x| (f32 subnormals count as -126).
    let exponent = ((magnitude >> 23) as i32).max(1) - 127;
    let dropped = 13 + (-14 - exponent).max(0);
    let rounded = if dropped <= 23 {
        // The dropped bits are all mantissa bits: add, then clear them.
        let noise = random >> (32 - dropped);
        f32::from_bits((magnitude + noise) & !((1u32 << dropped) - 1))
    } else {
        // |x| < 2^-24, f16's smallest step: 2^-24 with probability |x| / 2^-24, else 0.
        let step = f32::from_bits(0x3380_0000); // 2^-24
        let p = f32::from_bits(magnitude) as f64 / step as f64;
        if (random as f64) < p * 4_294_967_296.0 {
            step
        } else {
            0.0
        }
    };
    f16::from_f32(f32::from_bits(sign | rounded.to_bits()))
}

/// One touched table row as a rule sees it: elements read in the accumulator type and written
/// back through the optimizer's rounding.
pub struct WeightRow<'a, T> {
    w: &'a mut [T],
    /// The row's random stream when stochastic rounding applies (f16 / bf16 tables only).
    rng: Option<Rng>,
}

impl<'a, T: Float> WeightRow<'a, T> {
    /// Row `w`; `key` is `Some(step_key)` under stochastic rounding, `row` the row's id.
    pub(crate) fn new(w: &'a mut [T], key: Option<u64>, row: usize) -> Self {
        let narrow = matches!(T::DT, candle_core::DType::F16 | candle_core::DType::BF16);
        let rng = key.filter(|_| narrow).map(|k| Rng::new(k, row as u64));
        WeightRow { w, rng }
    }

    /// The number of columns.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.w.len()
    }

    /// Whether the row has no columns.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.w.is_empty()
    }

    /// Element `j` in the accumulator type (exact).
    #[inline(always)]
    pub fn get<A: Float>(&self, j: usize) -> A {
        A::of_f64(self.w[j].as_f64())
    }

    /// Store `v` as element `j`, rounded to the table dtype.
    #[inline(always)]
    pub fn set<A: Float>(&mut self, j: usize, v: A) {
        // A constant per `T`: f32 / f64 tables compile to the plain conversion.
        let narrow = matches!(T::DT, candle_core::DType::F16 | candle_core::DType::BF16);
        self.w[j] = match self.rng.as_mut() {
            Some(rng) if narrow => {
                round_stochastic::<T>(v.as_f64() as f32, (rng.next_u64() >> 32) as u32)
            }
            _ => T::of_f64(v.as_f64()),
        };
    }
}

/// `x` in `T` by the stochastic rule (`T` is f16 or bf16; other types round to nearest).
#[inline(always)]
fn round_stochastic<T: Float>(x: f32, random: u32) -> T {
    match T::DT {
        candle_core::DType::BF16 => T::of_f64(bf16_stochastic(x, random).to_f64()),
        candle_core::DType::F16 => T::of_f64(f16_stochastic(x, random).to_f64()),
        _ => T::of_f64(x as f64),
    }
}

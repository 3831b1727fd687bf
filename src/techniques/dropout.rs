//! Whole-word embedding dropout (Gal & Ghahramani; AWD-LSTM's `embedded_dropout`).
//!
//! Math: every vocabulary row `r` is kept with probability `1 - p` and a kept row is scaled by
//! `1 / (1 - p)`, so `E[y] = W[ids]`; a dropped row is zero at *every* position it occurs.
//! The mask is a pure function of `(seed, r)`: `u(seed, r) = splitmix64(splitmix64(seed) ^ r)`
//! mapped to `[0, 1)` with 53 bits, and `r` is kept iff `u >= p`. It needs no table-sized state,
//! is identical for any thread count and batch layout, and the backward with the same seed
//! applies exactly the same mask.

use crate::rng::splitmix64;
use crate::{bail_invalid, Result};

/// The dropout mask of one seed: which rows are kept, and the scale of a kept row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WordDropout {
    p: f64,
    key: u64,
    keep_scale: f64,
}

/// Check `0 <= p < 1` (NaN refused).
pub fn check_p(p: f64) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        bail_invalid!("dropout must be in [0, 1), got {p}");
    }
    Ok(())
}

impl WordDropout {
    /// The mask for probability `p` (in `[0, 1)`) and `seed`.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        check_p(p)?;
        let mut s = seed;
        Ok(WordDropout {
            p,
            key: splitmix64(&mut s),
            keep_scale: 1.0 / (1.0 - p),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The uniform draw in `[0, 1)` attached to `row`.
    #[inline(always)]
    pub fn draw(&self, row: usize) -> f64 {
        let mut s = self.key ^ row as u64;
        (splitmix64(&mut s) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Whether `row` is kept.
    #[inline(always)]
    pub fn keep(&self, row: usize) -> bool {
        self.draw(row) >= self.p
    }

    /// The factor row `row` is multiplied by: `1/(1-p)` when kept, `0` when dropped.
    #[inline(always)]
    pub fn scale(&self, row: usize) -> f64 {
        if self.keep(row) {
            self.keep_scale
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_rate_is_one_minus_p() {
        for &p in &[0.1, 0.5, 0.9] {
            let d = WordDropout::new(p, 7).unwrap();
            let n = 200_000;
            let kept = (0..n).filter(|&r| d.keep(r)).count() as f64 / n as f64;
            assert!((kept - (1.0 - p)).abs() < 0.005, "p={p} kept={kept}");
        }
    }

    #[test]
    fn seed_determines_mask() {
        let a = WordDropout::new(0.5, 1).unwrap();
        let b = WordDropout::new(0.5, 1).unwrap();
        let c = WordDropout::new(0.5, 2).unwrap();
        let ma: Vec<bool> = (0..1000).map(|r| a.keep(r)).collect();
        let mb: Vec<bool> = (0..1000).map(|r| b.keep(r)).collect();
        let mc: Vec<bool> = (0..1000).map(|r| c.keep(r)).collect();
        assert_eq!(ma, mb);
        assert_ne!(ma, mc);
    }

    #[test]
    fn p_out_of_range_is_refused() {
        for p in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
            assert!(WordDropout::new(p, 0).is_err(), "p={p}");
        }
        assert!(WordDropout::new(0.0, 0).unwrap().keep(123));
    }
}

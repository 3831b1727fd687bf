//! A small, portable, seedable generator (SplitMix64 to seed, xoshiro256++ to draw), so that the
//! same seed gives bit-identical tables on every platform and with any thread count: large fills
//! split the output into fixed blocks, each with its own stream derived from (seed, block).

use rayon::prelude::*;

use crate::threads;

/// SplitMix64 step: a good 64-bit mixer, used to derive seeds and streams.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++ generator.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator for `(seed, stream)`; distinct streams are independent for practical purposes.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut sm = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    #[inline]
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let r = (self.s[0].wrapping_add(self.s[3]))
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (Lemire's multiply-shift; bias below 2^-32 for n < 2^32).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A pair of independent N(0, 1) draws (Box-Muller).
    #[inline]
    pub fn normal_pair(&mut self) -> (f64, f64) {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        (r * c, r * s)
    }
}

/// A seed from the OS's hash randomness, for `seed=None`.
pub fn entropy_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

const BLOCK: usize = 1 << 14;

/// Fill `out` in blocks of [`BLOCK`] values, in parallel: block `b` is filled by `fill` from
/// its own stream `Rng::new(seed, b)`, so the values do not depend on the thread count.
fn fill_blocks(out: &mut [f64], seed: u64, fill: impl Fn(&mut Rng, &mut [f64]) + Sync) {
    threads::install(|| {
        out.par_chunks_mut(BLOCK)
            .enumerate()
            .for_each(|(b, chunk)| fill(&mut Rng::new(seed, b as u64), chunk))
    });
}

/// Fill `out` with `mean + std * N(0,1)` deterministically from `seed`, in parallel.
pub fn fill_normal(out: &mut [f64], seed: u64, mean: f64, std: f64) {
    fill_blocks(out, seed, |rng, chunk| {
        for pair in chunk.chunks_mut(2) {
            let (a, c) = rng.normal_pair();
            pair[0] = mean + std * a;
            if pair.len() > 1 {
                pair[1] = mean + std * c;
            }
        }
    });
}

/// Fill `out` with uniform draws in `[lo, hi)` deterministically from `seed`, in parallel.
pub fn fill_uniform(out: &mut [f64], seed: u64, lo: f64, hi: f64) {
    fill_blocks(out, seed, |rng, chunk| {
        for v in chunk.iter_mut() {
            *v = lo + (hi - lo) * rng.uniform();
        }
    });
}

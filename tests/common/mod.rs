//! Helpers shared by the integration tests (each test file has `mod common;`) and the benches
//! (`#[path = "../tests/common/mod.rs"] mod common;`). Each user takes what it needs.
#![allow(dead_code)]

use candle_core::{Tensor, WithDType};

/// SplitMix64: a tiny deterministic generator, so tests and benches do not depend on the
/// crate's own RNG.
pub struct Mix(pub u64);

impl Mix {
    /// The next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw in `[0, 1)` (53 bits).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A tensor's elements on the host, as one flat vector of `T` (converted from its dtype).
pub trait Host {
    /// Every element, row-major, converted to `T`.
    fn vec1<T: WithDType>(&self) -> Vec<T>;
    /// The rows of a 2-D tensor, converted to `T`.
    fn vec2<T: WithDType>(&self) -> Vec<Vec<T>>;
}

impl Host for Tensor {
    fn vec1<T: WithDType>(&self) -> Vec<T> {
        self.flatten_all()
            .and_then(|t| t.to_dtype(T::DTYPE))
            .and_then(|t| t.to_vec1())
            .expect("tensor to host vector")
    }
    fn vec2<T: WithDType>(&self) -> Vec<Vec<T>> {
        self.to_dtype(T::DTYPE)
            .and_then(|t| t.to_vec2())
            .expect("tensor to host rows")
    }
}

/// The largest absolute difference of two equally long slices.
pub fn max_abs_diff<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x.into() - y.into()).abs())
        .fold(0.0, f64::max)
}

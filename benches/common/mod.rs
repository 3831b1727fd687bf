//! Inputs shared by the Rust benches.

/// `n` ids drawn uniformly from `0..v` by a 64-bit LCG started at `seed` (the same ids on
/// every run, so runs compare).
pub fn uniform_ids(n: usize, v: usize, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % v as u64) as u32
        })
        .collect()
}

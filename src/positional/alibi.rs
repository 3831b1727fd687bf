//! ALiBi (Press et al.): per-head linear distance biases added to attention logits.
//!
//! Slopes (the paper's rule, as MLX `ALiBi.create_alibi_slope`): for `n` a power of two,
//! `m_k = 2^(-8(k+1)/n)`, `k < n`; otherwise, with `c = 2^floor(log2 n)`,
//! `slopes(c) ++ slopes(2c)[0::2][..n-c]`.
//! Bias (MLX's symmetric form, `offset` for KV caches): `B[h, i, j] = -m_h · |i + offset - j|`,
//! shape `(H, q_len, k_len)`, computed in f64 and cast once.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::common::arange_f64;
use super::common::PAR_MIN;
use crate::alloc::{checked_elems, try_alloc_uninit, try_with_capacity};
use crate::dtype::{check_float, Float};
use crate::{threads, Error, Result};

/// Slope `k` of the power-of-two rule for `n` heads: `2^(-8(k+1)/n)`.
fn pow2_slope(k: usize, n: usize) -> f64 {
    (-8.0 * (k + 1) as f64 / n as f64).exp2()
}

/// The `num_heads` ALiBi slopes, in f64 (allocated fallibly: `num_heads` is the user's).
pub fn alibi_slopes(num_heads: usize) -> Result<Vec<f64>> {
    if num_heads == 0 {
        return Err(Error::invalid("num_heads must be >= 1"));
    }
    // c = the largest power of two <= num_heads; the rest take every other slope of 2c.
    let c = 1usize << (usize::BITS - 1 - num_heads.leading_zeros());
    let mut s = try_with_capacity(num_heads)?;
    s.extend((0..c).map(|k| pow2_slope(k, c)));
    s.extend((0..num_heads - c).map(|j| pow2_slope(2 * j, 2 * c)));
    Ok(s)
}

fn check_offset(offset: i64) -> Result<usize> {
    usize::try_from(offset)
        .map_err(|_| Error::invalid(format!("offset must be >= 0, got {offset}")))
}

/// The `(num_heads, q_len, k_len)` bias, row-major, as `T` (fast path: parallel over rows).
pub fn alibi_bias<T: Float>(
    num_heads: usize,
    q_len: usize,
    k_len: usize,
    offset: i64,
) -> Result<Vec<T>> {
    let off = check_offset(offset)?;
    let n = checked_elems(&[num_heads, q_len, k_len], T::DT.size_in_bytes())?;
    let slopes = alibi_slopes(num_heads)?;
    let mut out = try_alloc_uninit::<T>(n)?;
    if k_len == 0 {
        return Ok(out);
    }
    let row = |(r, o): (usize, &mut [T])| {
        let m = -slopes[r / q_len.max(1)];
        let pos = ((r % q_len.max(1)) + off) as f64;
        for (j, v) in o.iter_mut().enumerate() {
            *v = T::of_f64(m * (pos - j as f64).abs());
        }
    };
    if n < PAR_MIN {
        out.chunks_mut(k_len).enumerate().for_each(row);
    } else {
        threads::install(|| out.par_chunks_mut(k_len).enumerate().for_each(row));
    }
    Ok(out)
}

/// Portable path: the same bias from candle ops (f64 on `device`, cast to `dtype`).
pub fn alibi_bias_portable(
    num_heads: usize,
    q_len: usize,
    k_len: usize,
    offset: i64,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    check_float(dtype)?;
    let off = check_offset(offset)?;
    checked_elems(&[num_heads, q_len, k_len], 8)?;
    let slopes = alibi_slopes(num_heads)?;
    let m = Tensor::from_vec(slopes, (num_heads, 1, 1), device)?;
    let i = (arange_f64(q_len, device)? + off as f64)?.reshape((1, q_len, 1))?;
    let j = arange_f64(k_len, device)?.reshape((1, 1, k_len))?;
    let dist = i.broadcast_sub(&j)?.abs()?;
    Ok(dist.broadcast_mul(&m.neg()?)?.to_dtype(dtype)?)
}

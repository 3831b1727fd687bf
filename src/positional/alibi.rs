//! ALiBi (Press et al.): per-head linear distance biases added to attention logits.
//!
//! Slopes (the paper's rule, as MLX `ALiBi.create_alibi_slope`): for `n` a power of two,
//! `m_k = 2^(-8(k+1)/n)`, `k < n`; otherwise, with `c = 2^floor(log2 n)`,
//! `slopes(c) ++ slopes(2c)[0::2][..n-c]`.
//! Bias (MLX's symmetric form, `offset` for KV caches): `B[h, i, j] = -m_h · |i + offset - j|`,
//! shape `(H, q_len, k_len)`, computed in f64 and cast once.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::common::PAR_MIN;
use crate::alloc::{check_table_size, try_alloc_uninit};
use crate::dtype::{check_float, Float};
use crate::{threads, Error, Result};

fn pow2_slopes(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| (-8.0 * (k + 1) as f64 / n as f64).exp2())
        .collect()
}

/// The `num_heads` ALiBi slopes, in f64.
pub fn alibi_slopes(num_heads: usize) -> Result<Vec<f64>> {
    if num_heads == 0 {
        return Err(Error::invalid("num_heads must be >= 1"));
    }
    if num_heads.is_power_of_two() {
        return Ok(pow2_slopes(num_heads));
    }
    let c = 1usize << (usize::BITS - 1 - num_heads.leading_zeros());
    let mut s = pow2_slopes(c);
    s.extend(
        pow2_slopes(2 * c)
            .into_iter()
            .step_by(2)
            .take(num_heads - c),
    );
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
    let slopes = alibi_slopes(num_heads)?;
    let off = check_offset(offset)?;
    let n = check_table_size(num_heads * q_len, k_len, T::DT)?;
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
    let slopes = alibi_slopes(num_heads)?;
    let off = check_offset(offset)?;
    let m = Tensor::from_vec(slopes, (num_heads, 1, 1), device)?;
    let i = (Tensor::arange(0u32, q_len as u32, device)?.to_dtype(DType::F64)? + off as f64)?
        .reshape((1, q_len, 1))?;
    let j = Tensor::arange(0u32, k_len as u32, device)?
        .to_dtype(DType::F64)?
        .reshape((1, 1, k_len))?;
    let dist = i.broadcast_sub(&j)?.abs()?;
    Ok(dist.broadcast_mul(&m.neg()?)?.to_dtype(dtype)?)
}

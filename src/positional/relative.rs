//! T5 relative position buckets and the learned per-head bias over them.
//!
//! Bucket (transformers `T5Attention._relative_position_bucket`, `rel = key_pos - query_pos`):
//! ```text
//! ret = 0
//! if bidirectional: nb //= 2; ret += (rel > 0)·nb; n = |rel|   else: n = -min(rel, 0)
//! max_exact = nb // 2
//! bucket = n                                                    if n < max_exact
//!        = min(max_exact + int(ln(n/max_exact)/ln(max_dist/max_exact)·(nb - max_exact)), nb - 1)
//! ```
//! The log branch runs in f32 exactly as PyTorch evaluates it (f32 tensor, Python scalars cast
//! to f32), which decides the bucket at the edges.
//! Bias: `B[h, i, j] = W[bucket(j - (i + offset)), h]` with `W` an `(num_buckets, H)`
//! [`Embedding`]; backward sums `grad[h, i, j]` into `dW[bucket, h]` (a [`SparseGrad`] over the
//! buckets that occur).

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::common::PAR_MIN;
use crate::alloc::{checked_elems, try_alloc_uninit, try_collect, try_with_capacity};
use crate::dtype::Float;
use crate::ids::Id;
use crate::{storage, threads, Embedding, EmbeddingConfig, Error, Result, SparseGrad};

/// Bucketing options (T5 defaults: 32 buckets, max distance 128, bidirectional).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketConfig {
    /// Buckets in all (split between the two directions when bidirectional).
    pub num_buckets: usize,
    /// Distances from here on share the last bucket of their direction.
    pub max_distance: usize,
    /// Separate buckets for keys before and after the query (encoders).
    pub bidirectional: bool,
}

impl Default for BucketConfig {
    fn default() -> Self {
        BucketConfig {
            num_buckets: 32,
            max_distance: 128,
            bidirectional: true,
        }
    }
}

impl BucketConfig {
    /// `(half, max_exact)`: buckets per direction and the exact-range size.
    fn split(&self) -> (i64, i64) {
        let nb = if self.bidirectional {
            self.num_buckets / 2
        } else {
            self.num_buckets
        } as i64;
        (nb, nb / 2)
    }

    /// Checks: at least one exact bucket, and `max_distance > max_exact` (the log range).
    pub fn validate(&self) -> Result<()> {
        let (_, max_exact) = self.split();
        if max_exact < 1 {
            return Err(Error::invalid(format!(
                "num_buckets={} is too small: need >= {} for bidirectional={}",
                self.num_buckets,
                if self.bidirectional { 4 } else { 2 },
                self.bidirectional
            )));
        }
        if self.max_distance as i64 <= max_exact {
            return Err(Error::invalid(format!(
                "max_distance={} must exceed the exact range {max_exact}",
                self.max_distance
            )));
        }
        Ok(())
    }

    /// The bucket of one relative position (`key - query`); the config must be valid.
    #[inline]
    pub fn bucket(&self, rel: i64) -> usize {
        let (nb, max_exact) = self.split();
        let mut ret = 0i64;
        let n = if self.bidirectional {
            if rel > 0 {
                ret += nb;
            }
            rel.unsigned_abs()
        } else {
            (-rel.min(0)) as u64
        };
        let bucket = if n < max_exact as u64 {
            n as i64
        } else {
            let denom = ((self.max_distance as f64) / (max_exact as f64)).ln() as f32;
            let large = ((n as f32) / (max_exact as f32)).ln() / denom * ((nb - max_exact) as f32);
            (max_exact + large as i64).min(nb - 1)
        };
        (ret + bucket) as usize
    }

    /// The bucket of a relative position given exactly (`i128`): beyond the `i64` range every
    /// distance is in the last bucket of its direction anyway, so it is clamped into it.
    #[inline]
    fn bucket_wide(&self, rel: i128) -> usize {
        self.bucket(rel.clamp(i64::MIN as i128 + 1, i64::MAX as i128) as i64)
    }
}

/// Buckets of many relative positions (any integer type), as `i64`.
pub fn relative_position_bucket<I: Id>(rel: &[I], cfg: &BucketConfig) -> Result<Vec<i64>> {
    cfg.validate()?;
    let one = |r: &I| cfg.bucket_wide(r.wide()) as i64;
    Ok(if rel.len() < PAR_MIN {
        rel.iter().map(one).collect()
    } else {
        threads::install(|| rel.par_iter().map(one).collect())
    })
}

/// T5's learned relative position bias.
#[derive(Clone, Debug)]
pub struct RelativePositionBias {
    embedding: Arc<Embedding>,
    num_heads: usize,
    cfg: BucketConfig,
}

fn check_offset(offset: i64) -> Result<usize> {
    usize::try_from(offset)
        .map_err(|_| Error::invalid(format!("offset must be >= 0, got {offset}")))
}

impl RelativePositionBias {
    /// A `(num_buckets, num_heads)` table initialised N(0, 1) from `seed`.
    pub fn new(
        num_heads: usize,
        cfg: BucketConfig,
        dtype: DType,
        device: &Device,
        seed: Option<u64>,
    ) -> Result<Self> {
        cfg.validate()?;
        if num_heads == 0 {
            return Err(Error::invalid("num_heads must be >= 1"));
        }
        let e = Embedding::new(
            cfg.num_buckets,
            num_heads,
            EmbeddingConfig::default(),
            dtype,
            device,
            seed,
        )?;
        Ok(RelativePositionBias {
            embedding: Arc::new(e),
            num_heads,
            cfg,
        })
    }

    /// Wrap an existing `(num_buckets, H)` table (shared).
    pub fn from_embedding(embedding: Arc<Embedding>, cfg: BucketConfig) -> Result<Self> {
        cfg.validate()?;
        if embedding.num_embeddings() != cfg.num_buckets {
            return Err(Error::shape(format!(
                "table has {} rows, expected num_buckets={}",
                embedding.num_embeddings(),
                cfg.num_buckets
            )));
        }
        let num_heads = embedding.embedding_dim();
        Ok(RelativePositionBias {
            embedding,
            num_heads,
            cfg,
        })
    }

    /// The `(num_buckets, H)` table (shared).
    pub fn embedding(&self) -> &Arc<Embedding> {
        &self.embedding
    }
    /// Attention heads `H`.
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }
    /// The bucketing options.
    pub fn config(&self) -> &BucketConfig {
        &self.cfg
    }

    /// Bucket of each diagonal `idx = j - i + q_len - 1` (`idx < q_len + k_len - 1`).
    fn diagonal_buckets(&self, q_len: usize, k_len: usize, off: usize) -> Result<Vec<usize>> {
        let n = q_len
            .checked_add(k_len)
            .ok_or_else(|| Error::Memory(format!("q_len {q_len} + k_len {k_len} overflows")))?
            .saturating_sub(1);
        try_collect((0..n).map(|idx| {
            self.cfg
                .bucket_wide(idx as i128 - (q_len as i128 - 1) - off as i128)
        }))
    }

    /// The `(H, q_len, k_len)` bias (fast path; `T` the table's element type): every row is a
    /// contiguous copy from the per-head diagonal values.
    pub fn bias<T: Float>(&self, q_len: usize, k_len: usize, offset: i64) -> Result<Vec<T>> {
        let off = check_offset(offset)?;
        let h = self.num_heads;
        let n = checked_elems(&[h, q_len, k_len], T::DT.size_in_bytes())?;
        let w = self.embedding.weight();
        if w.dtype() != T::DT || !w.device().is_cpu() {
            return Err(Error::dtype(format!("bias needs a CPU {:?} table", T::DT)));
        }
        let buckets = self.diagonal_buckets(q_len, k_len, off)?;
        let mut diag = try_with_capacity::<T>(checked_elems(&[h, buckets.len()], 8)?)?;
        storage::read::<T, ()>(&w, |tab| {
            diag.extend((0..h).flat_map(|hh| buckets.iter().map(move |&b| tab[b * h + hh])))
        })?;
        let nd = buckets.len();
        let mut out = try_alloc_uninit::<T>(n)?;
        if k_len == 0 || q_len == 0 {
            return Ok(out);
        }
        let row = |(r, o): (usize, &mut [T])| {
            let (hh, i) = (r / q_len, r % q_len);
            let start = hh * nd + (q_len - 1 - i);
            o.copy_from_slice(&diag[start..start + k_len]);
        };
        if n < PAR_MIN {
            out.chunks_mut(k_len).enumerate().for_each(row);
        } else {
            threads::install(|| out.par_chunks_mut(k_len).enumerate().for_each(row));
        }
        Ok(out)
    }

    /// Portable path: bucket ids then candle's `index_select` on the table's device.
    pub fn bias_portable(&self, q_len: usize, k_len: usize, offset: i64) -> Result<Tensor> {
        let off = check_offset(offset)?;
        let w = self.embedding.weight();
        checked_elems(&[self.num_heads, q_len, k_len], w.dtype().size_in_bytes())?;
        let mut ids = try_with_capacity(q_len * k_len)?;
        for i in 0..q_len {
            for j in 0..k_len {
                ids.push(self.cfg.bucket_wide(j as i128 - i as i128 - off as i128) as u32);
            }
        }
        let idx = Tensor::from_vec(ids, q_len * k_len, w.device())?;
        let v = w
            .index_select(&idx, 0)?
            .reshape((q_len, k_len, self.num_heads))?;
        Ok(v.permute((2, 0, 1))?.contiguous()?)
    }

    /// Gradient of the table given `grad` of shape `(H, q_len, k_len)`: `dW[b, h]` sums
    /// `grad[h, i, j]` over the cells with bucket `b` (per head in a fixed order, in f64).
    pub fn backward<T: Float>(
        &self,
        grad: &[T],
        q_len: usize,
        k_len: usize,
        offset: i64,
    ) -> Result<SparseGrad> {
        let off = check_offset(offset)?;
        let h = self.num_heads;
        if Some(grad.len()) != checked_elems(&[h, q_len, k_len], 1).ok() {
            return Err(Error::shape(format!(
                "grad has {} elements, expected ({h}, {q_len}, {k_len})",
                grad.len()
            )));
        }
        let buckets = self.diagonal_buckets(q_len, k_len, off)?;
        let nd = buckets.len();
        // Per head: sums along each diagonal, then per bucket.
        let per_head = |hh: usize| -> Vec<f64> {
            let mut acc = vec![0.0f64; nd];
            for i in 0..q_len {
                let row = &grad[(hh * q_len + i) * k_len..(hh * q_len + i + 1) * k_len];
                let base = q_len - 1 - i;
                for (a, &g) in acc[base..base + k_len].iter_mut().zip(row) {
                    *a += g.as_f64();
                }
            }
            let mut by_bucket = vec![0.0f64; self.cfg.num_buckets];
            for (&b, &a) in buckets.iter().zip(&acc) {
                by_bucket[b] += a;
            }
            by_bucket
        };
        let sums: Vec<Vec<f64>> = if grad.len() < PAR_MIN {
            (0..h).map(per_head).collect()
        } else {
            threads::install(|| (0..h).into_par_iter().map(per_head).collect())
        };
        let mut present = vec![false; self.cfg.num_buckets];
        if q_len > 0 && k_len > 0 {
            for &b in &buckets {
                present[b] = true;
            }
        }
        let indices: Vec<i64> = (0..self.cfg.num_buckets)
            .filter(|&b| present[b])
            .map(|b| b as i64)
            .collect();
        let mut values = Vec::with_capacity(indices.len() * h);
        for &b in &indices {
            for s in &sums {
                values.push(s[b as usize]);
            }
        }
        let w = self.embedding.weight();
        let values = Tensor::from_vec(values, (indices.len(), h), &Device::Cpu)?
            .to_dtype(w.dtype())?
            .to_device(w.device())?;
        SparseGrad::new(indices, values, self.cfg.num_buckets)
    }
}

//! The cos/sin tables of one rotary call, computed in f64 from the frequencies in effect for
//! the call's length, kept in f32 too, and cached while the positions repeat.

use std::sync::Arc;

use rayon::prelude::*;

use super::{Positions, RotaryEmbedding, MAX_POSITION};
use crate::alloc::{try_alloc, try_collect};
use crate::dtype::Float;
use crate::{bail_shape, threads, Error, Result};

/// cos/sin tables of one call, `(batches, T, rotary_dim/2)`, attention scaling applied,
/// computed in f64 and kept in f32 too.
#[derive(Debug)]
pub struct RopeTables {
    /// Table batches: 1, or `B` for per-batch positions.
    pub batches: usize,
    /// Time steps `T`.
    pub seq_len: usize,
    /// `rotary_dim / 2`: frequencies per position.
    pub half: usize,
    /// cos, `(batches, T, half)`, f64.
    pub cos64: Vec<f64>,
    /// sin, `(batches, T, half)`, f64.
    pub sin64: Vec<f64>,
    /// cos rounded to f32 (the table of f32, f16 and bf16 inputs).
    pub cos32: Vec<f32>,
    /// sin rounded to f32.
    pub sin32: Vec<f32>,
}

/// Element types the kernel runs on, with the table precision each uses.
pub trait RopeFloat: Float {
    /// `(cos, sin)` in the precision the kernel computes in for this type.
    fn tables(t: &RopeTables) -> (&[Self::Acc], &[Self::Acc]);
}
impl RopeFloat for f32 {
    fn tables(t: &RopeTables) -> (&[f32], &[f32]) {
        (&t.cos32, &t.sin32)
    }
}
impl RopeFloat for f64 {
    fn tables(t: &RopeTables) -> (&[f64], &[f64]) {
        (&t.cos64, &t.sin64)
    }
}
impl RopeFloat for half::f16 {
    fn tables(t: &RopeTables) -> (&[f32], &[f32]) {
        (&t.cos32, &t.sin32)
    }
}
impl RopeFloat for half::bf16 {
    fn tables(t: &RopeTables) -> (&[f32], &[f32]) {
        (&t.cos32, &t.sin32)
    }
}

impl RotaryEmbedding {
    /// cos/sin tables for `positions` and `seq_len` time steps (cached for repeated calls).
    /// The positions are checked first; only a valid call moves the stateful dynamic state.
    pub fn tables(&self, positions: &Positions, seq_len: usize) -> Result<Arc<RopeTables>> {
        let len = call_length(positions, seq_len)?;
        let freq_len = self.frequency_length(len, true);
        let key = (positions.clone(), seq_len, freq_len);
        if let Some((k, t)) = &*self.cache.lock().unwrap_or_else(|e| e.into_inner()) {
            if *k == key {
                return Ok(t.clone());
            }
        }
        let (batches, pos): (usize, Vec<usize>) = match positions {
            Positions::Range { offset } => (1, try_collect(*offset..offset + seq_len)?),
            Positions::Shared(p) => (1, p.clone()),
            Positions::PerBatch { batches, positions } => (*batches, positions.clone()),
        };
        let (inv, att) = self.frequencies_at(freq_len)?;
        let half = self.rotary_dim / 2;
        let n = pos.len() * half;
        let (mut cos64, mut sin64) = (try_alloc::<f64>(n)?, try_alloc::<f64>(n)?);
        let (mut cos32, mut sin32) = (try_alloc::<f32>(n)?, try_alloc::<f32>(n)?);
        let fill =
            |k: usize, c64: &mut [f64], s64: &mut [f64], c32: &mut [f32], s32: &mut [f32]| {
                let p = pos[k] as f64;
                for i in 0..half {
                    let (s, c) = (p * inv[i]).sin_cos();
                    let (s, c) = (s * att, c * att);
                    c64[i] = c;
                    s64[i] = s;
                    c32[i] = c as f32;
                    s32[i] = s as f32;
                }
            };
        if half > 0 && n > 0 {
            threads::install(|| {
                cos64
                    .par_chunks_mut(half)
                    .zip(sin64.par_chunks_mut(half))
                    .zip(cos32.par_chunks_mut(half).zip(sin32.par_chunks_mut(half)))
                    .enumerate()
                    .with_min_len(64)
                    .for_each(|(k, ((c64, s64), (c32, s32)))| fill(k, c64, s64, c32, s32));
            });
        }
        let t = Arc::new(RopeTables {
            batches,
            seq_len,
            half,
            cos64,
            sin64,
            cos32,
            sin32,
        });
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, t.clone()));
        Ok(t)
    }

    /// `(cos, sin)`, each `(T, rotary_dim/2)` (or `(B, T, rotary_dim/2)`) in f64, attention
    /// scaling applied.
    pub fn cos_sin(&self, positions: &Positions, seq_len: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        let t = self.tables(positions, seq_len)?;
        Ok((t.cos64.clone(), t.sin64.clone()))
    }
}

/// `max(position) + 1` of a call (0 without positions), after checking that the positions fit
/// `T = seq_len` time steps and [`MAX_POSITION`].
fn call_length(positions: &Positions, seq_len: usize) -> Result<usize> {
    let max_plus_one = |p: &[usize]| p.iter().max().map_or(0, |m| m + 1);
    match positions {
        Positions::Range { offset } => {
            if offset.saturating_add(seq_len) > MAX_POSITION {
                return Err(Error::IndexOutOfRange {
                    what: "position",
                    index: (offset + seq_len) as i128 - 1,
                    container: "rotary positions",
                    size: MAX_POSITION,
                });
            }
            Ok(if seq_len == 0 { 0 } else { offset + seq_len })
        }
        Positions::Shared(p) => {
            if p.len() != seq_len {
                bail_shape!(
                    "positions have {} entries, but x has T = {seq_len} time steps",
                    p.len()
                );
            }
            Ok(max_plus_one(p))
        }
        Positions::PerBatch { batches, positions } => {
            if batches.checked_mul(seq_len) != Some(positions.len()) {
                bail_shape!(
                    "positions of shape ({batches}, {}) do not match T = {seq_len}",
                    positions.len() / (*batches).max(1)
                );
            }
            Ok(max_plus_one(positions))
        }
    }
}

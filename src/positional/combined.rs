//! BERT's embedding block: token + position + segment (token type) embeddings, LayerNorm,
//! dropout, with a backward that yields a [`SparseGrad`] per table and dense LayerNorm grads.
//!
//! Forward, per token `n` (ids of shape `(..., T)`, output `(..., T, D)`):
//! ```text
//! e     = tok[ids[n]] + pos[position_ids[n]] + seg[token_type_ids[n]]
//! x̂     = (e - mean(e)) / sqrt(var(e) + eps)          (biased variance, over D)
//! y     = dropout(x̂ · γ + β)                          (inverted: kept values scaled by 1/(1-p))
//! ```
//! Defaults as transformers' `BertEmbeddings`: `position_ids[..., t] = t`, `token_type_ids = 0`.
//! Backward (from the cache of the **last** forward call, see [`TransformerEmbeddings::backward`]):
//! `g = grad·mask`, `dβ = Σ g`, `dγ = Σ g·x̂`, `de = rstd·(gγ - mean(gγ) - x̂·mean(gγ·x̂))`, and
//! `de` scattered to each table's rows (coalesced; the token `padding_idx` row gets none).
//! Everything per token runs in f64; reductions over tokens use fixed chunks summed in order, so
//! results do not depend on the thread count.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};

use super::sinusoidal::{SinusoidalConfig, SinusoidalLayout, SinusoidalPositionalEncoding};
use crate::alloc::{checked_elems, try_alloc_uninit};
use crate::dtype::{check_float, Float};
use crate::ids::{self, Id};
use crate::norm::layer_norm::{LayerNorm, Saved};
use crate::rng::{self, Rng};
use crate::sparse::coalesce::{coalesce_to_grad, CoalesceOptions};
use crate::{storage, with_float, Embedding, EmbeddingConfig, Error, Result, SparseGrad};

/// How positions are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionKind {
    /// A learned `(max_positions, D)` table (BERT).
    Learned,
    /// A fixed interleaved sinusoidal table (frozen; no gradient).
    Sinusoidal,
}

impl PositionKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "learned" | "absolute" => Ok(Self::Learned),
            "sinusoidal" => Ok(Self::Sinusoidal),
            o => Err(Error::invalid(format!(
                "position must be 'learned' or 'sinusoidal', got '{o}'"
            ))),
        }
    }
}

/// Options (transformers' `BertConfig` defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct TransformerEmbeddingsConfig {
    pub max_positions: usize,
    pub type_vocab_size: usize,
    pub position: PositionKind,
    pub padding_idx: Option<i64>,
    pub layer_norm_eps: f64,
    pub dropout: f64,
}

impl Default for TransformerEmbeddingsConfig {
    fn default() -> Self {
        TransformerEmbeddingsConfig {
            max_positions: 512,
            type_vocab_size: 2,
            position: PositionKind::Learned,
            padding_idx: None,
            layer_norm_eps: 1e-12,
            dropout: 0.0,
        }
    }
}

/// What the backward needs from the last forward.
#[derive(Debug)]
struct Cache {
    shape: Vec<usize>,
    ids: Vec<usize>,
    pids: Vec<usize>,
    tts: Vec<usize>,
    /// The LayerNorm's `x̂` and `rstd`.
    saved: Saved,
    /// Seed of this call's dropout mask (None: no dropout applied).
    mask_seed: Option<u64>,
}

/// Gradients of one backward.
#[derive(Debug)]
pub struct TransformerEmbeddingsGrads {
    pub token: SparseGrad,
    /// None for a sinusoidal (fixed) position table.
    pub position: Option<SparseGrad>,
    pub segment: SparseGrad,
    /// `(D,)` dense gradients of the LayerNorm weight and bias.
    pub layer_norm_weight: Tensor,
    pub layer_norm_bias: Tensor,
}

/// BERT-style embeddings: three tables, LayerNorm, dropout.
#[derive(Debug)]
pub struct TransformerEmbeddings {
    token: Arc<Embedding>,
    position: Arc<Embedding>,
    segment: Arc<Embedding>,
    ln_weight: Mutex<Tensor>,
    ln_bias: Mutex<Tensor>,
    config: TransformerEmbeddingsConfig,
    dim: usize,
    seed: u64,
    calls: AtomicU64,
    training: AtomicBool,
    cache: Mutex<Option<Cache>>,
}

/// The dropout keep-mask of one token, element by element: `1/(1-p)` kept, 0 dropped (all zero
/// at p = 1); a pure function of `(seed, token)`, so the backward regenerates the forward's.
struct Mask {
    rng: Rng,
    p: f64,
    keep: f64,
}

impl Mask {
    fn new(seed: u64, token: usize, p: f64) -> Self {
        Mask {
            rng: Rng::new(seed, token as u64),
            p,
            keep: if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 },
        }
    }
    #[inline]
    fn next(&mut self) -> f64 {
        if self.rng.uniform() >= self.p {
            self.keep
        } else {
            0.0
        }
    }
}

impl TransformerEmbeddings {
    /// New tables: token/position/segment N(0, 1) from `seed` (token padding row zeroed),
    /// LayerNorm weight 1, bias 0.
    pub fn new(
        vocab_size: usize,
        dim: usize,
        config: TransformerEmbeddingsConfig,
        dtype: DType,
        device: &Device,
        seed: Option<u64>,
    ) -> Result<Self> {
        check_float(dtype)?;
        if !(0.0..=1.0).contains(&config.dropout) {
            return Err(Error::invalid(format!(
                "dropout must be in [0, 1], got {}",
                config.dropout
            )));
        }
        if !(config.layer_norm_eps.is_finite() && config.layer_norm_eps >= 0.0) {
            return Err(Error::invalid(format!(
                "layer_norm_eps must be finite and >= 0, got {}",
                config.layer_norm_eps
            )));
        }
        if dim == 0 || config.type_vocab_size == 0 || config.max_positions == 0 || vocab_size == 0 {
            return Err(Error::invalid(
                "vocab_size, dim, max_positions and type_vocab_size must be >= 1",
            ));
        }
        let seed = seed.unwrap_or_else(rng::entropy_seed);
        let mut sm = seed;
        let mut next = || rng::splitmix64(&mut sm);
        let tok_cfg = EmbeddingConfig {
            padding_idx: config.padding_idx,
            ..Default::default()
        };
        let token = Embedding::new(vocab_size, dim, tok_cfg, dtype, device, Some(next()))?;
        let position = match config.position {
            PositionKind::Learned => Embedding::new(
                config.max_positions,
                dim,
                EmbeddingConfig::default(),
                dtype,
                device,
                Some(next()),
            )?,
            PositionKind::Sinusoidal => {
                let sin_cfg = SinusoidalConfig {
                    max_len: config.max_positions,
                    base: 10000.0,
                    layout: SinusoidalLayout::Interleaved,
                };
                let pe = SinusoidalPositionalEncoding::new(dim, sin_cfg, dtype, device)?;
                let frozen = EmbeddingConfig {
                    freeze: true,
                    ..Default::default()
                };
                Embedding::from_pretrained(pe.table().clone(), frozen)?
            }
        };
        let segment = Embedding::new(
            config.type_vocab_size,
            dim,
            EmbeddingConfig::default(),
            dtype,
            device,
            Some(next()),
        )?;
        let ln_weight = Tensor::ones(dim, dtype, device)?;
        let ln_bias = Tensor::zeros(dim, dtype, device)?;
        Ok(TransformerEmbeddings {
            token: Arc::new(token),
            position: Arc::new(position),
            segment: Arc::new(segment),
            ln_weight: Mutex::new(ln_weight),
            ln_bias: Mutex::new(ln_bias),
            config,
            dim,
            seed: next(),
            calls: AtomicU64::new(0),
            training: AtomicBool::new(true),
            cache: Mutex::new(None),
        })
    }

    pub fn token(&self) -> &Arc<Embedding> {
        &self.token
    }
    pub fn position(&self) -> &Arc<Embedding> {
        &self.position
    }
    pub fn segment(&self) -> &Arc<Embedding> {
        &self.segment
    }
    pub fn config(&self) -> &TransformerEmbeddingsConfig {
        &self.config
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn dtype(&self) -> DType {
        self.token.dtype()
    }
    /// Dropout runs only in training mode (default true, as PyTorch modules).
    pub fn training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
    pub fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed)
    }
    /// The LayerNorm weight `γ` (D,).
    pub fn layer_norm_weight(&self) -> Tensor {
        self.ln_weight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// The LayerNorm bias `β` (D,).
    pub fn layer_norm_bias(&self) -> Tensor {
        self.ln_bias
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    fn set_param(&self, slot: &Mutex<Tensor>, v: &Tensor, what: &str) -> Result<()> {
        if v.dims() != [self.dim] {
            return Err(Error::shape(format!(
                "{what} must have shape ({},), got {:?}",
                self.dim,
                v.dims()
            )));
        }
        check_float(v.dtype())?;
        let fresh = v
            .to_dtype(self.dtype())?
            .to_device(&self.token.device())?
            .copy()?;
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
    pub fn set_layer_norm_weight(&self, v: &Tensor) -> Result<()> {
        self.set_param(&self.ln_weight, v, "layer_norm_weight")
    }
    pub fn set_layer_norm_bias(&self, v: &Tensor) -> Result<()> {
        self.set_param(&self.ln_bias, v, "layer_norm_bias")
    }

    fn resolve_ids<I: Id>(
        &self,
        ids: &[I],
        shape: &[usize],
        token_type_ids: Option<&[I]>,
        position_ids: Option<&[I]>,
    ) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
        if shape.is_empty() || shape.iter().product::<usize>() != ids.len() {
            return Err(Error::shape(format!(
                "ids must have shape (..., T) with at least one dimension, got {shape:?}"
            )));
        }
        let n = ids.len();
        let t = shape[shape.len() - 1];
        ids::validate(
            ids,
            self.token.num_embeddings(),
            "token id",
            "a token table",
        )?;
        let tok: Vec<usize> = ids.iter().map(|i| i.index()).collect();
        let tts = match token_type_ids {
            None => vec![0; n],
            Some(tt) => {
                if tt.len() != n {
                    return Err(Error::shape(format!(
                        "token_type_ids has {} elements, ids has {n} (shapes must match)",
                        tt.len()
                    )));
                }
                ids::validate(
                    tt,
                    self.segment.num_embeddings(),
                    "token type id",
                    "a segment table",
                )?;
                tt.iter().map(|i| i.index()).collect()
            }
        };
        let pids = match position_ids {
            None => {
                if t > self.position.num_embeddings() {
                    return Err(Error::IndexOutOfRange {
                        what: "position",
                        index: t as i128 - 1,
                        container: "a position table",
                        size: self.position.num_embeddings(),
                    });
                }
                (0..n).map(|k| k % t.max(1)).collect()
            }
            Some(p) => {
                if p.len() != n && p.len() != t {
                    return Err(Error::shape(format!(
                        "position_ids has {} elements: expected ids' shape or ({t},)",
                        p.len()
                    )));
                }
                ids::validate(
                    p,
                    self.position.num_embeddings(),
                    "position id",
                    "a position table",
                )?;
                if p.len() == n {
                    p.iter().map(|i| i.index()).collect()
                } else {
                    (0..n).map(|k| p[k % t].index()).collect()
                }
            }
        };
        Ok((tok, pids, tts))
    }

    /// The LayerNorm's parameters as f64.
    fn layer_norm(&self) -> Result<LayerNorm> {
        Ok(LayerNorm {
            gamma: self.layer_norm_weight().to_dtype(DType::F64)?.to_vec1()?,
            beta: self.layer_norm_bias().to_dtype(DType::F64)?.to_vec1()?,
            eps: self.config.layer_norm_eps,
        })
    }

    /// Forward on CPU tables: returns `(..., T, D)` elements of the tables' dtype `T` and caches
    /// what [`backward`](Self::backward) needs. `position_ids` may be of ids' shape or `(T,)`.
    /// Nothing is cached and no state changes when an input is rejected.
    pub fn forward<I: Id, T: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        token_type_ids: Option<&[I]>,
        position_ids: Option<&[I]>,
    ) -> Result<Vec<T>> {
        if self.dtype() != T::DT || !self.token.device().is_cpu() {
            return Err(Error::dtype(format!(
                "forward needs CPU {:?} tables",
                T::DT
            )));
        }
        let (tok, pids, tts) = self.resolve_ids(ids, shape, token_type_ids, position_ids)?;
        let n = tok.len();
        let d = self.dim;
        let p = self.config.dropout;
        let mask_seed = (self.training() && p > 0.0).then(|| {
            let mut s = self
                .seed
                .wrapping_add(self.calls.fetch_add(1, Ordering::Relaxed));
            rng::splitmix64(&mut s)
        });
        let ln = self.layer_norm()?;
        let mut out = try_alloc_uninit::<T>(checked_elems(&[n, d], std::mem::size_of::<T>())?)?;
        let (wt, wp, ws) = (
            self.token.weight(),
            self.position.weight(),
            self.segment.weight(),
        );
        let saved = storage::read::<T, Result<Saved>>(&wt, |tt_tab| {
            storage::read::<T, Result<Saved>>(&wp, |pt_tab| {
                storage::read::<T, Result<Saved>>(&ws, |st_tab| {
                    // e = tok[ids[n]] + pos[position_ids[n]] + seg[token_type_ids[n]]
                    let input = |r: usize, e: &mut [f64]| {
                        let (a, b, s) = (tok[r] * d, pids[r] * d, tts[r] * d);
                        for (j, e) in e.iter_mut().enumerate() {
                            *e = tt_tab[a + j].as_f64()
                                + pt_tab[b + j].as_f64()
                                + st_tab[s + j].as_f64();
                        }
                    };
                    let output = |r: usize, y: &[f64], o: &mut [T]| match mask_seed {
                        Some(seed) => {
                            let mut mask = Mask::new(seed, r, p);
                            for (o, &y) in o.iter_mut().zip(y) {
                                *o = T::of_f64(y * mask.next());
                            }
                        }
                        None => {
                            for (o, &y) in o.iter_mut().zip(y) {
                                *o = T::of_f64(y);
                            }
                        }
                    };
                    ln.forward(n, &mut out, input, output)
                })?
            })?
        })??;
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(Cache {
            shape: shape.to_vec(),
            ids: tok,
            pids,
            tts,
            saved,
            mask_seed,
        });
        Ok(out)
    }

    /// Forward for a tensor of ids (u8/u32/i64 or other candle integer dtypes), on CPU.
    pub fn forward_tensor(&self, ids: &Tensor) -> Result<Tensor> {
        let shape = ids.dims().to_vec();
        let flat: Vec<i64> = ids.flatten_all()?.to_dtype(DType::I64)?.to_vec1()?;
        let mut out_shape = shape.clone();
        out_shape.push(self.dim);
        with_float!(self.dtype(), T => {
            let v = self.forward::<i64, T>(&flat, &shape, None, None)?;
            Ok(Tensor::from_vec(v, out_shape, &Device::Cpu)?)
        })
    }

    /// Backward of the **last** forward call: `grad` of that call's output shape `(..., T, D)`.
    /// The cache stays (a second backward with another `grad` is allowed); a new forward
    /// replaces it. Without a prior forward this is an `InvalidArgument` error.
    pub fn backward<T: Float>(
        &self,
        grad: &[T],
        shape: &[usize],
    ) -> Result<TransformerEmbeddingsGrads> {
        let guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let c = guard
            .as_ref()
            .ok_or_else(|| Error::invalid("backward needs a forward call first"))?;
        let d = self.dim;
        let mut want = c.shape.clone();
        want.push(d);
        if shape != want.as_slice() || grad.len() != c.ids.len() * d {
            return Err(Error::shape(format!(
                "grad has shape {shape:?}, the last forward's output has shape {want:?}"
            )));
        }
        let p = self.config.dropout;
        // g = grad · dropout mask (the forward's, regenerated from its seed).
        let upstream = |r: usize, g: &mut [f64]| {
            let src = &grad[r * d..(r + 1) * d];
            match c.mask_seed {
                Some(seed) => {
                    let mut mask = Mask::new(seed, r, p);
                    for (g, &v) in g.iter_mut().zip(src) {
                        *g = v.as_f64() * mask.next();
                    }
                }
                None => {
                    for (g, &v) in g.iter_mut().zip(src) {
                        *g = v.as_f64();
                    }
                }
            }
        };
        let grads = self.layer_norm()?.backward(&c.saved, upstream)?;
        let de = &grads.de;
        let dev = self.token.device();
        let dt = self.dtype();
        // de scattered to each table's rows, coalesced; the token padding row gets none.
        let scatter = |ids: &[usize], table: &Embedding, skip: Option<usize>| {
            let opts = CoalesceOptions {
                skip,
                scale_by_count: false,
            };
            coalesce_to_grad(ids, de, d, table.num_embeddings(), opts)?.to(dt, &dev)
        };
        let token = scatter(&c.ids, &self.token, self.token.padding_idx())?;
        let position = match self.config.position {
            PositionKind::Learned => Some(scatter(&c.pids, &self.position, None)?),
            PositionKind::Sinusoidal => None,
        };
        let segment = scatter(&c.tts, &self.segment, None)?;
        Ok(TransformerEmbeddingsGrads {
            token,
            position,
            segment,
            layer_norm_weight: Tensor::from_vec(grads.dgamma, d, &dev)?.to_dtype(dt)?,
            layer_norm_bias: Tensor::from_vec(grads.dbeta, d, &dev)?.to_dtype(dt)?,
        })
    }
}

/// RoBERTa/fairseq position ids from padding (`create_position_ids_from_input_ids`), along the
/// last axis of `ids` (rows of length `t`): `mask = id != pad`,
/// `pos = (cumsum(mask) + past_len)·mask + pad`.
pub fn position_ids_from_padding<I: Id>(
    ids: &[I],
    t: usize,
    padding_idx: i64,
    past_len: i64,
) -> Result<Vec<i64>> {
    if t == 0 {
        return Ok(Vec::new());
    }
    if ids.len() % t != 0 {
        return Err(Error::shape(
            "ids do not split into rows of the given length",
        ));
    }
    let pad = padding_idx as i128;
    let mut out = Vec::with_capacity(ids.len());
    for row in ids.chunks(t) {
        let mut count = 0i64;
        for &i in row {
            if i.wide() != pad {
                count += 1;
                out.push(count + past_len + padding_idx);
            } else {
                out.push(padding_idx);
            }
        }
    }
    Ok(out)
}

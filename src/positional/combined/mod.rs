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
//! With `position_padding_idx = p` the position table is RoBERTa's (`padding_idx = p`: row `p`
//! zero at init, no gradient) and the default positions are RoBERTa's
//! `create_position_ids_from_input_ids`, along the last axis: `mask = ids != padding_idx` (all
//! true without a token `padding_idx`), `position_ids = cumsum(mask)·mask + p`, so real tokens
//! take positions `p+1, p+2, …` and padding tokens `p`.
//!
//! Backward: `g = grad·mask`, `dβ = Σ g`, `dγ = Σ g·x̂`, `de = rstd·(gγ - mean(gγ) - x̂·mean(gγ·x̂))`,
//! and `de` scattered to each table's rows (coalesced; the token `padding_idx` and position
//! `position_padding_idx` rows get none). What it needs from its forward (ids, LayerNorm
//! statistics, dropout seed) is a [`ForwardState`]: [`TransformerEmbeddings::forward_with_state`]
//! hands it to the caller, [`TransformerEmbeddings::backward_with_state`] takes it back, so
//! threads sharing one module each differentiate their own forward; the plain
//! [`TransformerEmbeddings::backward`] uses the state of the **last** forward call (any thread).
//! Everything per token runs in f64; reductions over tokens use fixed chunks summed in order, so
//! results do not depend on the thread count.

//!
//! Files: this one holds the type, its options and parameters; `ids` checks and broadcasts the
//! ids of a call (and holds [`position_ids_from_padding`]); `pass` runs forward and backward.

mod ids;
mod pass;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};

use super::sinusoidal::{SinusoidalConfig, SinusoidalLayout, SinusoidalPositionalEncoding};
use crate::alloc::try_filled;
use crate::dtype::{check_float, Float};
use crate::norm::layer_norm::Saved;
use crate::rng;
use crate::{storage, with_float, Embedding, EmbeddingConfig, Error, Result, SparseGrad};

pub use ids::position_ids_from_padding;

/// How positions are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionKind {
    /// A learned `(max_positions, D)` table (BERT).
    Learned,
    /// A fixed interleaved sinusoidal table (frozen; no gradient).
    Sinusoidal,
}

impl PositionKind {
    /// `"learned"` (or `"absolute"`) or `"sinusoidal"`.
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
    /// Rows of the position table (BERT: 512).
    pub max_positions: usize,
    /// Rows of the segment (token type) table (BERT: 2).
    pub type_vocab_size: usize,
    /// Learned or fixed sinusoidal positions.
    pub position: PositionKind,
    /// Token row zeroed at init that receives no gradient.
    pub padding_idx: Option<i64>,
    /// Position row zeroed at init (learned; zeroed in the table when sinusoidal) that receives
    /// no gradient, with RoBERTa's default positions starting after it (see the module docs).
    pub position_padding_idx: Option<i64>,
    /// Added to the LayerNorm's variance (BERT: 1e-12).
    pub layer_norm_eps: f64,
    /// Dropout probability after the LayerNorm, in `[0, 1]` (training mode only).
    pub dropout: f64,
}

impl Default for TransformerEmbeddingsConfig {
    fn default() -> Self {
        TransformerEmbeddingsConfig {
            max_positions: 512,
            type_vocab_size: 2,
            position: PositionKind::Learned,
            padding_idx: None,
            position_padding_idx: None,
            layer_norm_eps: 1e-12,
            dropout: 0.0,
        }
    }
}

/// What the backward of one forward call needs: its ids (token, position and token type per
/// token), the LayerNorm's `x̂` and `rstd`, and its dropout seed. Opaque; from
/// [`TransformerEmbeddings::forward_with_state`], for
/// [`TransformerEmbeddings::backward_with_state`] of the same module.
#[derive(Debug)]
pub struct ForwardState {
    /// The module that made it ([`TransformerEmbeddings`]'s unique `id`).
    owner: u64,
    shape: Vec<usize>,
    ids: Vec<usize>,
    pids: Vec<usize>,
    tts: Vec<usize>,
    /// The LayerNorm's `x̂` and `rstd`.
    saved: Saved,
    /// Seed of this call's dropout mask (None: no dropout applied).
    mask_seed: Option<u64>,
}

impl ForwardState {
    /// The shape of the forward call's ids, `(..., T)` (its output is `(..., T, D)`).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
}

/// A fresh id for every module, so that a state is only accepted by the module that made it.
fn next_module_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Gradients of one backward.
#[derive(Debug)]
pub struct TransformerEmbeddingsGrads {
    /// The token table's gradient.
    pub token: SparseGrad,
    /// The position table's gradient; None for a sinusoidal (fixed) position table.
    pub position: Option<SparseGrad>,
    /// The segment table's gradient.
    pub segment: SparseGrad,
    /// The `(D,)` dense gradient of the LayerNorm weight `γ`.
    pub layer_norm_weight: Tensor,
    /// The `(D,)` dense gradient of the LayerNorm bias `β`.
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
    /// This module's id (see [`ForwardState`]).
    id: u64,
    /// The state of the last forward call, for [`Self::backward`].
    last: Mutex<Option<Arc<ForwardState>>>,
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
        let pos_cfg = EmbeddingConfig {
            padding_idx: config.position_padding_idx,
            ..Default::default()
        };
        let position = match config.position {
            PositionKind::Learned => Embedding::new(
                config.max_positions,
                dim,
                pos_cfg,
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
                    ..pos_cfg
                };
                let table = Embedding::from_pretrained(pe.table().clone(), frozen)?;
                zero_padding_row(&table)?;
                table
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
            id: next_module_id(),
            last: Mutex::new(None),
        })
    }

    /// The token table (shared: optimizers update it in place).
    pub fn token(&self) -> &Arc<Embedding> {
        &self.token
    }
    /// The position table (frozen for sinusoidal positions).
    pub fn position(&self) -> &Arc<Embedding> {
        &self.position
    }
    /// The segment (token type) table.
    pub fn segment(&self) -> &Arc<Embedding> {
        &self.segment
    }
    /// The options this block was built with.
    pub fn config(&self) -> &TransformerEmbeddingsConfig {
        &self.config
    }
    /// The hidden size `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The tables' element type.
    pub fn dtype(&self) -> DType {
        self.token.dtype()
    }
    /// Dropout runs only in training mode (default true, as PyTorch modules).
    pub fn training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
    /// Switch training mode (dropout) on or off.
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
    /// Replace `γ` (shape `(D,)`, converted to the tables' dtype and device).
    pub fn set_layer_norm_weight(&self, v: &Tensor) -> Result<()> {
        self.set_param(&self.ln_weight, v, "layer_norm_weight")
    }
    /// Replace `β` (shape `(D,)`, converted to the tables' dtype and device).
    pub fn set_layer_norm_bias(&self, v: &Tensor) -> Result<()> {
        self.set_param(&self.ln_bias, v, "layer_norm_bias")
    }
}

/// Zero the padding row of a fixed (sinusoidal) position table, as fairseq's
/// `get_embedding(..., padding_idx)` does (a learned table is zeroed at init by `Embedding`).
fn zero_padding_row(table: &Embedding) -> Result<()> {
    let (Some(p), w) = (table.padding_idx(), table.weight()) else {
        return Ok(());
    };
    let d = table.embedding_dim();
    if w.device().is_cpu() {
        return with_float!(w.dtype(), T => storage::write::<T, ()>(&w, |t| {
            t[p * d..(p + 1) * d].fill(T::of_f64(0.0));
            Ok(())
        }));
    }
    let mut mask = try_filled(table.num_embeddings(), 1.0f64)?;
    mask[p] = 0.0;
    let mask = Tensor::from_vec(mask, (table.num_embeddings(), 1), w.device())?;
    table.set_weight(&w.broadcast_mul(&mask.to_dtype(w.dtype())?)?)
}

//! Rotary position embedding (RoPE; Su et al.), in both layouts, partial, with every Hugging
//! Face scaling type (see [`super::rope_scaling`]).
//!
//! For `x` of shape `(..., T, head_dim)` and positions `p_t` (shared `(T,)`, per batch `(B, T)`
//! with `B = x.shape[0]`, or `offset..offset+T`), the first `rotary_dim =
//! int(head_dim * partial_rotary_factor)` dims are rotated pairwise by `θ_{t,i} = p_t · inv_freq_i`,
//! with cos and sin scaled by the attention factor; the rest pass through. The backward is the
//! transposed rotation (`sin -> −sin`), so `backward(forward(x)) = attention_scaling² · x`.
//!
//! Three forward paths: [`RotaryEmbedding::forward`] (the fast CPU kernel behind a candle
//! `CustomOp1` with a backward, so autograd flows through it; other devices use the portable
//! path), [`RotaryEmbedding::forward_portable`] (candle `narrow`/`mul`/`cat`, any device, the
//! reference), and [`RotaryEmbedding::forward_fused`] (candle-nn's `rope`/`rope_i`, no backward).
//! Frequencies and tables are computed in f64, tables cast to the arithmetic type once.
//!
//! Length-dependent frequencies (`dynamic`, `longrope`) follow `L = max(position) + 1` of each
//! call. By default that is all (stateless: a call's result depends on the call alone). With
//! [`RotaryConfig::stateful_dynamic`], `dynamic` follows transformers' module
//! (`dynamic_rope_update`): it keeps `max_seq_len_cached` (initially
//! `max_position_embeddings`); a call with `L > max_seq_len_cached` recomputes the frequencies
//! for `L` and keeps them (`max_seq_len_cached = L`); a call with
//! `L < max_position_embeddings` while `max_seq_len_cached > max_position_embeddings` resets
//! to the original ones; any other call uses the kept frequencies, i.e. those of the longest
//! length seen since the last reset. The update is idempotent for a given `L`, so an
//! `apply_backward` with a forward's positions sees that forward's frequencies unless a call of
//! another length ran in between.
//!
//! Files: this one holds the options and the type, its shape checks and the fast path;
//! `frequencies` the frequencies in effect for a call (and the dynamic state); `positions` the
//! positions of a call; `tables` the cos/sin tables; `portable` the candle-op paths; `op` the
//! fast kernel as a candle op with a backward.

mod frequencies;
mod op;
mod portable;
pub mod positions;
pub mod tables;

use std::sync::{Arc, Mutex};

use candle_core::Tensor;

use self::op::RopeOp;
pub use self::positions::{Positions, MAX_POSITION};
pub use self::tables::{RopeFloat, RopeTables};
pub use super::rope_scaling::{RopeBasis, RopeParameters, RopeScaling};
pub use crate::kernels::cpu::rope::RopeLayout;
use crate::kernels::cpu::rope::{self, RopeShape};
use crate::{bail_invalid, bail_shape, Error, Result};

/// Configuration of a [`RotaryEmbedding`] (the Python constructor's keyword arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct RotaryConfig {
    /// `rope_theta`.
    pub base: f64,
    /// The context length the scaling rules refer to.
    pub max_position_embeddings: usize,
    /// Fraction of `head_dim` that is rotated, in `(0, 1]`.
    pub partial_rotary_factor: f64,
    /// `Half` (GPT-NeoX, Llama) or `Interleaved` (GPT-J) pairs.
    pub layout: RopeLayout,
    /// The Hugging Face scaling type.
    pub scaling: RopeScaling,
    /// `dynamic` keeps the frequencies of the longest length seen, as transformers' module
    /// does (see the module docs); false: each call's own length decides (stateless).
    pub stateful_dynamic: bool,
}

impl Default for RotaryConfig {
    fn default() -> Self {
        RotaryConfig {
            base: 10000.0,
            max_position_embeddings: 2048,
            partial_rotary_factor: 1.0,
            layout: RopeLayout::Half,
            scaling: RopeScaling::Default,
            stateful_dynamic: false,
        }
    }
}

impl RotaryConfig {
    /// Apply a transformers `rope_parameters` dict: its scaling, and its `rope_theta` /
    /// `partial_rotary_factor` when present (they override `base` / `partial_rotary_factor`).
    pub fn with_rope_parameters(mut self, params: &serde_json::Value) -> Result<Self> {
        let p = RopeParameters::from_json(params)?;
        self.scaling = p.scaling;
        if let Some(b) = p.rope_theta {
            self.base = b;
        }
        if let Some(f) = p.partial_rotary_factor {
            self.partial_rotary_factor = f;
        }
        Ok(self)
    }
}

/// The cached tables' key: the positions, `T`, and the length the frequencies were
/// computed for.
type TableKey = (Positions, usize, usize);

/// A rotary embedding: frequencies, attention factor and the last cos/sin tables (reused while
/// the positions repeat, as q and k of every layer do).
#[derive(Debug)]
pub struct RotaryEmbedding {
    head_dim: usize,
    rotary_dim: usize,
    config: RotaryConfig,
    inv_freq: Vec<f64>,
    attention_scaling: f64,
    /// `max_seq_len_cached` of the stateful dynamic mode.
    longest: Mutex<usize>,
    cache: Mutex<Option<(TableKey, Arc<RopeTables>)>>,
}

impl Clone for RotaryEmbedding {
    fn clone(&self) -> Self {
        RotaryEmbedding {
            head_dim: self.head_dim,
            rotary_dim: self.rotary_dim,
            config: self.config.clone(),
            inv_freq: self.inv_freq.clone(),
            attention_scaling: self.attention_scaling,
            longest: Mutex::new(self.max_seq_len_cached()),
            cache: Mutex::new(None),
        }
    }
}

/// Largest `head_dim` accepted. Real models use 64 to 512; the frequencies (and every scaling
/// rule's work) grow with it, so a head of billions is refused at once instead of computing
/// gigabytes of frequencies no input can match (one whose frequencies could not even be
/// addressed stays an [`crate::Error::Memory`]).
pub const MAX_HEAD_DIM: usize = 1 << 16;

impl RotaryEmbedding {
    /// `head_dim` (at most [`MAX_HEAD_DIM`]) and `rotary_dim = int(head_dim *
    /// partial_rotary_factor)` must be even and positive; `base > 1`,
    /// `max_position_embeddings > 0`, `0 < partial_rotary_factor <= 1`.
    /// `proportional` rotates the whole head (`rotary_dim = head_dim`) and also takes a
    /// `partial_rotary_factor` of 0 (no pair rotates).
    pub fn new(head_dim: usize, config: RotaryConfig) -> Result<Self> {
        // Frequencies that cannot even be addressed are a memory error, as every impossible
        // buffer; a head that could exist but no model has is refused by the documented bound.
        crate::alloc::checked_elems(&[head_dim / 2], std::mem::size_of::<f64>())?;
        if head_dim == 0 || head_dim % 2 != 0 || head_dim > MAX_HEAD_DIM {
            bail_invalid!(
                "head_dim must be a positive even number <= {MAX_HEAD_DIM}, got {head_dim}"
            );
        }
        let f = config.partial_rotary_factor;
        let proportional = matches!(config.scaling, RopeScaling::Proportional { .. });
        let above_lowest = if proportional { f >= 0.0 } else { f > 0.0 };
        if !(above_lowest && f <= 1.0) {
            let lowest = if proportional { "[0" } else { "(0" };
            bail_invalid!("partial_rotary_factor must be in {lowest}, 1], got {f}");
        }
        if !(config.base.is_finite() && config.base > 1.0) {
            bail_invalid!("base must be a finite number > 1, got {}", config.base);
        }
        if config.max_position_embeddings == 0 {
            bail_invalid!("max_position_embeddings must be positive");
        }
        let rotary_dim = config.scaling.rotary_dim(head_dim, f);
        if rotary_dim == 0 || rotary_dim % 2 != 0 {
            bail_invalid!(
                "rotary_dim = int(head_dim * partial_rotary_factor) = int({head_dim} * {f}) = \
                 {rotary_dim} must be a positive even number"
            );
        }
        if matches!(config.scaling, RopeScaling::Dynamic { .. }) && rotary_dim <= 2 {
            bail_invalid!("rope_type 'dynamic' needs rotary_dim > 2, got {rotary_dim}");
        }
        config.scaling.validate(rotary_dim)?;
        let basis = RopeBasis {
            base: config.base,
            dim: rotary_dim,
            partial_rotary_factor: f,
            max_position_embeddings: config.max_position_embeddings,
        };
        let (inv_freq, attention_scaling) = config.scaling.compute(&basis, None)?;
        if !attention_scaling.is_finite() || inv_freq.iter().any(|v| !v.is_finite()) {
            bail_invalid!(
                "rope scaling '{}' gives non-finite frequencies or attention factor",
                config.scaling.name()
            );
        }
        Ok(RotaryEmbedding {
            head_dim,
            rotary_dim,
            longest: Mutex::new(config.max_position_embeddings),
            config,
            inv_freq,
            attention_scaling,
            cache: Mutex::new(None),
        })
    }

    /// The last dimension of `x`.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }
    /// `int(head_dim * partial_rotary_factor)`: the rotated dims.
    pub fn rotary_dim(&self) -> usize {
        self.rotary_dim
    }
    /// The options this embedding was built with.
    pub fn config(&self) -> &RotaryConfig {
        &self.config
    }
    /// The inverse frequencies at initialisation (`rotary_dim / 2`, f64).
    pub fn inv_freq(&self) -> &[f64] {
        &self.inv_freq
    }
    /// The factor cos and sin are multiplied by.
    pub fn attention_scaling(&self) -> f64 {
        self.attention_scaling
    }

    /// Check `x`'s shape against the positions; returns the kernel geometry.
    pub fn geometry(&self, shape: &[usize], positions: &Positions) -> Result<RopeShape> {
        if shape.len() < 2 {
            bail_shape!("x must have shape (..., T, head_dim), got {shape:?}");
        }
        let d = shape[shape.len() - 1];
        if d != self.head_dim {
            bail_shape!(
                "x's last dimension is {d}, expected head_dim = {}",
                self.head_dim
            );
        }
        let t = shape[shape.len() - 2];
        let batches = match positions {
            Positions::Range { .. } => 1,
            Positions::Shared(p) => {
                if p.len() != t {
                    bail_shape!("positions have {} entries, x has T = {t}", p.len());
                }
                1
            }
            Positions::PerBatch { batches, positions } => {
                if shape.len() < 3 || shape[0] != *batches || positions.len() != batches * t {
                    bail_shape!(
                        "positions of shape ({batches}, {}) need x of shape ({batches}, ..., {t}, \
                         head_dim), got {shape:?}",
                        positions.len() / (*batches).max(1)
                    );
                }
                *batches
            }
        };
        Ok(RopeShape {
            head_dim: d,
            rotary_dim: self.rotary_dim,
            seq_len: t,
            batches,
            layout: self.config.layout,
        })
    }

    /// The fast CPU kernel on slices: `x` (C order, `shape`) rotated into `out`, or the
    /// transposed rotation (`transpose`, the backward).
    pub fn apply_into<T: RopeFloat>(
        &self,
        x: &[T],
        shape: &[usize],
        positions: &Positions,
        out: &mut [T],
        transpose: bool,
    ) -> Result<()> {
        let g = self.geometry(shape, positions)?;
        let n: usize = shape.iter().product();
        if x.len() != n || out.len() != n {
            bail_shape!(
                "x has {} elements and out {}, shape {shape:?} needs {n}",
                x.len(),
                out.len()
            );
        }
        if n == 0 {
            return Ok(());
        }
        let t = self.tables(positions, g.seq_len)?;
        let (cos, sin) = T::tables(&t);
        rope::check(n, n, &g, cos.len()).map_err(Error::invalid)?;
        rope::rope(x, out, &g, cos, sin, transpose);
        Ok(())
    }

    /// The fast forward on a tensor (CPU, and CUDA when the CUDA kernels are on: the one-pass
    /// kernel as a candle `CustomOp1` with a backward, so gradients flow; other devices:
    /// [`Self::forward_portable`]).
    pub fn forward(&self, x: &Tensor, positions: &Positions) -> Result<Tensor> {
        self.run(x, positions, false)
    }

    /// The backward of [`Self::forward`]: the transposed rotation of `grad`.
    pub fn backward(&self, grad: &Tensor, positions: &Positions) -> Result<Tensor> {
        self.run(grad, positions, true)
    }

    fn run(&self, x: &Tensor, positions: &Positions, transpose: bool) -> Result<Tensor> {
        crate::dtype::check_float(x.dtype())?;
        let g = self.geometry(x.dims(), positions)?;
        #[cfg(feature = "cuda")]
        let fast = x.device().is_cpu() || crate::kernels::cuda::active(x.device());
        #[cfg(not(feature = "cuda"))]
        let fast = x.device().is_cpu();
        if !fast {
            return self.portable(x, positions, transpose);
        }
        let tables = self.tables(positions, g.seq_len)?;
        let op = RopeOp {
            shape: g,
            tables,
            transpose,
        };
        Ok(x.contiguous()?.apply_op1(op)?)
    }
}

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
//! Dynamic and LongRoPE frequencies depend on `max(position) + 1` of each call (stateless,
//! unlike transformers' cache that keeps the longest length seen).
//!
//! Files: this one holds the options and the type, its shape checks and the fast path;
//! `positions` the positions of a call; `tables` the cos/sin tables; `portable` the candle-op
//! paths; `op` the fast kernel as a candle op with a backward.

mod op;
mod portable;
pub mod positions;
pub mod tables;

use std::sync::{Arc, Mutex};

use candle_core::Tensor;

use self::op::RopeOp;
pub use self::positions::{Positions, MAX_POSITION};
pub use self::tables::{RopeFloat, RopeTables};
pub use super::rope_scaling::{RopeParameters, RopeScaling};
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
}

impl Default for RotaryConfig {
    fn default() -> Self {
        RotaryConfig {
            base: 10000.0,
            max_position_embeddings: 2048,
            partial_rotary_factor: 1.0,
            layout: RopeLayout::Half,
            scaling: RopeScaling::Default,
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

type TableKey = (Positions, usize);

/// A rotary embedding: frequencies, attention factor and the last cos/sin tables (reused while
/// the positions repeat, as q and k of every layer do).
#[derive(Debug)]
pub struct RotaryEmbedding {
    head_dim: usize,
    rotary_dim: usize,
    config: RotaryConfig,
    inv_freq: Vec<f64>,
    attention_scaling: f64,
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
            cache: Mutex::new(None),
        }
    }
}

impl RotaryEmbedding {
    /// `head_dim` and `rotary_dim = int(head_dim * partial_rotary_factor)` must be even and
    /// positive; `base > 0`, `max_position_embeddings > 0`, `0 < partial_rotary_factor <= 1`.
    pub fn new(head_dim: usize, config: RotaryConfig) -> Result<Self> {
        if head_dim == 0 || head_dim % 2 != 0 {
            bail_invalid!("head_dim must be a positive even number, got {head_dim}");
        }
        let f = config.partial_rotary_factor;
        if !(f > 0.0 && f <= 1.0) {
            bail_invalid!("partial_rotary_factor must be in (0, 1], got {f}");
        }
        if !(config.base.is_finite() && config.base > 1.0) {
            bail_invalid!("base must be a finite number > 1, got {}", config.base);
        }
        if config.max_position_embeddings == 0 {
            bail_invalid!("max_position_embeddings must be positive");
        }
        let rotary_dim = (head_dim as f64 * f) as usize;
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
        let (inv_freq, attention_scaling) = config.scaling.compute(
            config.base,
            rotary_dim,
            config.max_position_embeddings,
            None,
        )?;
        if !attention_scaling.is_finite() || inv_freq.iter().any(|v| !v.is_finite()) {
            bail_invalid!(
                "rope scaling '{}' gives non-finite frequencies or attention factor",
                config.scaling.name()
            );
        }
        Ok(RotaryEmbedding {
            head_dim,
            rotary_dim,
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

    /// `(inv_freq, attention_scaling)` in effect for a sequence of `seq_len` positions
    /// (`max(position) + 1`): differs from the initial ones only for dynamic and longrope.
    pub fn try_frequencies(&self, seq_len: usize) -> Result<(Vec<f64>, f64)> {
        if !self.config.scaling.depends_on_length() {
            return Ok((self.inv_freq.clone(), self.attention_scaling));
        }
        self.config.scaling.compute(
            self.config.base,
            self.rotary_dim,
            self.config.max_position_embeddings,
            Some(seq_len),
        )
    }

    /// [`Self::try_frequencies`] for callers without an error path. The constructor allocated
    /// the same `rotary_dim / 2` frequencies, so only an allocator out of memory right now can
    /// fail, and that ends the process as any infallible `Vec` would.
    pub fn frequencies(&self, seq_len: usize) -> (Vec<f64>, f64) {
        self.try_frequencies(seq_len).unwrap_or_else(|_| {
            std::alloc::handle_alloc_error(
                std::alloc::Layout::array::<f64>(self.rotary_dim / 2)
                    .unwrap_or(std::alloc::Layout::new::<f64>()),
            )
        })
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

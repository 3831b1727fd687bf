//! RoPE frequency scaling, as Hugging Face transformers' `modeling_rope_utils` computes it.
//!
//! Each scaling type maps a [`RopeBasis`] (`base`, the rotated width `dim`, ...) and the
//! sequence length to `(inv_freq, attention_factor)`: `inv_freq` has `dim / 2` entries,
//! `attention_factor` multiplies cos and sin. Everything is computed in f64 (transformers
//! computes `inv_freq` in float32; the two agree to ~1e-7 relative). The types are those of
//! transformers 5.x's `ROPE_INIT_FUNCTIONS` plus `default` ([`RopeScaling::NAMES`]):
//!
//! - `default`: `inv_freq_i = base^(-2i/dim)`, factor 1.
//! - `linear` (`factor`): `inv_freq / factor`.
//! - `dynamic` (`factor`): with `L = max(seq_len, max_pos)`,
//!   `base' = base * (factor*L/max_pos - (factor-1))^(dim/(dim-2))`; changes only past `max_pos`.
//! - `yarn` (`factor`, `beta_fast`=32, `beta_slow`=1, `mscale`, `mscale_all_dim`,
//!   `attention_factor`, `truncate`=true, `original_max_position_embeddings`): a linear ramp
//!   between interpolated (`/factor`) and extrapolated frequencies; attention factor
//!   `0.1*ln(factor)+1` (or the mscale ratio).
//! - `longrope` (`short_factor`, `long_factor`, `factor`, `attention_factor`,
//!   `original_max_position_embeddings`): `inv_freq_i = 1/(ext_i * base^(2i/dim))` with `ext` the
//!   long factors once `seq_len > original_max_position_embeddings`.
//! - `llama3` (`factor`, `low_freq_factor`, `high_freq_factor`,
//!   `original_max_position_embeddings`): wavelength-dependent smooth interpolation.
//! - `proportional` (`factor`=1; Gemma 4): the frequencies span the whole `head_dim` (`dim =
//!   head_dim`), the first `a = int(partial_rotary_factor * head_dim // 2)` are
//!   `base^(-2i/head_dim)`, the other `head_dim/2 - a` are 0 (cos 1, sin 0: those pairs pass
//!   through), and all are divided by `factor`. Unlike the other types, `partial_rotary_factor`
//!   does not narrow the rotated width: it sets the share of non-zero frequencies.
//!
//! `original_max_position_embeddings` defaults to the model's `max_position_embeddings`, as
//! transformers' `standardize_rope_params` does.

mod parse;

pub use parse::RopeParameters;

use crate::alloc::try_collect;
use crate::{Error, Result};

/// What the frequencies are computed from besides the scaling's own parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeBasis {
    /// `rope_theta`.
    pub base: f64,
    /// The rotated width: [`RopeScaling::rotary_dim`] (`inv_freq` has `dim / 2` entries).
    pub dim: usize,
    /// `partial_rotary_factor` (read by `proportional` only; the others see it through `dim`).
    pub partial_rotary_factor: f64,
    /// The context length the scaling rules refer to.
    pub max_position_embeddings: usize,
}

/// A RoPE scaling type with its parameters (transformers' `rope_parameters`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RopeScaling {
    /// Plain RoPE.
    #[default]
    Default,
    /// Position interpolation: every frequency divided by `factor`.
    Linear {
        /// The context extension factor.
        factor: f64,
    },
    /// Dynamic NTK: the base grows with the sequence once it passes `max_position_embeddings`.
    Dynamic {
        /// The context extension factor.
        factor: f64,
    },
    /// YaRN.
    Yarn {
        /// The context extension factor.
        factor: f64,
        /// Rotations per wavelength above which frequencies are kept (32).
        beta_fast: f64,
        /// Rotations per wavelength below which frequencies are interpolated (1).
        beta_slow: f64,
        /// DeepSeek-style attention factor numerator.
        mscale: Option<f64>,
        /// DeepSeek-style attention factor denominator.
        mscale_all_dim: Option<f64>,
        /// Overrides the computed attention (cos/sin) factor.
        attention_factor: Option<f64>,
        /// Round the correction range to whole dims (transformers' default).
        truncate: bool,
        /// The pre-training context length (default: `max_position_embeddings`).
        original_max_position_embeddings: Option<usize>,
    },
    /// LongRoPE (Phi-3): per-frequency factors, short below the original length, long above.
    LongRope {
        /// Per-frequency factors up to the original length (`rotary_dim / 2`).
        short_factor: Vec<f64>,
        /// Per-frequency factors past the original length (`rotary_dim / 2`).
        long_factor: Vec<f64>,
        /// The context extension factor (default: `max_position_embeddings / original`).
        factor: Option<f64>,
        /// Overrides the computed attention (cos/sin) factor.
        attention_factor: Option<f64>,
        /// The pre-training context length (default: `max_position_embeddings`).
        original_max_position_embeddings: Option<usize>,
    },
    /// Llama 3.1.
    Llama3 {
        /// The context extension factor.
        factor: f64,
        /// Wavelengths longer than `orig / low_freq_factor` are divided by `factor`.
        low_freq_factor: f64,
        /// Wavelengths shorter than `orig / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The pre-training context length (default: `max_position_embeddings`).
        original_max_position_embeddings: Option<usize>,
    },
    /// Gemma 4's proportional RoPE: the whole head rotates, a `partial_rotary_factor` share of
    /// the frequencies is non-zero, all divided by `factor`.
    Proportional {
        /// Every frequency is divided by this (1 by default).
        factor: f64,
    },
}

/// `base^(-2i/dim)` for `i in 0..dim/2` (allocated fallibly: `dim` is the user's).
pub fn default_inv_freq(base: f64, dim: usize) -> Result<Vec<f64>> {
    try_collect((0..dim / 2).map(|i| 1.0 / base.powf((2 * i) as f64 / dim as f64)))
}

fn yarn_mscale(scale: f64, m: f64) -> f64 {
    if scale <= 1.0 {
        1.0
    } else {
        0.1 * m * scale.ln() + 1.0
    }
}

/// YaRN's correction range `(low, high)` (before the `low == high` nudge).
pub fn yarn_correction_range(
    beta_fast: f64,
    beta_slow: f64,
    dim: usize,
    base: f64,
    orig: usize,
    truncate: bool,
) -> (f64, f64) {
    let fcd = |rot: f64| {
        dim as f64 * (orig as f64 / (rot * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln())
    };
    let (mut low, mut high) = (fcd(beta_fast), fcd(beta_slow));
    if truncate {
        low = low.floor();
        high = high.ceil();
    }
    (low.max(0.0), high.min(dim as f64 - 1.0))
}

impl RopeScaling {
    /// Every `rope_type` this crate knows: `default` and the keys of transformers 5.x's
    /// `ROPE_INIT_FUNCTIONS`.
    pub const NAMES: [&'static str; 7] = [
        "default",
        "linear",
        "dynamic",
        "yarn",
        "longrope",
        "llama3",
        "proportional",
    ];

    /// The rotated width for a head of `head_dim` dims: `int(head_dim * partial_rotary_factor)`,
    /// or the whole head for `proportional` (whose zero frequencies leave pairs unrotated).
    pub fn rotary_dim(&self, head_dim: usize, partial_rotary_factor: f64) -> usize {
        match self {
            RopeScaling::Proportional { .. } => head_dim,
            _ => (head_dim as f64 * partial_rotary_factor) as usize,
        }
    }

    /// The `rope_type` name, as transformers spells it.
    pub fn name(&self) -> &'static str {
        match self {
            RopeScaling::Default => "default",
            RopeScaling::Linear { .. } => "linear",
            RopeScaling::Dynamic { .. } => "dynamic",
            RopeScaling::Yarn { .. } => "yarn",
            RopeScaling::LongRope { .. } => "longrope",
            RopeScaling::Llama3 { .. } => "llama3",
            RopeScaling::Proportional { .. } => "proportional",
        }
    }

    /// Check the parameters against the rotary dimension (longrope factor lengths).
    pub fn validate(&self, dim: usize) -> Result<()> {
        if let RopeScaling::LongRope {
            short_factor,
            long_factor,
            ..
        } = self
        {
            for (name, f) in [("short_factor", short_factor), ("long_factor", long_factor)] {
                if f.len() != dim / 2 {
                    return Err(Error::invalid(format!(
                        "rope_type 'longrope': '{name}' must have rotary_dim / 2 = {} entries, got {}",
                        dim / 2,
                        f.len()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether the frequencies depend on the sequence length.
    pub fn depends_on_length(&self) -> bool {
        matches!(
            self,
            RopeScaling::Dynamic { .. } | RopeScaling::LongRope { .. }
        )
    }

    /// `(inv_freq, attention_factor)` for `basis` at sequence length `seq_len` (`None`: at
    /// initialisation, as transformers calls the init function). The `basis.dim / 2`
    /// frequencies are allocated fallibly ([`crate::alloc`]).
    pub fn compute(&self, basis: &RopeBasis, seq_len: Option<usize>) -> Result<(Vec<f64>, f64)> {
        let RopeBasis {
            base,
            dim,
            partial_rotary_factor,
            max_position_embeddings: max_pos,
        } = *basis;
        let half = dim / 2;
        Ok(match self {
            RopeScaling::Default => (default_inv_freq(base, dim)?, 1.0),
            RopeScaling::Linear { factor } => {
                let mut inv = default_inv_freq(base, dim)?;
                inv.iter_mut().for_each(|f| *f /= factor);
                (inv, 1.0)
            }
            RopeScaling::Dynamic { factor } => {
                let l = seq_len.unwrap_or(max_pos).max(max_pos) as f64;
                let m = max_pos as f64;
                let b = base
                    * ((factor * l / m) - (factor - 1.0)).powf(dim as f64 / (dim as f64 - 2.0));
                (default_inv_freq(b, dim)?, 1.0)
            }
            RopeScaling::Yarn {
                factor,
                beta_fast,
                beta_slow,
                mscale,
                mscale_all_dim,
                attention_factor,
                truncate,
                original_max_position_embeddings,
            } => {
                let orig = original_max_position_embeddings.unwrap_or(max_pos);
                let att = attention_factor.unwrap_or_else(|| match (mscale, mscale_all_dim) {
                    // transformers: `if mscale and mscale_all_dim` (0 counts as absent).
                    (Some(m), Some(a)) if *m != 0.0 && *a != 0.0 => {
                        yarn_mscale(*factor, *m) / yarn_mscale(*factor, *a)
                    }
                    _ => yarn_mscale(*factor, 1.0),
                });
                let (low, mut high) =
                    yarn_correction_range(*beta_fast, *beta_slow, dim, base, orig, *truncate);
                if low == high {
                    high += 0.001;
                }
                let inv = try_collect((0..half).map(|i| {
                    let pos_freq = base.powf((2 * i) as f64 / dim as f64);
                    let extra = 1.0 - ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                    (1.0 / (factor * pos_freq)) * (1.0 - extra) + (1.0 / pos_freq) * extra
                }))?;
                (inv, att)
            }
            RopeScaling::LongRope {
                short_factor,
                long_factor,
                factor,
                attention_factor,
                original_max_position_embeddings,
            } => {
                let orig = original_max_position_embeddings.unwrap_or(max_pos);
                let factor = factor.unwrap_or(max_pos as f64 / orig as f64);
                let att = attention_factor.unwrap_or(if factor <= 1.0 {
                    1.0
                } else {
                    (1.0 + factor.ln() / (orig as f64).ln()).sqrt()
                });
                let ext = match seq_len {
                    Some(s) if s > orig => long_factor,
                    _ => short_factor,
                };
                let inv = try_collect(
                    (0..half).map(|i| 1.0 / (ext[i] * base.powf((2 * i) as f64 / dim as f64))),
                )?;
                (inv, att)
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let orig = original_max_position_embeddings.unwrap_or(max_pos) as f64;
                let low_wavelen = orig / low_freq_factor;
                let high_wavelen = orig / high_freq_factor;
                let mut inv = default_inv_freq(base, dim)?;
                inv.iter_mut().for_each(|f| {
                    *f = {
                        let f = *f;
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let s = (orig / wavelen - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - s) * f / factor + s * f
                        }
                    }
                });
                (inv, 1.0)
            }
            RopeScaling::Proportional { factor } => {
                // transformers: `int(rope_proportion * head_dim // 2)` live angles.
                let live = ((partial_rotary_factor * dim as f64) / 2.0).floor() as usize;
                let inv = try_collect((0..half).map(|i| {
                    if i < live {
                        1.0 / base.powf((2 * i) as f64 / dim as f64) / factor
                    } else {
                        0.0
                    }
                }))?;
                (inv, 1.0)
            }
        })
    }
}

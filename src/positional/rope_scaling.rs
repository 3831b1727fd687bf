//! RoPE frequency scaling, as Hugging Face transformers' `modeling_rope_utils` computes it.
//!
//! Each scaling type maps `(base, dim, seq_len)` to `(inv_freq, attention_factor)`:
//! `inv_freq` has `dim / 2` entries (`dim` = the rotary dimension), `attention_factor`
//! multiplies cos and sin. Everything is computed in f64 (transformers computes `inv_freq` in
//! float32; the two agree to ~1e-7 relative).
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
//!
//! `original_max_position_embeddings` defaults to the model's `max_position_embeddings`, as
//! transformers' `standardize_rope_params` does.

use serde_json::{Map, Value};

use crate::alloc::try_collect;
use crate::{Error, Result};

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
}

/// What a `rope_parameters` dict may also carry besides the scaling: overrides of the
/// constructor's `base` (`rope_theta`) and `partial_rotary_factor`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RopeParameters {
    /// The scaling type and its parameters.
    pub scaling: RopeScaling,
    /// Overrides the constructor's `base`.
    pub rope_theta: Option<f64>,
    /// Overrides the constructor's `partial_rotary_factor`.
    pub partial_rotary_factor: Option<f64>,
}

fn num(map: &Map<String, Value>, key: &str, rope_type: &str) -> Result<Option<f64>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| {
            Error::dtype(format!("rope_type '{rope_type}': '{key}' must be a number"))
        }),
        Some(other) => Err(Error::dtype(format!(
            "rope_type '{rope_type}': '{key}' must be a number, got {other}"
        ))),
    }
}

fn req(map: &Map<String, Value>, key: &str, rope_type: &str) -> Result<f64> {
    num(map, key, rope_type)?.ok_or_else(|| {
        Error::invalid(format!(
            "rope_type '{rope_type}' requires the key '{key}' in the scaling parameters"
        ))
    })
}

fn positive(v: f64, key: &str, rope_type: &str) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid(format!(
            "rope_type '{rope_type}': '{key}' must be a positive finite number, got {v}"
        )))
    }
}

fn length(map: &Map<String, Value>, key: &str, rope_type: &str) -> Result<Option<usize>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) | None => Err(Error::invalid(format!(
                "rope_type '{rope_type}': '{key}' must be a positive integer, got {n}"
            ))),
            Some(v) => Ok(Some(v as usize)),
        },
        Some(other) => Err(Error::dtype(format!(
            "rope_type '{rope_type}': '{key}' must be an integer, got {other}"
        ))),
    }
}

fn list(map: &Map<String, Value>, key: &str, rope_type: &str) -> Result<Vec<f64>> {
    match map.get(key) {
        None | Some(Value::Null) => Err(Error::invalid(format!(
            "rope_type '{rope_type}' requires the key '{key}' in the scaling parameters"
        ))),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                let x = v.as_f64().ok_or_else(|| {
                    Error::dtype(format!(
                        "rope_type '{rope_type}': '{key}' must be a list of numbers, got {v}"
                    ))
                })?;
                positive(x, key, rope_type)
            })
            .collect(),
        Some(other) => Err(Error::dtype(format!(
            "rope_type '{rope_type}': '{key}' must be a list of numbers, got {other}"
        ))),
    }
}

impl RopeParameters {
    /// Parse a transformers `rope_parameters` / `rope_scaling` dict. `rope_type` (or its old
    /// alias `type`) selects the scaling; a missing required key or an unknown type is
    /// `InvalidArgument`, a value of the wrong JSON type is `DType`. Unknown keys are ignored
    /// (transformers only warns about them).
    pub fn from_json(value: &Value) -> Result<Self> {
        let map = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(m) => m,
            other => {
                return Err(Error::dtype(format!(
                    "rope scaling must be a dict, got {other}"
                )))
            }
        };
        let rope_type = match map.get("rope_type").or_else(|| map.get("type")) {
            None | Some(Value::Null) => "default",
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(Error::dtype(format!(
                    "rope_type must be a string, got {other}"
                )))
            }
        };
        let t = rope_type;
        let orig = || length(map, "original_max_position_embeddings", t);
        let scaling = match rope_type {
            "default" => RopeScaling::Default,
            "linear" => RopeScaling::Linear {
                factor: positive(req(map, "factor", t)?, "factor", t)?,
            },
            "dynamic" => RopeScaling::Dynamic {
                factor: positive(req(map, "factor", t)?, "factor", t)?,
            },
            "yarn" => {
                let truncate = match map.get("truncate") {
                    None | Some(Value::Null) => true,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        return Err(Error::dtype(format!(
                            "rope_type 'yarn': 'truncate' must be a bool, got {other}"
                        )))
                    }
                };
                // transformers: `get("beta_fast") or 32` (a 0 also falls back to the default).
                let beta_fast = num(map, "beta_fast", t)?.filter(|&v| v != 0.0);
                let beta_slow = num(map, "beta_slow", t)?.filter(|&v| v != 0.0);
                RopeScaling::Yarn {
                    factor: positive(req(map, "factor", t)?, "factor", t)?,
                    beta_fast: positive(beta_fast.unwrap_or(32.0), "beta_fast", t)?,
                    beta_slow: positive(beta_slow.unwrap_or(1.0), "beta_slow", t)?,
                    mscale: num(map, "mscale", t)?,
                    mscale_all_dim: num(map, "mscale_all_dim", t)?,
                    attention_factor: num(map, "attention_factor", t)?,
                    truncate,
                    original_max_position_embeddings: orig()?,
                }
            }
            "longrope" => RopeScaling::LongRope {
                short_factor: list(map, "short_factor", t)?,
                long_factor: list(map, "long_factor", t)?,
                factor: num(map, "factor", t)?
                    .map(|f| positive(f, "factor", t))
                    .transpose()?,
                attention_factor: num(map, "attention_factor", t)?,
                original_max_position_embeddings: orig()?,
            },
            "llama3" => {
                let low = positive(req(map, "low_freq_factor", t)?, "low_freq_factor", t)?;
                let high = positive(req(map, "high_freq_factor", t)?, "high_freq_factor", t)?;
                if high <= low {
                    return Err(Error::invalid(format!(
                        "rope_type 'llama3': high_freq_factor ({high}) must be greater than \
                         low_freq_factor ({low})"
                    )));
                }
                RopeScaling::Llama3 {
                    factor: positive(req(map, "factor", t)?, "factor", t)?,
                    low_freq_factor: low,
                    high_freq_factor: high,
                    original_max_position_embeddings: orig()?,
                }
            }
            other => {
                return Err(Error::invalid(format!(
                    "unknown rope_type '{other}': expected one of default, linear, dynamic, \
                     yarn, longrope, llama3"
                )))
            }
        };
        Ok(RopeParameters {
            scaling,
            rope_theta: num(map, "rope_theta", t)?
                .map(|v| positive(v, "rope_theta", t))
                .transpose()?,
            partial_rotary_factor: num(map, "partial_rotary_factor", t)?,
        })
    }
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
    /// The `rope_type` name, as transformers spells it.
    pub fn name(&self) -> &'static str {
        match self {
            RopeScaling::Default => "default",
            RopeScaling::Linear { .. } => "linear",
            RopeScaling::Dynamic { .. } => "dynamic",
            RopeScaling::Yarn { .. } => "yarn",
            RopeScaling::LongRope { .. } => "longrope",
            RopeScaling::Llama3 { .. } => "llama3",
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

    /// `(inv_freq, attention_factor)` for rotary dimension `dim` at sequence length `seq_len`
    /// (`None`: at initialisation, as transformers calls the init function). The `dim / 2`
    /// frequencies are allocated fallibly ([`crate::alloc`]).
    pub fn compute(
        &self,
        base: f64,
        dim: usize,
        max_position_embeddings: usize,
        seq_len: Option<usize>,
    ) -> Result<(Vec<f64>, f64)> {
        let half = dim / 2;
        let max_pos = max_position_embeddings;
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
        })
    }
}

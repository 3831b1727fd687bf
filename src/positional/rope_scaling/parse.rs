//! Parsing a transformers `rope_parameters` / `rope_scaling` dict (as JSON) into a
//! [`RopeScaling`]: `rope_type` (or its old alias `type`) picks the variant, each variant's
//! keys as `modeling_rope_utils`' init functions read them (a missing required key or an
//! unknown type is `InvalidArgument`, a value of the wrong JSON type is `DType`).

use serde_json::{Map, Value};

use super::RopeScaling;
use crate::{Error, Result};

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
            "proportional" => RopeScaling::Proportional {
                // transformers: `rope_parameters.get("factor", 1.0)`.
                factor: num(map, "factor", t)?
                    .map(|f| positive(f, "factor", t))
                    .transpose()?
                    .unwrap_or(1.0),
            },
            other => {
                return Err(Error::invalid(format!(
                    "unknown rope_type '{other}': expected one of {}",
                    RopeScaling::NAMES.join(", ")
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

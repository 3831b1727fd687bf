//! `Embedding::save` / `Embedding::load`: the table as tensor `weight` in a safetensors file,
//! the config as JSON in its metadata (key `candle_embed.config`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::Device;
use serde_json::{json, Value};

use crate::io::safetensors;
use crate::{hugepages, Embedding, EmbeddingConfig, Error, Result};

const CONFIG_KEY: &str = "candle_embed.config";

impl Embedding {
    /// Save the table and its config to a safetensors file (atomically: temp file + rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let c = self.config();
        let config = json!({
            "kind": "Embedding",
            "num_embeddings": self.num_embeddings(),
            "embedding_dim": self.embedding_dim(),
            "padding_idx": self.padding_idx(),
            "max_norm": c.max_norm,
            "norm_type": if c.norm_type.is_infinite() { Value::from("inf") } else { Value::from(c.norm_type) },
            "scale_grad_by_freq": c.scale_grad_by_freq,
            "freeze": c.freeze,
        });
        let meta = HashMap::from([(CONFIG_KEY.to_string(), config.to_string())]);
        safetensors::save(path.as_ref(), &[("weight", &self.weight())], meta)
    }

    /// Load a table saved by [`Embedding::save`] (or any safetensors file with a 2-D float
    /// tensor named `weight`; its config then defaults) onto `device`.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let (mut tensors, meta) = safetensors::load(path, device)?;
        let weight = tensors.remove("weight").ok_or_else(|| {
            Error::Format(format!("{}: no tensor named 'weight'", path.display()))
        })?;
        let config = match meta.get(CONFIG_KEY) {
            None => EmbeddingConfig::default(),
            Some(text) => parse_config(text).map_err(|m| {
                Error::Format(format!(
                    "{}: bad {CONFIG_KEY} metadata: {m}",
                    path.display()
                ))
            })?,
        };
        Embedding::from_pretrained(hugepages::table_copy(&weight)?, config)
    }
}

fn parse_config(text: &str) -> std::result::Result<EmbeddingConfig, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let opt_f64 = |k: &str| -> std::result::Result<Option<f64>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s == "inf" => Ok(Some(f64::INFINITY)),
            Some(x) => x.as_f64().map(Some).ok_or(format!("{k} is not a number")),
        }
    };
    let flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
    Ok(EmbeddingConfig {
        padding_idx: match obj.get("padding_idx") {
            None | Some(Value::Null) => None,
            Some(x) => Some(x.as_i64().ok_or("padding_idx is not an integer")?),
        },
        max_norm: opt_f64("max_norm")?,
        norm_type: opt_f64("norm_type")?.unwrap_or(2.0),
        scale_grad_by_freq: flag("scale_grad_by_freq"),
        freeze: flag("freeze"),
    })
}

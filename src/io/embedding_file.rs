//! `Embedding::save` / `Embedding::load` and the same for `EmbeddingBag`: the table as tensor
//! `weight` in a safetensors file, the config as JSON in its metadata (key
//! `candle_embed.config`; a bag adds `mode` and `include_last_offset`). Either loader reads the
//! other's files: the table and its shared options are the same.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::{json, Map, Value};

use crate::bag::{mode_name, parse_mode, BagMode, EmbeddingBagConfig};
use crate::io::safetensors;
use crate::{Embedding, EmbeddingBag, EmbeddingConfig, Error, Result};

const CONFIG_KEY: &str = "candle_embed.config";

impl Embedding {
    /// Save the table and its config to a safetensors file (atomically: temp file + rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_table(path.as_ref(), self, table_json(self, "Embedding"))
    }

    /// Load a table saved by [`Embedding::save`] (or any safetensors file with a 2-D float
    /// tensor named `weight`; its config then defaults) onto `device`.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let (weight, obj) = load_table(path.as_ref(), device)?;
        let config = parse_config(&obj).map_err(|m| bad_meta(path.as_ref(), m))?;
        Embedding::from_pretrained(weight, config)
    }
}

impl EmbeddingBag {
    /// Save the table and the bag's config to a safetensors file (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut config = table_json(self.embedding(), "EmbeddingBag");
        config.insert("mode".into(), mode_name(self.mode()).into());
        config.insert(
            "include_last_offset".into(),
            self.include_last_offset().into(),
        );
        save_table(path.as_ref(), self.embedding(), config)
    }

    /// Load a bag saved by [`EmbeddingBag::save`] onto `device`. A file without bag options
    /// (e.g. from [`Embedding::save`]) gets PyTorch's defaults: `mode="mean"`,
    /// `include_last_offset=False`; `scale_grad_by_freq` is the table's flag. A file that asks
    /// for `mode="max"` with `scale_grad_by_freq` is refused (`InvalidArgument`).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let (weight, obj) = load_table(path, device)?;
        let table = parse_config(&obj).map_err(|m| bad_meta(path, m))?;
        let mode = match obj.get("mode") {
            None | Some(Value::Null) => BagMode::Mean,
            Some(Value::String(m)) => parse_mode(m).map_err(|e| bad_meta(path, e.to_string()))?,
            Some(_) => return Err(bad_meta(path, "mode is not a string".into())),
        };
        let include_last_offset = match obj.get("include_last_offset") {
            None | Some(Value::Null) => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| bad_meta(path, "include_last_offset is not a bool".into()))?,
        };
        let config = EmbeddingBagConfig {
            mode,
            padding_idx: table.padding_idx,
            max_norm: table.max_norm,
            norm_type: table.norm_type,
            include_last_offset,
            scale_grad_by_freq: table.scale_grad_by_freq,
            freeze: table.freeze,
        };
        EmbeddingBag::from_pretrained(weight, config)
    }
}

/// The config every table file carries.
fn table_json(emb: &Embedding, kind: &str) -> Map<String, Value> {
    let c = emb.config();
    let norm_type = if c.norm_type.is_infinite() {
        Value::from("inf")
    } else {
        Value::from(c.norm_type)
    };
    let v = json!({
        "kind": kind,
        "num_embeddings": emb.num_embeddings(),
        "embedding_dim": emb.embedding_dim(),
        "padding_idx": emb.padding_idx(),
        "max_norm": c.max_norm,
        "norm_type": norm_type,
        "scale_grad_by_freq": c.scale_grad_by_freq,
        "freeze": c.freeze,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

fn save_table(path: &Path, emb: &Embedding, config: Map<String, Value>) -> Result<()> {
    let meta = HashMap::from([(CONFIG_KEY.to_string(), Value::Object(config).to_string())]);
    safetensors::save(path, &[("weight", &emb.weight())], meta)
}

/// The `weight` tensor and the config object (empty when the file has none). The constructors
/// place the table (`Embedding::from_pretrained`: huge pages for a large CPU table).
fn load_table(path: &Path, device: &Device) -> Result<(Tensor, Map<String, Value>)> {
    let (mut tensors, meta) = safetensors::load(path, device)?;
    let weight = tensors
        .remove("weight")
        .ok_or_else(|| Error::Format(format!("{}: no tensor named 'weight'", path.display())))?;
    let obj = match meta.get(CONFIG_KEY) {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(bad_meta(path, "not a JSON object".into())),
            Err(e) => return Err(bad_meta(path, e.to_string())),
        },
    };
    Ok((weight, obj))
}

fn bad_meta(path: &Path, msg: String) -> Error {
    Error::Format(format!(
        "{}: bad {CONFIG_KEY} metadata: {msg}",
        path.display()
    ))
}

fn parse_config(obj: &Map<String, Value>) -> std::result::Result<EmbeddingConfig, String> {
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

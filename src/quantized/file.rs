//! Quantized tables in safetensors files: the packed rows as tensor `packed` (uint8,
//! `(rows, row bytes)`: FBGEMM's fused layout, so the bytes are what its prepack ops produce) and
//! the options as JSON in the metadata key `candle_embed.config` (`bits`, `padding_idx`, and for
//! a bag `mode` and `include_last_offset`), as the float tables' files carry theirs. Either
//! loader reads the other's files.
//!
//! Loading maps the file read-only and checks its header against its length first (see
//! `mmap`), so a truncated or corrupted file is an [`Error::Format`]; without `mmap` the
//! rows are then copied into memory and every row's scale and bias is checked finite.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::format::Bits;
use super::table::QuantizedTable;
use super::{QuantizedEmbedding, QuantizedEmbeddingBag};
use crate::bag::mode_name;
use crate::io::embedding_file::{bad_meta, bag_config, config_object, CONFIG_KEY};
use crate::io::safetensors::{save_raw, RawTensor};
use crate::mmap::{MapMode, MappedFile};
use crate::{Error, Result};

/// The `format` value of our quantized files.
const FORMAT: &str = "fbgemm_fused_rowwise";

impl QuantizedEmbedding {
    /// Save the packed rows and options to a safetensors file, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_as(path.as_ref(), "QuantizedEmbedding", Map::new())
    }

    /// Save with the config of a `kind` table, `options` added to it.
    fn save_as(&self, path: &Path, kind: &str, options: Map<String, Value>) -> Result<()> {
        let mut config = config_json(self.table(), kind, self.padding_idx());
        config.extend(options);
        save(path, self.table(), config)
    }

    /// Load a table saved by [`QuantizedEmbedding::save`] (or [`QuantizedEmbeddingBag::save`]).
    /// `mmap`: read the rows in place from the file (read-only) instead of copying them.
    pub fn load(path: impl AsRef<Path>, mmap: bool) -> Result<Self> {
        let path = path.as_ref();
        let (table, obj) = open(path, mmap)?;
        let padding = bag_config(path, &obj)?.padding_idx;
        QuantizedEmbedding::new(table, padding).map_err(|e| in_file(path, e))
    }
}

impl QuantizedEmbeddingBag {
    /// Save the packed rows and the bag's options to a safetensors file, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let options = Map::from_iter([
            ("mode".into(), mode_name(self.mode()).into()),
            (
                "include_last_offset".into(),
                self.include_last_offset().into(),
            ),
        ]);
        let kind = "QuantizedEmbeddingBag";
        self.embedding().save_as(path.as_ref(), kind, options)
    }

    /// Load a bag saved by [`QuantizedEmbeddingBag::save`]; a file without bag options gets
    /// PyTorch's defaults (`mode="mean"`). `mmap` as for [`QuantizedEmbedding::load`].
    pub fn load(path: impl AsRef<Path>, mmap: bool) -> Result<Self> {
        let path = path.as_ref();
        let (table, obj) = open(path, mmap)?;
        let c = bag_config(path, &obj)?;
        QuantizedEmbeddingBag::new(table, c.mode, c.padding_idx, c.include_last_offset)
            .map_err(|e| in_file(path, e))
    }
}

fn config_json(table: &QuantizedTable, kind: &str, padding: Option<usize>) -> Map<String, Value> {
    let v = json!({
        "kind": kind,
        "format": FORMAT,
        "bits": table.bits().get(),
        "num_embeddings": table.rows(),
        "embedding_dim": table.dim(),
        "padding_idx": padding,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

fn save(path: &Path, table: &QuantizedTable, config: Map<String, Value>) -> Result<()> {
    let meta = HashMap::from([(CONFIG_KEY.to_string(), Value::Object(config).to_string())]);
    let shape = [table.rows(), table.layout().row_bytes()];
    table.with_bytes(|data| {
        let packed = RawTensor {
            name: "packed",
            dtype: safetensors::Dtype::U8,
            shape: &shape,
            data,
        };
        save_raw(path, &[packed], meta)
    })
}

/// A loader's error about a file's contents, naming the file.
fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::InvalidArgument(m) | Error::Shape(m) | Error::Format(m) => {
            Error::Format(format!("{}: {m}", path.display()))
        }
        other => other,
    }
}

/// The packed table of a file (mapped, or copied into memory and checked) and its config.
fn open(path: &Path, mmap: bool) -> Result<(QuantizedTable, Map<String, Value>)> {
    let file = MappedFile::open(path, MapMode::ReadOnly)?;
    let obj = config_object(path, &file.metadata())?;
    if let Some(f) = obj.get("format") {
        if f.as_str() != Some(FORMAT) {
            return Err(bad_meta(
                path,
                format!("format is {f}, expected \"{FORMAT}\""),
            ));
        }
    }
    let bits = match obj.get("bits").and_then(Value::as_u64) {
        Some(b) => Bits::new(b).map_err(|e| in_file(path, e))?,
        None => {
            return Err(bad_meta(
                path,
                "no integer 'bits': not a quantized table (a float table loads with \
                 Embedding.load)"
                    .into(),
            ))
        }
    };
    let table =
        QuantizedTable::from_mapped(file.tensor("packed")?, bits).map_err(|e| in_file(path, e))?;
    for (key, have) in [
        ("num_embeddings", table.rows()),
        ("embedding_dim", table.dim()),
    ] {
        if let Some(v) = obj.get(key) {
            if v.as_u64() != Some(have as u64) {
                return Err(bad_meta(
                    path,
                    format!("{key} is {v}, but the packed rows say {have}"),
                ));
            }
        }
    }
    if mmap {
        return Ok((table, obj));
    }
    // Copied into memory: now every row's scale and bias is checked (`from_packed`).
    let bytes = table.to_packed()?;
    let (rows, width) = (table.rows(), table.layout().row_bytes());
    let owned =
        QuantizedTable::from_packed(bytes, rows, width, bits).map_err(|e| in_file(path, e))?;
    Ok((owned, obj))
}

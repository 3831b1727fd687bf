//! Whole-model files: one safetensors file (no pickle) with the tables as tensors and the rest
//! as JSON metadata, enough to continue training exactly where it stopped.
//!
//! Tensors: `weight` (`syn0`, `(V, D)` f32, so `Embedding.load` and `KeyedVectors.load` read the
//! vectors of a model file too), `syn1neg` / `syn1` (when the model has them), `counts` (i64),
//! `sample_int` (u32), `vectors_lockf` (f32). Metadata: `candle_embed.vocab` (the words, a JSON
//! list, as word-vector files) and `candle_embed.word2vec` (format version, hyper-parameters,
//! the random-stream position and the caller's own JSON state). Loading checks every shape,
//! dtype and value range, so a forged file is a `Format` error, never a broken model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};

use super::model::{Model, Params};
use super::vocab::Vocab;
use crate::{Error, Result};

const VOCAB_KEY: &str = "candle_embed.vocab";
const MODEL_KEY: &str = "candle_embed.word2vec";
const VERSION: u64 = 1;

fn tensor<T: candle_core::WithDType>(v: &[T], shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_slice(v, shape, &Device::Cpu)?)
}

/// Save `model` and the caller's `state` (a JSON value) to `path`, atomically.
pub fn save(model: &Model, state: &Value, path: &Path) -> Result<()> {
    let (v, d) = (model.len(), model.params.vector_size);
    let p = &model.params;
    let counts: Vec<i64> = model
        .vocab
        .counts
        .iter()
        .map(|&c| i64::try_from(c).unwrap_or(i64::MAX))
        .collect();
    let mut tensors = vec![
        ("weight", tensor(&model.syn0, &[v, d])?),
        ("counts", tensor(&counts, &[v])?),
        ("sample_int", tensor(&model.vocab.sample_int, &[v])?),
        ("vectors_lockf", tensor(&model.lockf, &[model.lockf.len()])?),
    ];
    if !model.syn1neg.is_empty() {
        tensors.push(("syn1neg", tensor(&model.syn1neg, &[v, d])?));
    }
    if !model.syn1.is_empty() {
        tensors.push(("syn1", tensor(&model.syn1, &[v, d])?));
    }
    let meta = json!({
        "version": VERSION,
        "vector_size": d,
        "sg": p.sg,
        "hs": p.hs,
        "negative": p.negative,
        "cbow_mean": p.cbow_mean,
        "window": p.window,
        "shrink_windows": p.shrink_windows,
        "ns_exponent": p.ns_exponent,
        "seed": p.seed,
        "jobs_done": model.jobs_done,
        "state": state,
    });
    let words =
        serde_json::to_string(&model.vocab.words).map_err(|e| Error::invalid(e.to_string()))?;
    let metadata = HashMap::from([
        (VOCAB_KEY.to_string(), words),
        (MODEL_KEY.to_string(), meta.to_string()),
    ]);
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    crate::io::safetensors::save(path, &refs, metadata)
}

fn field<'a>(meta: &'a Value, key: &str) -> Result<&'a Value> {
    meta.get(key)
        .ok_or_else(|| Error::Format(format!("model metadata lacks {key:?}")))
}

fn uint(meta: &Value, key: &str) -> Result<u64> {
    field(meta, key)?
        .as_u64()
        .ok_or_else(|| Error::Format(format!("model metadata {key:?} is not an unsigned integer")))
}

fn flag(meta: &Value, key: &str) -> Result<bool> {
    field(meta, key)?
        .as_bool()
        .ok_or_else(|| Error::Format(format!("model metadata {key:?} is not a boolean")))
}

fn size(meta: &Value, key: &str) -> Result<usize> {
    usize::try_from(uint(meta, key)?)
        .map_err(|_| Error::Format(format!("model metadata {key:?} is too large")))
}

fn values<T: candle_core::WithDType>(
    tensors: &mut HashMap<String, Tensor>,
    name: &str,
    dtype: DType,
    shape: &[usize],
) -> Result<Vec<T>> {
    let t = tensors
        .remove(name)
        .ok_or_else(|| Error::Format(format!("the model file has no tensor {name:?}")))?;
    if t.dtype() != dtype || t.dims() != shape {
        return Err(Error::Format(format!(
            "tensor {name:?} is {:?} {:?}, expected {dtype:?} {shape:?}",
            t.dtype(),
            t.dims()
        )));
    }
    Ok(t.flatten_all()?.to_vec1::<T>()?)
}

/// Load a file written by [`save`]: the model and the caller's JSON state.
pub fn load(path: &Path) -> Result<(Model, Value)> {
    let (mut tensors, meta) = crate::io::safetensors::load(path, &Device::Cpu)?;
    let at = |e: Error| match e {
        Error::Format(m) => Error::Format(format!("{}: {m}", path.display())),
        other => other,
    };
    let m: Value = meta
        .get(MODEL_KEY)
        .ok_or_else(|| {
            Error::Format(format!(
                "no {MODEL_KEY} metadata: not a Word2Vec model file"
            ))
        })
        .and_then(|s| {
            serde_json::from_str(s).map_err(|e| Error::Format(format!("bad {MODEL_KEY}: {e}")))
        })
        .map_err(at)?;
    let words: Vec<String> = meta
        .get(VOCAB_KEY)
        .ok_or_else(|| Error::Format(format!("no {VOCAB_KEY} metadata")))
        .and_then(|s| {
            serde_json::from_str(s).map_err(|e| Error::Format(format!("bad word list: {e}")))
        })
        .map_err(at)?;
    (|| {
        if uint(&m, "version")? != VERSION {
            return Err(Error::Format(format!(
                "unknown model format version {}",
                m["version"]
            )));
        }
        let params = Params {
            vector_size: size(&m, "vector_size")?,
            sg: flag(&m, "sg")?,
            hs: flag(&m, "hs")?,
            negative: size(&m, "negative")?,
            cbow_mean: flag(&m, "cbow_mean")?,
            window: size(&m, "window")?,
            shrink_windows: flag(&m, "shrink_windows")?,
            ns_exponent: field(&m, "ns_exponent")?
                .as_f64()
                .ok_or_else(|| Error::Format("ns_exponent is not a number".into()))?,
            seed: uint(&m, "seed")?,
        };
        params
            .validate()
            .map_err(|e| Error::Format(format!("bad hyper-parameters: {e}")))?;
        let (v, d) = (words.len(), params.vector_size);
        let syn0 = values::<f32>(&mut tensors, "weight", DType::F32, &[v, d])?;
        let counts = values::<i64>(&mut tensors, "counts", DType::I64, &[v])?;
        let counts = counts
            .into_iter()
            .map(|c| u64::try_from(c).map_err(|_| Error::Format(format!("negative count {c}"))))
            .collect::<Result<Vec<u64>>>()?;
        let sample_int = values::<u32>(&mut tensors, "sample_int", DType::U32, &[v])?;
        let lockf_len = tensors
            .get("vectors_lockf")
            .map(|t| t.elem_count())
            .unwrap_or(0);
        if !(lockf_len == 1 || lockf_len == v) {
            return Err(Error::Format(format!(
                "vectors_lockf has {lockf_len} values, expected 1 or {v}"
            )));
        }
        let lockf = values::<f32>(&mut tensors, "vectors_lockf", DType::F32, &[lockf_len])?;
        let syn1neg = if params.negative > 0 {
            values::<f32>(&mut tensors, "syn1neg", DType::F32, &[v, d])?
        } else {
            Vec::new()
        };
        let syn1 = if params.hs {
            values::<f32>(&mut tensors, "syn1", DType::F32, &[v, d])?
        } else {
            Vec::new()
        };
        let vocab = Vocab::from_parts(words, counts, sample_int, params.ns_exponent)?;
        let jobs_done = uint(&m, "jobs_done")?;
        let model = Model::from_parts(params, vocab, [syn0, syn1, syn1neg], lockf, jobs_done)?;
        Ok((model, m.get("state").cloned().unwrap_or(Value::Null)))
    })()
    .map_err(at)
}

//! A `RotaryEmbedding(scaling=...)` dict (Hugging Face's `rope_parameters`) as the JSON value
//! `candle_embed::positional::rope_scaling` parses.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

use crate::errors::{type_error, value_error};

/// How deeply lists may nest inside a value (real parameters nest one level); deeper, or a
/// list that contains itself, is a `ValueError` instead of a stack overflow.
const MAX_DEPTH: usize = 16;

/// A Python value of the dict (bool, int, float, str, None, lists and tuples of them, NumPy
/// scalars and arrays) as JSON.
fn to_json(v: &Bound<'_, PyAny>, key: &str, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(value_error(format!(
            "scaling '{key}' nests deeper than {MAX_DEPTH} levels (or contains itself)"
        )));
    }
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(Value::from(i));
        }
        return finite(v.extract::<f64>().unwrap_or(f64::INFINITY), key);
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::String(s.extract::<String>().map_err(|e| {
            value_error(format!("scaling '{key}' is not a valid string: {e}"))
        })?));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in v.try_iter()? {
            out.push(to_json(&item?, key, depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    if v.is_instance_of::<PyFloat>() {
        return finite(v.extract()?, key);
    }
    // NumPy scalars and arrays: their Python equivalent.
    if v.hasattr("tolist")? {
        return to_json(&v.call_method0("tolist")?, key, depth + 1);
    }
    Err(type_error(format!(
        "scaling '{key}' has an unsupported type {}",
        v.get_type().name()?
    )))
}

/// A finite float as JSON (an int beyond f64 arrives here as infinity).
fn finite(f: f64, key: &str) -> PyResult<Value> {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| value_error(format!("scaling '{key}' must be finite, got {f}")))
}

/// The `scaling` argument (None or a dict of rope parameters with string keys) as JSON.
pub fn scaling_json(scaling: Option<&Bound<'_, PyAny>>) -> PyResult<Value> {
    let Some(s) = scaling.filter(|s| !s.is_none()) else {
        return Ok(Value::Null);
    };
    let dict = s.cast::<PyDict>().map_err(|_| {
        type_error(format!(
            "scaling must be a dict of rope parameters, got {}",
            s.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let mut map = serde_json::Map::new();
    for (k, v) in dict.iter() {
        let key: String = k
            .extract()
            .map_err(|_| type_error("scaling keys must be strings"))?;
        let value = to_json(&v, &key, 0)?;
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

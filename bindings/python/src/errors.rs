//! The one bridge from `candle_embed::Error` to Python exceptions. The classes live in
//! `candle_embed._errors` (each derives from `CandleEmbedError` *and* the builtin class).

use candle_embed::Error;
use pyo3::prelude::*;

/// Build an instance of `candle_embed._errors.<class>` carrying `msg`.
pub fn py_error(class: &str, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| {
        match py
            .import("candle_embed._errors")
            .and_then(|m| m.getattr(class))
            .and_then(|cls| cls.call1((msg.clone(),)))
        {
            Ok(instance) => PyErr::from_value(instance),
            Err(e) => e,
        }
    })
}

/// Map a core error to the Python exception its variant stands for.
pub fn to_py(e: Error) -> PyErr {
    let class = match &e {
        Error::IndexOutOfRange { .. } => "CandleEmbedIndexError",
        Error::DType(_) => "CandleEmbedTypeError",
        Error::Shape(_)
        | Error::InvalidArgument(_)
        | Error::UnsupportedDevice { .. }
        | Error::Format(_) => "CandleEmbedValueError",
        Error::Key(_) => "CandleEmbedKeyError",
        Error::Memory(_) => "CandleEmbedMemoryError",
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "CandleEmbedFileNotFoundError"
        }
        Error::Io { .. } => "CandleEmbedOSError",
        Error::Candle(_) => "CandleEmbedRuntimeError",
    };
    py_error(class, e.to_string())
}

/// `?`-friendly conversion: `core_call().py()?`.
pub trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for candle_embed::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

pub fn value_error(msg: impl Into<String>) -> PyErr {
    py_error("CandleEmbedValueError", msg)
}
pub fn type_error(msg: impl Into<String>) -> PyErr {
    py_error("CandleEmbedTypeError", msg)
}
pub fn index_error(msg: impl Into<String>) -> PyErr {
    py_error("CandleEmbedIndexError", msg)
}
pub fn key_error(msg: impl Into<String>) -> PyErr {
    py_error("CandleEmbedKeyError", msg)
}

//! The one way kernel work runs: with the GIL released and panics caught, so concurrent
//! Python threads run in parallel and no Rust panic ever reaches Python.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use pyo3::prelude::*;

use crate::errors::{runtime_error, to_py};

/// Run `f` without the GIL. A core error becomes its Python exception; a panic (a bug)
/// becomes `CandleEmbedRuntimeError` instead of aborting or raising `PanicException`.
pub fn without_gil<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> candle_embed::Result<T> + Send,
{
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(runtime_error(format!(
                "internal error in candle_embed (please report): {what}"
            )))
        }
    }
}

/// A constructor's core object built by `f` without the GIL (as [`without_gil`]) and shared:
/// every Python class holds its core object in an `Arc`, so methods clone it cheaply into the
/// closures they run without the GIL.
pub fn build_shared<T, F>(py: Python<'_>, f: F) -> PyResult<Arc<T>>
where
    T: Send,
    F: FnOnce() -> candle_embed::Result<T> + Send,
{
    without_gil(py, f).map(Arc::new)
}

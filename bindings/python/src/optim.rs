//! `candle_embed._native._SparseOptimizer`: the native half of `candle_embed.optim`, built
//! from one of the typed config classes (`config.rs`); the Python wrappers there give each
//! optimizer its own class and signature.

mod config;
mod state_dict;

use std::sync::{Arc, Mutex};

use candle_embed::optim::{Optimizer, Rule, SparseOptimizer};
use candle_embed::{Embedding, SparseGrad};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::embedding::PyEmbedding;
use crate::errors::type_error;
use crate::gil::without_gil;
use crate::sparse_grad::PySparseGrad;
use config::{
    PyAdagradConfig, PyAdamWConfig, PyRowWiseAdagradConfig, PySgdConfig, PySparseAdamConfig,
};

#[pyclass(frozen, name = "_SparseOptimizer", module = "candle_embed._native")]
pub struct PySparseOptimizer {
    inner: Arc<Mutex<Box<dyn SparseOptimizer>>>,
    kind: &'static str,
}

/// The core optimizer for one config, built without the GIL (the state allocation is large).
fn build<R: Rule>(
    py: Python<'_>,
    params: Vec<Arc<Embedding>>,
    config: R,
) -> PyResult<(Box<dyn SparseOptimizer>, &'static str)> {
    let opt = without_gil(py, || Optimizer::new(params, config))?;
    Ok((Box::new(opt), R::KIND))
}

#[pymethods]
impl PySparseOptimizer {
    /// `_SparseOptimizer(tables, config)`: `config` is an `SGDConfig`, `AdagradConfig`,
    /// `RowWiseAdagradConfig`, `SparseAdamConfig` or `AdamWConfig`.
    #[new]
    fn new(
        py: Python<'_>,
        tables: Vec<Bound<'_, PyEmbedding>>,
        config: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let params: Vec<Arc<Embedding>> = tables.iter().map(|t| t.get().inner.clone()).collect();
        let (opt, kind) = if let Ok(c) = config.cast::<PySgdConfig>() {
            build(py, params, c.get().0)?
        } else if let Ok(c) = config.cast::<PyAdagradConfig>() {
            build(py, params, c.get().0)?
        } else if let Ok(c) = config.cast::<PyRowWiseAdagradConfig>() {
            build(py, params, c.get().0)?
        } else if let Ok(c) = config.cast::<PySparseAdamConfig>() {
            build(py, params, c.get().0)?
        } else if let Ok(c) = config.cast::<PyAdamWConfig>() {
            build(py, params, c.get().0)?
        } else {
            return Err(type_error(
                "config must be one of the optimizer config classes",
            ));
        };
        Ok(PySparseOptimizer {
            inner: Arc::new(Mutex::new(opt)),
            kind,
        })
    }

    /// One update; `grads[i]` (a SparseGrad or None) belongs to table `i`.
    fn step(&self, py: Python<'_>, grads: &Bound<'_, PyList>) -> PyResult<()> {
        let mut held: Vec<Option<Bound<'_, PySparseGrad>>> = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            if g.is_none() {
                held.push(None);
            } else {
                let g = g.cast_into::<PySparseGrad>().map_err(|e| {
                    type_error(format!("gradient {i} must be a SparseGrad or None ({e})"))
                })?;
                held.push(Some(g));
            }
        }
        let refs: Vec<Option<&SparseGrad>> = held
            .iter()
            .map(|g| g.as_ref().map(|g| &g.get().inner))
            .collect();
        let inner = self.inner.clone();
        without_gil(py, move || {
            let mut opt = inner.lock().unwrap_or_else(|e| e.into_inner());
            opt.step(&refs)
        })
    }

    /// `{"kind": str, "step": [int per table], "state": [{name: ndarray} per table]}` (copies).
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = self.inner.clone();
        let sd = without_gil(py, move || {
            inner.lock().unwrap_or_else(|e| e.into_inner()).state_dict()
        })?;
        state_dict::to_py(py, &sd)
    }

    /// Replace the state by one returned from `state_dict` (validated completely first).
    fn load_state_dict(&self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let sd = state_dict::from_py(state)?;
        let inner = self.inner.clone();
        without_gil(py, move || {
            inner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .load_state_dict(&sd)
        })
    }

    #[getter]
    fn kind(&self) -> &str {
        self.kind
    }
}

/// Register `_SparseOptimizer` and the config classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySparseOptimizer>()?;
    config::register(m)
}

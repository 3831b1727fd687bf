//! `candle_embed._native._SparseOptimizer`: the native half of `candle_embed.optim` (the
//! Python wrappers there give each optimizer its own class and signature).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_embed::optim::{
    Adagrad, AdagradConfig, RowWiseAdagrad, RowWiseAdagradConfig, Sgd, SgdConfig, SparseAdam,
    SparseAdamConfig, SparseOptimizer, StateDict,
};
use candle_embed::{Embedding, SparseGrad};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::embedding::PyEmbedding;
use crate::errors::{type_error, value_error};
use crate::gil::without_gil;
use crate::sparse_grad::PySparseGrad;
use crate::tables::{numpy_to_tensor, tensor_to_numpy};

#[pyclass(frozen, name = "_SparseOptimizer", module = "candle_embed._native")]
pub struct PySparseOptimizer {
    inner: Arc<Mutex<Box<dyn SparseOptimizer>>>,
    kind: String,
}

fn take(h: &mut HashMap<String, f64>, key: &str, default: f64) -> f64 {
    h.remove(key).unwrap_or(default)
}

#[pymethods]
impl PySparseOptimizer {
    /// `_SparseOptimizer(kind, tables, hyper)`: kind is "SGD", "Adagrad", "RowWiseAdagrad" or
    /// "SparseAdam"; hyper maps hyper-parameter names to floats.
    #[new]
    fn new(
        py: Python<'_>,
        kind: &str,
        tables: Vec<Bound<'_, PyEmbedding>>,
        hyper: HashMap<String, f64>,
    ) -> PyResult<Self> {
        let params: Vec<Arc<Embedding>> = tables.iter().map(|t| t.get().inner.clone()).collect();
        let mut h = hyper;
        let opt: Box<dyn SparseOptimizer> = match kind {
            "SGD" => {
                let d = SgdConfig::default();
                let c = SgdConfig {
                    lr: take(&mut h, "lr", d.lr),
                    momentum: take(&mut h, "momentum", d.momentum),
                    weight_decay: take(&mut h, "weight_decay", d.weight_decay),
                };
                Box::new(without_gil(py, || Sgd::new(params, c))?)
            }
            "Adagrad" => {
                let d = AdagradConfig::default();
                let c = AdagradConfig {
                    lr: take(&mut h, "lr", d.lr),
                    lr_decay: take(&mut h, "lr_decay", d.lr_decay),
                    initial_accumulator_value: take(
                        &mut h,
                        "initial_accumulator_value",
                        d.initial_accumulator_value,
                    ),
                    eps: take(&mut h, "eps", d.eps),
                };
                Box::new(without_gil(py, || Adagrad::new(params, c))?)
            }
            "RowWiseAdagrad" => {
                let d = RowWiseAdagradConfig::default();
                let c = RowWiseAdagradConfig {
                    lr: take(&mut h, "lr", d.lr),
                    eps: take(&mut h, "eps", d.eps),
                };
                Box::new(without_gil(py, || RowWiseAdagrad::new(params, c))?)
            }
            "SparseAdam" => {
                let d = SparseAdamConfig::default();
                let c = SparseAdamConfig {
                    lr: take(&mut h, "lr", d.lr),
                    beta1: take(&mut h, "beta1", d.beta1),
                    beta2: take(&mut h, "beta2", d.beta2),
                    eps: take(&mut h, "eps", d.eps),
                };
                Box::new(without_gil(py, || SparseAdam::new(params, c))?)
            }
            other => return Err(value_error(format!("unknown optimizer kind '{other}'"))),
        };
        if let Some(k) = h.keys().next() {
            return Err(value_error(format!("unknown hyper-parameter '{k}' for {kind}")));
        }
        Ok(PySparseOptimizer {
            inner: Arc::new(Mutex::new(opt)),
            kind: kind.to_string(),
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
        let d = PyDict::new(py);
        d.set_item("kind", &sd.kind)?;
        d.set_item("step", sd.steps.clone())?;
        let state = PyList::empty(py);
        for bufs in &sd.buffers {
            let b = PyDict::new(py);
            for (name, t) in bufs {
                b.set_item(name, tensor_to_numpy(py, t)?)?;
            }
            state.append(b)?;
        }
        d.set_item("state", state)?;
        Ok(d)
    }

    /// Replace the state by one returned from `state_dict` (validated completely first).
    fn load_state_dict(&self, py: Python<'_>, state: &Bound<'_, PyDict>) -> PyResult<()> {
        let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
            state
                .get_item(k)?
                .ok_or_else(|| value_error(format!("state_dict lacks '{k}'")))
        };
        let kind: String = get("kind")?
            .extract()
            .map_err(|_| type_error("state_dict['kind'] must be a str"))?;
        let steps: Vec<u64> = get("step")?
            .extract()
            .map_err(|_| type_error("state_dict['step'] must be a list of non-negative ints"))?;
        let mut buffers = Vec::new();
        for (i, item) in get("state")?.try_iter()?.enumerate() {
            let item = item?;
            let b = item
                .cast::<PyDict>()
                .map_err(|_| type_error(format!("state_dict['state'][{i}] must be a dict")))?;
            let mut bufs = Vec::new();
            for (k, v) in b.iter() {
                let name: String = k.extract()?;
                bufs.push((name.clone(), numpy_to_tensor(&v, &name)?));
            }
            buffers.push(bufs);
        }
        let sd = StateDict {
            kind,
            steps,
            buffers,
        };
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
        &self.kind
    }
}

//! `SparseAdam`, PyTorch's rule (`torch.optim.SparseAdam`): with `t` the table's global step
//! count (incremented on every step that has a gradient for it) and `idx` the gradient's rows,
//!
//! ```text
//! m[idx] += (1-β1)(g - m[idx]);   v[idx] += (1-β2)(g² - v[idx])
//! w[idx] -= lr·sqrt(1-β2^t)/(1-β1^t) · m[idx] / (sqrt(v[idx]) + eps)
//! ```
//!
//! Moments of untouched rows stay stale ("lazy Adam").

use std::sync::Arc;

use candle_core::Tensor;

use super::state::{self, AccElem, Buf, ParamState, Slot, StateDict};
use super::touched::{for_each_touched_row, step_tables, Prepared};
use super::{check_hyper, check_params, SparseOptimizer};
use crate::dtype::Float;
use crate::embedding::Embedding;
use crate::sparse::SparseGrad;
use crate::{with_table, Result};

/// Hyper-parameters of [`SparseAdam`] (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseAdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for SparseAdamConfig {
    fn default() -> Self {
        SparseAdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Lazy Adam over sparse gradients.
pub struct SparseAdam {
    params: Vec<Arc<Embedding>>,
    pub config: SparseAdamConfig,
    states: Vec<ParamState>,
}

impl SparseAdam {
    pub fn new(params: Vec<Arc<Embedding>>, config: SparseAdamConfig) -> Result<Self> {
        check_params(&params)?;
        let c = config;
        check_hyper("lr", c.lr, c.lr >= 0.0)?;
        check_hyper("beta1", c.beta1, (0.0..1.0).contains(&c.beta1))?;
        check_hyper("beta2", c.beta2, (0.0..1.0).contains(&c.beta2))?;
        check_hyper("eps", c.eps, c.eps >= 0.0)?;
        let mut states = Vec::with_capacity(params.len());
        for p in &params {
            let shape = vec![p.num_embeddings(), p.embedding_dim()];
            let n = shape[0] * shape[1];
            let acc = state::acc_dtype(p.dtype());
            let slot = |name| -> Result<Slot> {
                Ok(Slot {
                    name,
                    shape: shape.clone(),
                    buf: Buf::filled(acc, n, 0.0)?,
                })
            };
            states.push(ParamState {
                step: 0,
                slots: vec![slot("exp_avg")?, slot("exp_avg_sq")?],
            });
        }
        Ok(SparseAdam {
            params,
            config,
            states,
        })
    }
}

fn update<T: Float, A: AccElem>(
    w: &Tensor,
    pg: &Prepared,
    slots: &mut [Slot],
    c: &SparseAdamConfig,
    step_size: f64,
) -> Result<()> {
    let (omb1, omb2) = (A::of_f64(1.0 - c.beta1), A::of_f64(1.0 - c.beta2));
    let (eps, ss) = (A::of_f64(c.eps), A::of_f64(step_size));
    for_each_touched_row::<T, A>(w, pg, slots, |wrow, grow, state| {
        let [mrow, vrow] = state.take::<2>();
        for j in 0..wrow.len() {
            let gj = grow[j];
            let m_new = mrow[j] + (gj - mrow[j]) * omb1;
            let v_new = vrow[j] + (gj * gj - vrow[j]) * omb2;
            mrow[j] = m_new;
            vrow[j] = v_new;
            let wj = A::of_f64(wrow[j].as_f64());
            let upd = ss * (m_new / (v_new.sqrt() + eps));
            wrow[j] = T::of_f64((wj - upd).as_f64());
        }
    })
}

impl SparseOptimizer for SparseAdam {
    fn step(&mut self, grads: &[Option<&SparseGrad>]) -> Result<()> {
        let c = self.config;
        step_tables(&self.params, &mut self.states, grads, |w, pg, st| {
            let t = st.step as f64;
            let bc1 = 1.0 - c.beta1.powf(t);
            let bc2 = 1.0 - c.beta2.powf(t);
            let step_size = c.lr * bc2.sqrt() / bc1;
            with_table!(w.dtype(), T, A => update::<T, A>(w, pg, &mut st.slots, &c, step_size))
        })
    }
    fn params(&self) -> &[Arc<Embedding>] {
        &self.params
    }
    fn state_dict(&self) -> Result<StateDict> {
        state::save("SparseAdam", &self.states)
    }
    fn load_state_dict(&mut self, dict: &StateDict) -> Result<()> {
        state::load("SparseAdam", &mut self.states, dict)
    }
}

//! `Adagrad` with PyTorch's sparse rule (`torch.optim.Adagrad`, sparse gradient): with `t` the
//! table's step count and `idx` the gradient's rows,
//!
//! ```text
//! clr = lr / (1 + (t-1)·lr_decay)
//! sum[idx] += g²;   w[idx] -= clr · g / (sqrt(sum[idx]) + eps)
//! ```
//!
//! `sum` starts at `initial_accumulator_value`. Weight decay is not offered: PyTorch refuses it
//! with sparse gradients (it would make the update dense).

// `x = x + y`: the generic `Float` element types do not promise `AddAssign`.
#![allow(clippy::assign_op_pattern)]

use std::sync::Arc;

use candle_core::Tensor;

use super::state::{self, AccElem, Buf, ParamState, Slot, StateDict};
use super::touched::{for_each_touched_row, step_tables, Prepared};
use super::{check_hyper, check_params, SparseOptimizer};
use crate::dtype::Float;
use crate::embedding::Embedding;
use crate::sparse::SparseGrad;
use crate::{with_table, Result};

/// Hyper-parameters of [`Adagrad`] (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    pub lr: f64,
    pub lr_decay: f64,
    pub initial_accumulator_value: f64,
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 0.01,
            lr_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

/// Element-wise Adagrad over sparse gradients.
pub struct Adagrad {
    params: Vec<Arc<Embedding>>,
    pub config: AdagradConfig,
    states: Vec<ParamState>,
}

impl Adagrad {
    pub fn new(params: Vec<Arc<Embedding>>, config: AdagradConfig) -> Result<Self> {
        check_params(&params)?;
        let c = config;
        check_hyper("lr", c.lr, c.lr >= 0.0)?;
        check_hyper("lr_decay", c.lr_decay, c.lr_decay >= 0.0)?;
        check_hyper(
            "initial_accumulator_value",
            c.initial_accumulator_value,
            c.initial_accumulator_value >= 0.0,
        )?;
        check_hyper("eps", c.eps, c.eps >= 0.0)?;
        let mut states = Vec::with_capacity(params.len());
        for p in &params {
            let shape = vec![p.num_embeddings(), p.embedding_dim()];
            let acc = state::acc_dtype(p.dtype());
            let buf = Buf::filled(acc, shape[0] * shape[1], c.initial_accumulator_value)?;
            states.push(ParamState {
                step: 0,
                slots: vec![Slot {
                    name: "sum",
                    shape,
                    buf,
                }],
            });
        }
        Ok(Adagrad {
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
    eps: f64,
    clr: f64,
) -> Result<()> {
    let (eps, clr) = (A::of_f64(eps), A::of_f64(clr));
    for_each_touched_row::<T, A>(w, pg, slots, |wrow, grow, state| {
        let [srow] = state.take::<1>();
        for j in 0..wrow.len() {
            let gj = grow[j];
            srow[j] = srow[j] + gj * gj;
            let std = srow[j].sqrt() + eps;
            let wj = A::of_f64(wrow[j].as_f64());
            wrow[j] = T::of_f64((wj - clr * (gj / std)).as_f64());
        }
    })
}

impl SparseOptimizer for Adagrad {
    fn step(&mut self, grads: &[Option<&SparseGrad>]) -> Result<()> {
        let c = self.config;
        step_tables(&self.params, &mut self.states, grads, |w, pg, st| {
            let clr = c.lr / (1.0 + (st.step - 1) as f64 * c.lr_decay);
            with_table!(w.dtype(), T, A => update::<T, A>(w, pg, &mut st.slots, c.eps, clr))
        })
    }
    fn params(&self) -> &[Arc<Embedding>] {
        &self.params
    }
    fn state_dict(&self) -> Result<StateDict> {
        state::save("Adagrad", &self.states)
    }
    fn load_state_dict(&mut self, dict: &StateDict) -> Result<()> {
        state::load("Adagrad", &mut self.states, dict)
    }
}

//! `SGD` over sparse gradients, updating only the gradient's rows `idx`:
//!
//! ```text
//! g' = g + weight_decay · w[idx]                 (weight decay applied lazily, touched rows only)
//! buf[idx] = momentum · buf[idx] + g';  d = buf[idx]   (when momentum > 0; buf starts at zero)
//! w[idx] -= lr · d                               (d = g' without momentum)
//! ```
//!
//! The momentum buffer is per row: a row's buffer decays only on the steps that touch it.

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

/// Hyper-parameters of [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            weight_decay: 0.0,
        }
    }
}

/// Stochastic gradient descent over sparse gradients.
pub struct Sgd {
    params: Vec<Arc<Embedding>>,
    pub config: SgdConfig,
    states: Vec<ParamState>,
}

impl Sgd {
    pub fn new(params: Vec<Arc<Embedding>>, config: SgdConfig) -> Result<Self> {
        check_params(&params)?;
        let c = config;
        check_hyper("lr", c.lr, c.lr >= 0.0)?;
        check_hyper("momentum", c.momentum, c.momentum >= 0.0)?;
        check_hyper("weight_decay", c.weight_decay, c.weight_decay >= 0.0)?;
        let mut states = Vec::with_capacity(params.len());
        for p in &params {
            let mut slots = Vec::new();
            if c.momentum != 0.0 {
                let shape = vec![p.num_embeddings(), p.embedding_dim()];
                let acc = state::acc_dtype(p.dtype());
                let buf = Buf::filled(acc, shape[0] * shape[1], 0.0)?;
                slots.push(Slot {
                    name: "momentum_buffer",
                    shape,
                    buf,
                });
            }
            states.push(ParamState { step: 0, slots });
        }
        Ok(Sgd {
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
    c: &SgdConfig,
) -> Result<()> {
    let (lr, mom, wd) = (
        A::of_f64(c.lr),
        A::of_f64(c.momentum),
        A::of_f64(c.weight_decay),
    );
    let decay = c.weight_decay != 0.0;
    let momentum = !slots.is_empty();
    for_each_touched_row::<T, A>(w, pg, slots, |wrow, grow, state| {
        let mut buf = momentum.then(|| {
            let [b] = state.take::<1>();
            b
        });
        for j in 0..wrow.len() {
            let wj = A::of_f64(wrow[j].as_f64());
            let mut d = grow[j];
            if decay {
                d = d + wd * wj;
            }
            if let Some(b) = buf.as_deref_mut() {
                b[j] = mom * b[j] + d;
                d = b[j];
            }
            wrow[j] = T::of_f64((wj - lr * d).as_f64());
        }
    })
}

impl SparseOptimizer for Sgd {
    fn step(&mut self, grads: &[Option<&SparseGrad>]) -> Result<()> {
        let c = self.config;
        step_tables(
            &self.params,
            &mut self.states,
            grads,
            |w, pg, st| with_table!(w.dtype(), T, A => update::<T, A>(w, pg, &mut st.slots, &c)),
        )
    }
    fn params(&self) -> &[Arc<Embedding>] {
        &self.params
    }
    fn state_dict(&self) -> Result<StateDict> {
        state::save("SGD", &self.states)
    }
    fn load_state_dict(&mut self, dict: &StateDict) -> Result<()> {
        state::load("SGD", &mut self.states, dict)
    }
}

//! `RowWiseAdagrad`, FBGEMM's rule (`EXACT_ROWWISE_ADAGRAD`): one accumulator per row,
//!
//! ```text
//! acc[r] += mean_j(g[r, j]²);   w[r, :] -= lr · g[r, :] / (sqrt(acc[r]) + eps)
//! ```
//!
//! The state is `(num_embeddings,)`: D times smaller than element-wise Adagrad's.

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

/// Hyper-parameters of [`RowWiseAdagrad`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowWiseAdagradConfig {
    pub lr: f64,
    pub eps: f64,
}

impl Default for RowWiseAdagradConfig {
    fn default() -> Self {
        RowWiseAdagradConfig {
            lr: 0.01,
            eps: 1e-10,
        }
    }
}

/// Row-wise Adagrad over sparse gradients.
pub struct RowWiseAdagrad {
    params: Vec<Arc<Embedding>>,
    pub config: RowWiseAdagradConfig,
    states: Vec<ParamState>,
}

impl RowWiseAdagrad {
    pub fn new(params: Vec<Arc<Embedding>>, config: RowWiseAdagradConfig) -> Result<Self> {
        check_params(&params)?;
        check_hyper("lr", config.lr, config.lr >= 0.0)?;
        check_hyper("eps", config.eps, config.eps >= 0.0)?;
        let mut states = Vec::with_capacity(params.len());
        for p in &params {
            let acc = state::acc_dtype(p.dtype());
            states.push(ParamState {
                step: 0,
                slots: vec![Slot {
                    name: "sum",
                    shape: vec![p.num_embeddings()],
                    buf: Buf::filled(acc, p.num_embeddings(), 0.0)?,
                }],
            });
        }
        Ok(RowWiseAdagrad {
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
    c: &RowWiseAdagradConfig,
) -> Result<()> {
    let (lr, eps) = (A::of_f64(c.lr), A::of_f64(c.eps));
    let inv_dim = A::of_f64(1.0 / w.dims2()?.1.max(1) as f64);
    for_each_touched_row::<T, A>(w, pg, slots, |wrow, grow, state| {
        let [acc] = state.take::<1>();
        let acc = &mut acc[0];
        let mut sq = A::of_f64(0.0);
        for &gj in grow {
            sq = sq + gj * gj;
        }
        *acc = *acc + sq * inv_dim;
        let mult = lr / (acc.sqrt() + eps);
        for (wj, &gj) in wrow.iter_mut().zip(grow) {
            let x = A::of_f64(wj.as_f64());
            *wj = T::of_f64((x - mult * gj).as_f64());
        }
    })
}

impl SparseOptimizer for RowWiseAdagrad {
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
        state::save("RowWiseAdagrad", &self.states)
    }
    fn load_state_dict(&mut self, dict: &StateDict) -> Result<()> {
        state::load("RowWiseAdagrad", &mut self.states, dict)
    }
}

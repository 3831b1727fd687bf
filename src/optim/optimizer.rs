//! [`Optimizer`]: the one shell every sparse optimizer shares. A rule (its config type, see
//! [`Rule`]) states the per-row update and the state layout; the shell owns the tables and
//! their state, checks everything before the first write, and saves / restores state dicts.

use std::sync::Arc;

use super::load;
use super::rounding;
use super::rule::Rule;
use super::state::{self, ParamState, StateDict};
use super::touched::{for_each_touched_row, step_tables};
use super::SparseOptimizer;
use crate::embedding::Embedding;
use crate::sparse::SparseGrad;
use crate::{Error, Result};

/// Call `$body` with `$T` the table's element type and `$A` its accumulator type.
macro_rules! with_table {
    ($dtype:expr, $T:ident, $A:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $T = f32;
                type $A = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $T = f64;
                type $A = f64;
                $body
            }
            candle_core::DType::F16 => {
                type $T = half::f16;
                type $A = f32;
                $body
            }
            candle_core::DType::BF16 => {
                type $T = half::bf16;
                type $A = f32;
                $body
            }
            other => Err(Error::DType(format!("unsupported table dtype {other:?}"))),
        }
    };
}

/// A sparse optimizer over tables (CPU, or any device through the host):
/// `Optimizer<SgdConfig>` ([`Sgd`](super::Sgd)) and so on. Tables and state are only written by `step` and `load_state_dict`, and only after
/// every check passed.
pub struct Optimizer<R: Rule> {
    params: Vec<Arc<Embedding>>,
    config: R,
    states: Vec<ParamState>,
}

impl<R: Rule> Optimizer<R> {
    /// An optimizer over `params` (unfrozen tables) with zeroed step counts and state
    /// buffers at their initial values.
    pub fn new(params: Vec<Arc<Embedding>>, config: R) -> Result<Self> {
        check_params(&params)?;
        config.check()?;
        let specs = config.slots();
        let states = params
            .iter()
            .map(|p| ParamState::new(p.num_embeddings(), p.embedding_dim(), p.dtype(), &specs))
            .collect::<Result<Vec<_>>>()?;
        Ok(Optimizer {
            params,
            config,
            states,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &R {
        &self.config
    }

    /// Replace the hyper-parameters between steps (a learning-rate schedule, say). The new
    /// config is checked as at construction and must keep the same state buffers (SGD cannot
    /// gain or lose its momentum buffer); on error nothing changes.
    pub fn set_config(&mut self, config: R) -> Result<()> {
        config.check()?;
        if config.slots() != self.config.slots() {
            return Err(Error::InvalidArgument(format!(
                "the new {} config needs other state buffers than the current one",
                R::KIND
            )));
        }
        self.config = config;
        Ok(())
    }
}

impl<R: Rule> SparseOptimizer for Optimizer<R> {
    fn step(&mut self, grads: &[Option<&SparseGrad>]) -> Result<()> {
        let c = self.config;
        let o = *c.options();
        step_tables(
            &self.params,
            &mut self.states,
            grads,
            o.maximize,
            |i, w, pg, st| {
                let dim = w.embedding_dim();
                let key = o
                    .stochastic_rounding
                    .then(|| rounding::step_key(o.seed, i, st.step));
                with_table!(w.dtype(), T, A => {
                    let k = c.at_step::<A>(st.step, dim);
                    for_each_touched_row::<T, A>(w, pg, &mut st.slots, key, |row, g, slots| {
                        R::update_row::<T, A>(&k, row, g, slots)
                    })
                })
            },
        )
    }
    fn params(&self) -> &[Arc<Embedding>] {
        &self.params
    }
    fn state_dict(&self) -> Result<StateDict> {
        state::save(R::KIND, &self.states)
    }
    fn load_state_dict(&mut self, dict: &StateDict) -> Result<()> {
        load::load(R::KIND, &mut self.states, dict)
    }
}

/// Refuse frozen tables (at construction). Tables on any device are accepted: those off the
/// CPU are stepped through the host (`touched`), with the same rule and the same bits.
fn check_params(params: &[Arc<Embedding>]) -> Result<()> {
    for (i, p) in params.iter().enumerate() {
        if p.is_frozen() {
            return Err(Error::InvalidArgument(format!(
                "parameter {i} is a frozen table ({}) and cannot be optimized",
                p.frozen_reason()
            )));
        }
    }
    Ok(())
}

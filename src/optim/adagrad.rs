//! `Adagrad` with PyTorch's rule (`torch.optim.Adagrad`) on the gradient's rows `idx`, with
//! `t` the table's step count:
//!
//! ```text
//! g' = g + weight_decay · w[idx]       (weight decay applied lazily, touched rows only)
//! clr = lr / (1 + (t-1)·lr_decay)
//! sum[idx] += g'²;   w[idx] -= clr · g' / (sqrt(sum[idx]) + eps)
//! ```
//!
//! `g` is the gradient, negated first under `maximize`; `sum` starts at
//! `initial_accumulator_value`. PyTorch refuses `weight_decay` with sparse gradients (its
//! dense form would touch every row); here it applies to the touched rows only, as SGD's
//! does, and equals PyTorch's dense rule on a step that touches every row.

// `x = x + y`: the generic `Float` element types do not promise `AddAssign`.
#![allow(clippy::assign_op_pattern)]

use super::rule::{check_hyper, Rule, StepOptions};
use super::state::AccElem;
use super::state::{Layout, SlotSpec};
use super::touched::SlotRows;
use super::{Optimizer, WeightRow};
use crate::dtype::Float;
use crate::Result;

/// Hyper-parameters of [`Adagrad`] (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (>= 0).
    pub lr: f64,
    /// Learning-rate decay per step (>= 0).
    pub lr_decay: f64,
    /// L2 penalty added to the gradient of touched rows (>= 0).
    pub weight_decay: f64,
    /// Initial value of every element of `sum` (>= 0).
    pub initial_accumulator_value: f64,
    /// Added to the denominator (>= 0).
    pub eps: f64,
    /// `maximize`, stochastic rounding and its seed.
    pub options: StepOptions,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 0.01,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            options: StepOptions::default(),
        }
    }
}

/// Element-wise Adagrad over sparse gradients.
pub type Adagrad = Optimizer<AdagradConfig>;

/// [`AdagradConfig`]'s constants of one step in the accumulator type.
pub struct AdagradStep<A> {
    clr: A,
    eps: A,
    weight_decay: A,
    decay: bool,
}

impl Rule for AdagradConfig {
    const KIND: &'static str = "Adagrad";
    type Step<A: AccElem> = AdagradStep<A>;

    fn check(&self) -> Result<()> {
        check_hyper("lr", self.lr, self.lr >= 0.0)?;
        check_hyper("lr_decay", self.lr_decay, self.lr_decay >= 0.0)?;
        check_hyper("weight_decay", self.weight_decay, self.weight_decay >= 0.0)?;
        let init = self.initial_accumulator_value;
        check_hyper("initial_accumulator_value", init, init >= 0.0)?;
        check_hyper("eps", self.eps, self.eps >= 0.0)
    }

    fn options(&self) -> &StepOptions {
        &self.options
    }

    fn slots(&self) -> Vec<SlotSpec> {
        vec![SlotSpec {
            name: "sum",
            layout: Layout::PerElement,
            init: self.initial_accumulator_value,
            nonnegative: true,
        }]
    }

    fn at_step<A: AccElem>(&self, t: u64, _dim: usize) -> AdagradStep<A> {
        let clr = self.lr / (1.0 + (t - 1) as f64 * self.lr_decay);
        AdagradStep {
            clr: A::of_f64(clr),
            eps: A::of_f64(self.eps),
            weight_decay: A::of_f64(self.weight_decay),
            decay: self.weight_decay != 0.0,
        }
    }

    fn update_row<T: Float, A: AccElem>(
        k: &AdagradStep<A>,
        w: &mut WeightRow<'_, T>,
        g: &[A],
        state: SlotRows<'_, A>,
    ) {
        let [sum] = state.take::<1>();
        for j in 0..w.len() {
            let wj: A = w.get(j);
            let mut gj = g[j];
            if k.decay {
                gj = gj + k.weight_decay * wj;
            }
            sum[j] = sum[j] + gj * gj;
            let std = sum[j].sqrt() + k.eps;
            w.set(j, wj - k.clr * (gj / std));
        }
    }
}

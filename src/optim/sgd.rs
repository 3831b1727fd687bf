//! `SGD` over sparse gradients, PyTorch's rule (`torch.optim.SGD`) applied to the gradient's
//! rows `idx` only, with `t` the table's step count:
//!
//! ```text
//! g' = g + weight_decay · w[idx]                  (weight decay applied lazily, touched rows only)
//! buf[idx] = g'                                   (t = 1: PyTorch's buffer starts as the first g')
//! buf[idx] = momentum · buf[idx] + (1 - dampening) · g'          (t > 1)
//! d = g' + momentum · buf[idx]  (nesterov)   or   d = buf[idx]   (when momentum > 0)
//! w[idx] -= lr · d                                (d = g' without momentum)
//! ```
//!
//! `g` is the gradient, negated first under `maximize`. The momentum buffer is per row: a row's
//! buffer decays only on the steps that touch it (PyTorch's dense buffer also decays, and
//! keeps moving the row, on steps whose gradient row is zero). A row first touched at `t > 1`
//! starts from a zero buffer, as it would in PyTorch's dense buffer. `nesterov` needs
//! `momentum > 0` and `dampening == 0` (PyTorch's check).

// `x = x + y`: the generic `Float` element types do not promise `AddAssign`.
#![allow(clippy::assign_op_pattern)]

use super::rule::{check_hyper, Rule, StepOptions};
use super::state::AccElem;
use super::state::{Layout, SlotSpec};
use super::touched::SlotRows;
use super::{Optimizer, WeightRow};
use crate::dtype::Float;
use crate::{Error, Result};

/// Hyper-parameters of [`Sgd`] (PyTorch's defaults but `lr`, which PyTorch requires).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (>= 0).
    pub lr: f64,
    /// Momentum factor (>= 0; 0 keeps no buffer).
    pub momentum: f64,
    /// Dampening of the gradient's share in the momentum buffer (finite).
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// L2 penalty added to the gradient of touched rows (>= 0).
    pub weight_decay: f64,
    /// `maximize`, stochastic rounding and its seed.
    pub options: StepOptions,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            options: StepOptions::default(),
        }
    }
}

/// Stochastic gradient descent over sparse gradients.
pub type Sgd = Optimizer<SgdConfig>;

/// [`SgdConfig`]'s constants of one step in the accumulator type.
pub struct SgdStep<A> {
    lr: A,
    momentum: A,
    one_minus_dampening: A,
    weight_decay: A,
    decay: bool,
    has_buffer: bool,
    first_step: bool,
    nesterov: bool,
}

impl Rule for SgdConfig {
    const KIND: &'static str = "SGD";
    type Step<A: AccElem> = SgdStep<A>;

    fn check(&self) -> Result<()> {
        check_hyper("lr", self.lr, self.lr >= 0.0)?;
        check_hyper("momentum", self.momentum, self.momentum >= 0.0)?;
        check_hyper("dampening", self.dampening, true)?;
        check_hyper("weight_decay", self.weight_decay, self.weight_decay >= 0.0)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::InvalidArgument(
                "Nesterov momentum requires a momentum and zero dampening".into(),
            ));
        }
        Ok(())
    }

    fn options(&self) -> &StepOptions {
        &self.options
    }

    fn slots(&self) -> Vec<SlotSpec> {
        if self.momentum == 0.0 {
            return Vec::new();
        }
        vec![SlotSpec {
            name: "momentum_buffer",
            layout: Layout::PerElement,
            init: 0.0,
            nonnegative: false,
        }]
    }

    fn at_step<A: AccElem>(&self, t: u64, _dim: usize) -> SgdStep<A> {
        SgdStep {
            lr: A::of_f64(self.lr),
            momentum: A::of_f64(self.momentum),
            one_minus_dampening: A::of_f64(1.0 - self.dampening),
            weight_decay: A::of_f64(self.weight_decay),
            decay: self.weight_decay != 0.0,
            has_buffer: self.momentum != 0.0,
            first_step: t == 1,
            nesterov: self.nesterov,
        }
    }

    fn update_row<T: Float, A: AccElem>(
        k: &SgdStep<A>,
        w: &mut WeightRow<'_, T>,
        g: &[A],
        state: SlotRows<'_, A>,
    ) {
        let mut buf = k.has_buffer.then(|| {
            let [b] = state.take::<1>();
            b
        });
        for j in 0..w.len() {
            let wj: A = w.get(j);
            let mut d = g[j];
            if k.decay {
                d = d + k.weight_decay * wj;
            }
            if let Some(b) = buf.as_deref_mut() {
                b[j] = if k.first_step {
                    d
                } else {
                    k.momentum * b[j] + k.one_minus_dampening * d
                };
                d = if k.nesterov {
                    d + k.momentum * b[j]
                } else {
                    b[j]
                };
            }
            w.set(j, wj - k.lr * d);
        }
    }
}

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

use super::rule::{check_hyper, Layout, Rule, SlotSpec};
use super::state::AccElem;
use super::touched::SlotRows;
use super::Optimizer;
use crate::dtype::Float;
use crate::Result;

/// Hyper-parameters of [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (>= 0).
    pub lr: f64,
    /// Momentum factor (>= 0; 0 keeps no buffer).
    pub momentum: f64,
    /// L2 penalty added to the gradient of touched rows (>= 0).
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
pub type Sgd = Optimizer<SgdConfig>;

/// [`SgdConfig`]'s constants in the accumulator type.
pub struct SgdStep<A> {
    lr: A,
    momentum: A,
    weight_decay: A,
    decay: bool,
    has_buffer: bool,
}

impl Rule for SgdConfig {
    const KIND: &'static str = "SGD";
    type Step<A: AccElem> = SgdStep<A>;

    fn check(&self) -> Result<()> {
        check_hyper("lr", self.lr, self.lr >= 0.0)?;
        check_hyper("momentum", self.momentum, self.momentum >= 0.0)?;
        check_hyper("weight_decay", self.weight_decay, self.weight_decay >= 0.0)
    }

    fn slots(&self) -> Vec<SlotSpec> {
        if self.momentum == 0.0 {
            return Vec::new();
        }
        vec![SlotSpec {
            name: "momentum_buffer",
            layout: Layout::PerElement,
            init: 0.0,
        }]
    }

    fn at_step<A: AccElem>(&self, _t: u64, _dim: usize) -> SgdStep<A> {
        SgdStep {
            lr: A::of_f64(self.lr),
            momentum: A::of_f64(self.momentum),
            weight_decay: A::of_f64(self.weight_decay),
            decay: self.weight_decay != 0.0,
            has_buffer: self.momentum != 0.0,
        }
    }

    fn update_row<T: Float, A: AccElem>(
        k: &SgdStep<A>,
        w: &mut [T],
        g: &[A],
        state: SlotRows<'_, A>,
    ) {
        let mut buf = k.has_buffer.then(|| {
            let [b] = state.take::<1>();
            b
        });
        for j in 0..w.len() {
            let wj = A::of_f64(w[j].as_f64());
            let mut d = g[j];
            if k.decay {
                d = d + k.weight_decay * wj;
            }
            if let Some(b) = buf.as_deref_mut() {
                b[j] = k.momentum * b[j] + d;
                d = b[j];
            }
            w[j] = T::of_f64((wj - k.lr * d).as_f64());
        }
    }
}

//! `RowWiseAdagrad`, FBGEMM's rule (`EXACT_ROWWISE_ADAGRAD`): one accumulator per row,
//!
//! ```text
//! acc[r] += mean_j(g[r, j]²);   w[r, :] -= lr · g[r, :] / (sqrt(acc[r]) + eps)
//! ```
//!
//! The state is `(num_embeddings,)`: D times smaller than element-wise Adagrad's. `g` is the
//! gradient, negated first under `maximize`.

// `x = x + y`: the generic `Float` element types do not promise `AddAssign`.
#![allow(clippy::assign_op_pattern)]

use super::rule::{check_hyper, Rule, StepOptions};
use super::state::AccElem;
use super::state::{Layout, SlotSpec};
use super::touched::SlotRows;
use super::{Optimizer, WeightRow};
use crate::dtype::Float;
use crate::Result;

/// Hyper-parameters of [`RowWiseAdagrad`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowWiseAdagradConfig {
    /// Learning rate (>= 0).
    pub lr: f64,
    /// Added to the denominator (>= 0).
    pub eps: f64,
    /// `maximize`, stochastic rounding and its seed.
    pub options: StepOptions,
}

impl Default for RowWiseAdagradConfig {
    fn default() -> Self {
        RowWiseAdagradConfig {
            lr: 0.01,
            eps: 1e-10,
            options: StepOptions::default(),
        }
    }
}

/// Row-wise Adagrad over sparse gradients.
pub type RowWiseAdagrad = Optimizer<RowWiseAdagradConfig>;

/// [`RowWiseAdagradConfig`]'s constants in the accumulator type.
pub struct RowWiseAdagradStep<A> {
    lr: A,
    eps: A,
    inv_dim: A,
}

impl Rule for RowWiseAdagradConfig {
    const KIND: &'static str = "RowWiseAdagrad";
    type Step<A: AccElem> = RowWiseAdagradStep<A>;

    fn check(&self) -> Result<()> {
        check_hyper("lr", self.lr, self.lr >= 0.0)?;
        check_hyper("eps", self.eps, self.eps >= 0.0)
    }

    fn options(&self) -> &StepOptions {
        &self.options
    }

    fn slots(&self) -> Vec<SlotSpec> {
        vec![SlotSpec {
            name: "sum",
            layout: Layout::PerRow,
            init: 0.0,
            nonnegative: true,
        }]
    }

    fn at_step<A: AccElem>(&self, _t: u64, dim: usize) -> RowWiseAdagradStep<A> {
        RowWiseAdagradStep {
            lr: A::of_f64(self.lr),
            eps: A::of_f64(self.eps),
            inv_dim: A::of_f64(1.0 / dim.max(1) as f64),
        }
    }

    fn update_row<T: Float, A: AccElem>(
        k: &RowWiseAdagradStep<A>,
        w: &mut WeightRow<'_, T>,
        g: &[A],
        state: SlotRows<'_, A>,
    ) {
        let [acc] = state.take::<1>();
        let acc = &mut acc[0];
        let mut sq = A::of_f64(0.0);
        for &gj in g {
            sq = sq + gj * gj;
        }
        *acc = *acc + sq * k.inv_dim;
        let mult = k.lr / (acc.sqrt() + k.eps);
        for (j, &gj) in g.iter().enumerate() {
            let x: A = w.get(j);
            w.set(j, x - mult * gj);
        }
    }
}

//! `AdamW` over sparse gradients: PyTorch's AdamW (`torch.optim.AdamW`, decoupled weight
//! decay) on the touched rows, with the decay of the steps a row skipped applied when it is
//! next touched. With `t` the table's step count, `idx` the gradient's rows and `last[r]` the
//! last step that touched row `r` (0: never),
//!
//! ```text
//! k = t - last[idx];   last[idx] = t
//! w[idx] *= (1 - lr·weight_decay)^k              (k decays: this step's and the skipped ones')
//! m[idx] += (1-β1)(g - m[idx]);   v[idx] = β2·v[idx] + (1-β2)·g²
//! w[idx] -= lr/(1-β1^t) · m[idx] / (sqrt(v[idx])/sqrt(1-β2^t) + eps)
//! ```
//!
//! The decay is exact: a row touched every `k`-th step ends with the weight it would have had
//! under dense AdamW's per-step `w *= 1 - lr·weight_decay` (for a constant `lr`), and a row
//! touched every step follows dense AdamW step for step. The moments follow SparseAdam's lazy
//! rule: only touched rows update them, and untouched rows keep stale moments (dense AdamW
//! would keep moving a row on its moments alone). `g` is the gradient, negated first under
//! `maximize`. A row never touched again keeps its pending decay until it is.

// `x = x + y`: the generic `Float` element types do not promise `AddAssign`.
#![allow(clippy::assign_op_pattern)]

use super::adam::{check_adam, moment_slots, SparseAdamConfig};
use super::rule::{check_hyper, Rule, StepOptions};
use super::state::AccElem;
use super::state::{Layout, SlotSpec};
use super::touched::SlotRows;
use super::{Optimizer, WeightRow};
use crate::dtype::Float;
use crate::Result;

/// Hyper-parameters of [`AdamW`] (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate (>= 0).
    pub lr: f64,
    /// Decay rates `(β1, β2)` of the first and second moments, each in `[0, 1)`.
    pub betas: (f64, f64),
    /// Added to the denominator (>= 0).
    pub eps: f64,
    /// Decoupled weight decay (>= 0): each step multiplies a row by `1 - lr·weight_decay`.
    pub weight_decay: f64,
    /// `maximize`, stochastic rounding and its seed.
    pub options: StepOptions,
}

impl Default for AdamWConfig {
    /// PyTorch's AdamW defaults: Adam's `lr`, `betas` and `eps` (SparseAdam's), and
    /// `weight_decay = 1e-2`.
    fn default() -> Self {
        let SparseAdamConfig {
            lr,
            betas,
            eps,
            options,
        } = SparseAdamConfig::default();
        AdamWConfig {
            lr,
            betas,
            eps,
            weight_decay: 1e-2,
            options,
        }
    }
}

/// Sparse AdamW with exact lazy weight decay.
pub type AdamW = Optimizer<AdamWConfig>;

/// [`AdamWConfig`]'s constants of one step.
pub struct AdamWStep<A> {
    t: u64,
    /// `1 - lr·weight_decay`, in f64: raised to the number of steps a row skipped.
    decay: f64,
    one_minus_beta1: A,
    beta2: A,
    one_minus_beta2: A,
    step_size: A,
    bias_correction2_sqrt: A,
    eps: A,
}

impl Rule for AdamWConfig {
    const KIND: &'static str = "AdamW";
    type Step<A: AccElem> = AdamWStep<A>;

    fn check(&self) -> Result<()> {
        check_adam(self.lr, self.betas, self.eps)?;
        check_hyper("weight_decay", self.weight_decay, self.weight_decay >= 0.0)
    }

    fn options(&self) -> &StepOptions {
        &self.options
    }

    fn slots(&self) -> Vec<SlotSpec> {
        let mut slots = moment_slots();
        slots.push(SlotSpec {
            name: "last_step",
            layout: Layout::LastStep,
            init: 0.0,
            nonnegative: true,
        });
        slots
    }

    fn at_step<A: AccElem>(&self, t: u64, _dim: usize) -> AdamWStep<A> {
        let (beta1, beta2) = self.betas;
        let bias_correction1 = 1.0 - beta1.powf(t as f64);
        let bias_correction2 = 1.0 - beta2.powf(t as f64);
        AdamWStep {
            t,
            decay: 1.0 - self.lr * self.weight_decay,
            one_minus_beta1: A::of_f64(1.0 - beta1),
            beta2: A::of_f64(beta2),
            one_minus_beta2: A::of_f64(1.0 - beta2),
            step_size: A::of_f64(self.lr / bias_correction1),
            bias_correction2_sqrt: A::of_f64(bias_correction2.sqrt()),
            eps: A::of_f64(self.eps),
        }
    }

    fn update_row<T: Float, A: AccElem>(
        k: &AdamWStep<A>,
        w: &mut WeightRow<'_, T>,
        g: &[A],
        state: SlotRows<'_, A>,
    ) {
        let ([m, v], last) = state.take_with_last_step::<2>();
        // Loaded states are checked to have last <= step (saturating keeps a bug from wrapping),
        // and step counts stay below 2^53, so `skipped` is exact in f64.
        let skipped = k.t.saturating_sub(*last);
        *last = k.t;
        let factor = A::of_f64(k.decay.powf(skipped as f64));
        for j in 0..w.len() {
            let gj = g[j];
            let wj = w.get::<A>(j) * factor;
            m[j] = m[j] + (gj - m[j]) * k.one_minus_beta1;
            v[j] = k.beta2 * v[j] + k.one_minus_beta2 * (gj * gj);
            let denom = v[j].sqrt() / k.bias_correction2_sqrt + k.eps;
            w.set(j, wj - k.step_size * (m[j] / denom));
        }
    }
}

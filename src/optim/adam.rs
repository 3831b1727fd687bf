//! `SparseAdam`, PyTorch's rule (`torch.optim.SparseAdam`): with `t` the table's global step
//! count (incremented on every step that has a gradient for it) and `idx` the gradient's rows,
//!
//! ```text
//! m[idx] += (1-β1)(g - m[idx]);   v[idx] += (1-β2)(g² - v[idx])
//! w[idx] -= lr·sqrt(1-β2^t)/(1-β1^t) · m[idx] / (sqrt(v[idx]) + eps)
//! ```
//!
//! Moments of untouched rows stay stale ("lazy Adam"). `g` is the gradient, negated first
//! under `maximize` (PyTorch's `maximize`).

use super::rule::{check_hyper, Rule, StepOptions};
use super::state::AccElem;
use super::state::{Layout, SlotSpec};
use super::touched::SlotRows;
use super::{Optimizer, WeightRow};
use crate::dtype::Float;
use crate::Result;

/// Hyper-parameters of [`SparseAdam`] (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseAdamConfig {
    /// Learning rate (>= 0).
    pub lr: f64,
    /// Decay rates `(β1, β2)` of the first and second moments, each in `[0, 1)`.
    pub betas: (f64, f64),
    /// Added to the denominator (>= 0).
    pub eps: f64,
    /// `maximize`, stochastic rounding and its seed.
    pub options: StepOptions,
}

impl Default for SparseAdamConfig {
    fn default() -> Self {
        SparseAdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            options: StepOptions::default(),
        }
    }
}

/// Lazy Adam over sparse gradients.
pub type SparseAdam = Optimizer<SparseAdamConfig>;

/// [`SparseAdamConfig`]'s constants of one step in the accumulator type.
pub struct SparseAdamStep<A> {
    one_minus_beta1: A,
    one_minus_beta2: A,
    eps: A,
    step_size: A,
}

/// Refuse a negative `lr`, betas outside `[0, 1)` or a negative `eps`, in that order (shared
/// with AdamW).
pub(crate) fn check_adam(lr: f64, (beta1, beta2): (f64, f64), eps: f64) -> Result<()> {
    check_hyper("lr", lr, lr >= 0.0)?;
    check_hyper("beta1", beta1, (0.0..1.0).contains(&beta1))?;
    check_hyper("beta2", beta2, (0.0..1.0).contains(&beta2))?;
    check_hyper("eps", eps, eps >= 0.0)
}

/// The two moment buffers of Adam, PyTorch's names (shared with AdamW).
pub(crate) fn moment_slots() -> Vec<SlotSpec> {
    let slot = |name, nonnegative| SlotSpec {
        name,
        layout: Layout::PerElement,
        init: 0.0,
        nonnegative,
    };
    vec![slot("exp_avg", false), slot("exp_avg_sq", true)]
}

impl Rule for SparseAdamConfig {
    const KIND: &'static str = "SparseAdam";
    type Step<A: AccElem> = SparseAdamStep<A>;

    fn check(&self) -> Result<()> {
        check_adam(self.lr, self.betas, self.eps)
    }

    fn options(&self) -> &StepOptions {
        &self.options
    }

    fn slots(&self) -> Vec<SlotSpec> {
        moment_slots()
    }

    fn at_step<A: AccElem>(&self, t: u64, _dim: usize) -> SparseAdamStep<A> {
        let (beta1, beta2) = self.betas;
        let t = t as f64;
        let bias_correction1 = 1.0 - beta1.powf(t);
        let bias_correction2 = 1.0 - beta2.powf(t);
        SparseAdamStep {
            one_minus_beta1: A::of_f64(1.0 - beta1),
            one_minus_beta2: A::of_f64(1.0 - beta2),
            eps: A::of_f64(self.eps),
            step_size: A::of_f64(self.lr * bias_correction2.sqrt() / bias_correction1),
        }
    }

    fn update_row<T: Float, A: AccElem>(
        k: &SparseAdamStep<A>,
        w: &mut WeightRow<'_, T>,
        g: &[A],
        state: SlotRows<'_, A>,
    ) {
        let [m, v] = state.take::<2>();
        for j in 0..w.len() {
            let gj = g[j];
            let m_new = m[j] + (gj - m[j]) * k.one_minus_beta1;
            let v_new = v[j] + (gj * gj - v[j]) * k.one_minus_beta2;
            m[j] = m_new;
            v[j] = v_new;
            let wj: A = w.get(j);
            let upd = k.step_size * (m_new / (v_new.sqrt() + k.eps));
            w.set(j, wj - upd);
        }
    }
}

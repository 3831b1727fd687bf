//! The contract of one sparse optimizer: its hyper-parameters (the config struct, whose
//! `Default` holds the defaults every layer shows), the layout of its per-table state, and
//! the update of one touched row. [`Optimizer`](super::Optimizer) supplies everything else
//! (construction, gradient checks, the parallel walk over touched rows, state dicts).

use std::fmt::Debug;

use super::rounding::WeightRow;
use super::state::{AccElem, SlotSpec};
use super::touched::SlotRows;
use crate::dtype::Float;
use crate::Result;

/// Options every optimizer takes (a field `options` of each config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepOptions {
    /// Ascend instead of descend: the gradient is negated before the rule sees it (PyTorch's
    /// `maximize`, applied as PyTorch applies it: before weight decay and momentum).
    pub maximize: bool,
    /// Round each updated f16/bf16 element to the table dtype stochastically (FBGEMM's rule,
    /// see `rounding`) instead of to nearest. f32 and f64 tables are unaffected.
    pub stochastic_rounding: bool,
    /// Seed of the rounding's random bits (with the table's index, its step count and the
    /// row, so a run is reproducible for any thread count).
    pub seed: u64,
}

/// A sparse optimizer's rule, implemented by its config struct: `Optimizer<SgdConfig>` is
/// SGD. The rule sees one touched row at a time; rows are independent, so a step gives the
/// same bits for any thread count.
pub trait Rule: Copy + Default + Debug + Send + Sync + 'static {
    /// The optimizer's name in state dicts ("SGD", "Adagrad", ...).
    const KIND: &'static str;

    /// Constants of one step of one table, in the accumulator type `A` (computed once per
    /// table and step, then shared by every row).
    type Step<A: AccElem>: Sync;

    /// Refuse out-of-range hyper-parameters (`Error::InvalidArgument`).
    fn check(&self) -> Result<()>;

    /// The options shared by every optimizer.
    fn options(&self) -> &StepOptions;

    /// The state buffers of each table, in the order `update_row` takes them.
    fn slots(&self) -> Vec<SlotSpec>;

    /// The constants of step `t` (the table's step count, 1 on its first step) for a table of
    /// `dim` columns.
    fn at_step<A: AccElem>(&self, t: u64, dim: usize) -> Self::Step<A>;

    /// Update one touched row: `w` is the table row (read and written in the accumulator
    /// type), `g` its coalesced gradient row (already negated under `maximize`), `state` the
    /// row of each slot.
    fn update_row<T: Float, A: AccElem>(
        k: &Self::Step<A>,
        w: &mut WeightRow<'_, T>,
        g: &[A],
        state: SlotRows<'_, A>,
    );
}

/// `Error::InvalidArgument` unless `v` is finite and `ok` holds.
pub(crate) fn check_hyper(name: &str, v: f64, ok: bool) -> Result<()> {
    if !v.is_finite() || !ok {
        return Err(crate::Error::InvalidArgument(format!(
            "invalid {name}: {v}"
        )));
    }
    Ok(())
}

//! Sparse optimizers: update only the rows present in a [`SparseGrad`], in place, on many
//! threads. Untouched rows (and their optimizer state) stay bit-identical.
//!
//! Rules (see each module): [`Sgd`] (momentum, dampening, Nesterov, lazy weight decay),
//! [`Adagrad`] (PyTorch's rule, lazy weight decay), [`RowWiseAdagrad`] (FBGEMM: one
//! accumulator per row), [`SparseAdam`] (PyTorch's: a global step count, moments of untouched
//! rows left stale), [`AdamW`] (decoupled weight decay made exact for skipped steps:
//! `w *= (1 - lr·weight_decay)^k` when a row is touched `k` steps after its last touch).
//!
//! Every optimizer takes [`StepOptions`]: `maximize` (the gradient is negated before the
//! rule, as PyTorch does) and `stochastic_rounding` with its `seed` (see [`rounding`]).
//!
//! Math runs in the table's accumulator type (f64 for f64 tables, f32 otherwise) and so does
//! the state, so f16/bf16 tables keep f32 moments; each updated element is rounded once, when
//! it is stored back into the table.
//!
//! Locking: a step writes each table through `storage::write` (candle's storage write lock);
//! lookups read through `storage::read` (its read lock). A step and a concurrent lookup thus
//! serialize per table: a lookup sees every row either before or after the step, never torn.
//! The optimizer state itself lives behind `&mut self` (the Python wrapper holds a mutex).
//!
//! Every check (frozen table, CPU device, gradient count and shapes, state shapes) happens
//! before the first row is written, so a failed step leaves tables and state unchanged.
//!
//! Layout: each optimizer is one file holding its config (whose `Default` is the one home of
//! its defaults) and its [`Rule`]: the per-row update and the state it keeps. Everything else
//! is shared: [`Optimizer`] (construction, `step`, state dicts), `touched` (the parallel walk
//! over a gradient's rows) and `state` (buffers and [`StateDict`]).

pub mod adagrad;
pub mod adam;
pub mod adamw;
mod load;
mod optimizer;
pub mod rounding;
pub mod rowwise_adagrad;
mod rule;
pub mod sgd;
mod state;
mod touched;

use std::sync::Arc;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{SparseAdam, SparseAdamConfig};
pub use adamw::{AdamW, AdamWConfig};
pub use optimizer::Optimizer;
pub use rounding::WeightRow;
pub use rowwise_adagrad::{RowWiseAdagrad, RowWiseAdagradConfig};
pub use rule::{Rule, StepOptions};
pub use sgd::{Sgd, SgdConfig};
pub use state::{AccElem, Buf, StateDict, MAX_STEP};
pub use state::{Layout, SlotSpec};
pub use touched::SlotRows;

use crate::embedding::Embedding;
use crate::sparse::SparseGrad;
use crate::Result;

/// What every sparse optimizer offers.
pub trait SparseOptimizer: Send {
    /// One update: `grads[i]` belongs to `params()[i]`; `None` skips that table this step.
    fn step(&mut self, grads: &[Option<&SparseGrad>]) -> Result<()>;
    /// The tables being optimized.
    fn params(&self) -> &[Arc<Embedding>];
    /// A copy of the full state (step counts and buffers), enough to resume bit-identically.
    fn state_dict(&self) -> Result<StateDict>;
    /// Replace the state with `state` (validated completely first).
    fn load_state_dict(&mut self, state: &StateDict) -> Result<()>;
}

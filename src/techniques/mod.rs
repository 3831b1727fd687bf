//! The embedding techniques practitioners combine with a table: weight tying (`attend`), whole-word
//! dropout, unit-norm rows. Each is an `impl Embedding` block built on the crate's kernels.
//!
//! Dropout and normalisation are per-row factors, so the forward is one fused gather
//! (`y[k] = s(ids[k], W[ids[k]]) * W[ids[k]]`) and the backward transforms the upstream rows
//! ([`Embedding::transform_grad`](crate::Embedding::transform_grad)) before the plain lookup backward sums them per row.

pub mod attend;
pub mod dropout;
pub mod lookup;
pub mod normalize;

pub use dropout::WordDropout;
pub use lookup::RowTransform;

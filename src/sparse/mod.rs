//! Sparse row gradients: the backward of a lookup kept as (unique rows, one summed row each).

pub mod grad;

pub use grad::SparseGrad;

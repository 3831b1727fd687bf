//! Sparse row gradients: the backward of a lookup kept as (unique rows, one summed row each),
//! the coalescing and scatter-add kernels behind it. The lookup's own backward and the bridge to
//! candle's autograd live with the table (`embedding::backward`, `embedding::TrainLookup`).

pub mod coalesce;
pub mod grad;
pub mod scatter;

pub use coalesce::{coalesce_portable, coalesce_rows, coalesce_to_grad, CoalesceOptions};
pub use grad::SparseGrad;
pub use scatter::{index_add, index_add_into, index_add_portable, index_add_to};

//! `Embedding::backward`: the gradient of a lookup w.r.t. the table, kept sparse.
//!
//! Math: with `y[i, :] = W[ids[i], :]` and upstream `g[i, :] = dL/dy[i, :]`,
//! `dL/dW[u, :] = sum_{i : ids[i] = u} g[i, :]` (divided by the count of `u` in this call when
//! `scale_grad_by_freq`); the `padding_idx` row gets nothing. The result is a coalesced
//! [`SparseGrad`] of shape `(num_embeddings, embedding_dim)`: O(ids), never O(table).
//!
//! [`Embedding::backward_rows`] is the core: it takes the gradient w.r.t. the looked-up rows
//! (one row per id), so wrappers that transform rows after the lookup (dropout, normalisation)
//! compute their own row gradient and pass it in.

use candle_core::{Device, Tensor};

use crate::dtype::Float;
use crate::embedding::Embedding;
use crate::ids::Id;
use crate::sparse::coalesce::{coalesce_portable, coalesce_to_grad, CoalesceOptions};
use crate::sparse::SparseGrad;
use crate::{with_float, Error, Result};

impl Embedding {
    fn coalesce_options(&self) -> CoalesceOptions {
        CoalesceOptions {
            skip: self.padding_idx(),
            scale_by_count: self.config().scale_grad_by_freq,
        }
    }

    /// Sparse gradient from the gradient w.r.t. the looked-up rows: `row_grads` holds
    /// `ids.len() * embedding_dim` elements (row `i` belongs to `ids[i]`). CPU fast path.
    pub fn backward_rows<I: Id, T: Float>(&self, ids: &[I], row_grads: &[T]) -> Result<SparseGrad> {
        let dim = self.embedding_dim();
        self.check_rows(ids.len(), row_grads.len(), "grad_output")?;
        coalesce_to_grad(
            ids,
            row_grads,
            dim,
            self.num_embeddings(),
            self.coalesce_options(),
        )
    }

    /// Same as [`Embedding::backward_rows`], the grad given as `ids.shape + (D,)` elements.
    pub fn backward<I: Id, T: Float>(&self, ids: &[I], grad_output: &[T]) -> Result<SparseGrad> {
        self.backward_rows(ids, grad_output)
    }

    /// Portable path (candle ops on `row_grads`' device): `row_grads` is `(ids.len(), D)`.
    pub fn backward_portable<I: Id>(&self, ids: &[I], row_grads: &Tensor) -> Result<SparseGrad> {
        let (_, d) = row_grads.dims2()?;
        if d != self.embedding_dim() {
            return Err(Error::Shape(format!(
                "grad rows have {d} columns, the table has {}",
                self.embedding_dim()
            )));
        }
        coalesce_portable(
            ids,
            row_grads,
            self.num_embeddings(),
            self.coalesce_options(),
        )
    }

    /// Backward for candle users: `grad_output` of shape `ids.shape + (D,)` on any device.
    /// CPU takes the fast path; other devices the portable one.
    pub fn backward_tensor(&self, ids: &[i64], grad_output: &Tensor) -> Result<SparseGrad> {
        let dim = self.embedding_dim();
        if grad_output.elem_count() != ids.len() * dim
            || grad_output.dims().last().copied() != Some(dim)
        {
            return Err(Error::Shape(format!(
                "grad_output has shape {:?}, expected {} ids x {dim}",
                grad_output.dims(),
                ids.len()
            )));
        }
        let rows = grad_output.reshape((ids.len(), dim))?;
        if !matches!(rows.device(), Device::Cpu) {
            return self.backward_portable(ids, &rows);
        }
        let rows = rows.contiguous()?;
        with_float!(rows.dtype(), T => {
            crate::storage::read::<T, Result<SparseGrad>>(&rows, |g| self.backward_rows(ids, g))?
        })
    }
}

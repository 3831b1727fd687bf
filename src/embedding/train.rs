//! Sparse training with candle's autograd: look rows up as a [`Var`], run any candle model on
//! them, and turn the rows' gradient into a [`SparseGrad`] for a sparse optimizer.
//!
//! ```no_run
//! # use candle_embed::{Embedding, embedding::TrainLookup};
//! # fn demo(emb: &Embedding, ids: &[i64]) -> candle_embed::Result<()> {
//! let look = TrainLookup::new(emb, ids, &[ids.len()])?;      // rows as a Var
//! let loss = look.rows().sqr()?.mean_all()?;                  // any candle model
//! let grads = loss.backward()?;                               // candle autograd
//! let g = look.sparse_grad(emb, &grads)?;                     // coalesced SparseGrad
//! # Ok(()) }
//! ```
//!
//! Only the looked-up rows become a variable, so the backward costs O(ids x D), never the
//! O(table) of candle's own `index_select` gradient (a dense zeros table plus `index_add`).

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::embedding::Embedding;
use crate::sparse::SparseGrad;
use crate::Result;

/// Rows of a table looked up for training: the ids and a [`Var`] holding the rows.
#[derive(Debug)]
pub struct TrainLookup {
    ids: Vec<i64>,
    rows: Var,
}

impl TrainLookup {
    /// Look `ids` (shape `shape`) up in `emb`; the rows (`shape + (D,)`) become a fresh `Var`.
    pub fn new(emb: &Embedding, ids: &[i64], shape: &[usize]) -> Result<Self> {
        let rows = emb.lookup_portable_or_fast(ids, shape)?;
        Ok(TrainLookup {
            ids: ids.to_vec(),
            rows: Var::from_tensor(&rows)?,
        })
    }

    /// The looked-up rows, tracked by candle's autograd.
    pub fn rows(&self) -> &Tensor {
        self.rows.as_tensor()
    }

    /// The ids, flattened.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// The table's sparse gradient from a backward pass (empty if the rows did not take part).
    pub fn sparse_grad(&self, emb: &Embedding, grads: &GradStore) -> Result<SparseGrad> {
        match grads.get(self.rows.as_tensor()) {
            Some(g) => emb.backward_tensor(&self.ids, g),
            None => SparseGrad::empty(
                emb.num_embeddings(),
                emb.embedding_dim(),
                emb.dtype(),
                &emb.device(),
            ),
        }
    }
}

impl Embedding {
    /// Rows at `ids` as a tensor of shape `shape + (D,)`: the fast path on CPU, else candle's.
    pub fn lookup_portable_or_fast(&self, ids: &[i64], shape: &[usize]) -> Result<Tensor> {
        if self.device().is_cpu() {
            let t = Tensor::from_slice(ids, shape, &candle_core::Device::Cpu)?;
            self.lookup_tensor(&t)
        } else {
            self.lookup_portable(ids, shape)
        }
    }
}

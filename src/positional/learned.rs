//! Learned absolute positions: an [`Embedding`] over positions `0..max_len`, added to a sequence.
//!
//! Math: `y[..., t, :] = x[..., t, :] + W[offset + t, :]` for `x` of shape `(..., T, dim)`.
//! Backward: `dW[offset + t, :] = Σ_leading grad[..., t, :]`, a coalesced [`SparseGrad`] over the
//! `T` position rows (already sorted and unique). The table is an `Arc<Embedding>` so optimizers
//! (and Python's `.embedding`) update the very table the forward reads.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::common::{
    add_table_rows, add_table_rows_portable, check_span, split_seq_shape, sum_leading,
};
use crate::alloc::try_collect;
use crate::dtype::Float;
use crate::{Embedding, EmbeddingConfig, Error, Result, SparseGrad};

/// A learned absolute position table.
#[derive(Clone, Debug)]
pub struct LearnedPositionalEmbedding {
    embedding: Arc<Embedding>,
}

impl LearnedPositionalEmbedding {
    /// A `(max_len, dim)` table initialised N(0, 1) from `seed` (as `nn.Embedding`).
    pub fn new(
        max_len: usize,
        dim: usize,
        dtype: DType,
        device: &Device,
        seed: Option<u64>,
    ) -> Result<Self> {
        let e = Embedding::new(
            max_len,
            dim,
            EmbeddingConfig::default(),
            dtype,
            device,
            seed,
        )?;
        Ok(Self::from_embedding(Arc::new(e)))
    }

    /// Wrap an existing table (shared, not copied).
    pub fn from_embedding(embedding: Arc<Embedding>) -> Self {
        LearnedPositionalEmbedding { embedding }
    }

    /// The position table (shared).
    pub fn embedding(&self) -> &Arc<Embedding> {
        &self.embedding
    }
    /// Number of positions (rows of the table).
    pub fn max_len(&self) -> usize {
        self.embedding.num_embeddings()
    }
    /// The encoding size (columns of the table).
    pub fn dim(&self) -> usize {
        self.embedding.embedding_dim()
    }

    /// CPU fast path: `out = x + W[offset..offset+T]`, `x` of `shape` `(..., T, dim)`, `T` the
    /// table's element type.
    pub fn add_into<T: Float>(
        &self,
        x: &[T],
        shape: &[usize],
        offset: i64,
        out: &mut [T],
    ) -> Result<()> {
        let w = self.embedding.weight();
        add_table_rows(&w, x, shape, offset, out, "a learned position table")
    }

    /// Portable path: `x + W.narrow(0, offset, T)` with candle ops on the table's device.
    pub fn forward(&self, x: &Tensor, offset: i64) -> Result<Tensor> {
        let w = self.embedding.weight();
        add_table_rows_portable(&w, x, offset, "a learned position table")
    }

    /// The gradient of the table given `grad` (shape `(..., T, dim)`, elements `T`): the rows
    /// `offset..offset+T`, each the sum of `grad[..., t, :]` over the leading dims.
    pub fn backward<T: Float>(
        &self,
        grad: &[T],
        shape: &[usize],
        offset: i64,
    ) -> Result<SparseGrad> {
        let dim = self.dim();
        let (lead, t) = split_seq_shape(shape, dim, "grad")?;
        let off = check_span(offset, t, self.max_len(), "a learned position table")?;
        if grad.len() != lead * t * dim {
            return Err(Error::shape("grad and shape disagree in size"));
        }
        let values = sum_leading(grad, lead, t, dim)?;
        let values = Tensor::from_vec(values, (t, dim), &Device::Cpu)?
            .to_dtype(self.embedding.dtype())?
            .to_device(&self.embedding.device())?;
        let indices = try_collect((off..off + t).map(|p| p as i64))?;
        SparseGrad::new(indices, values, self.max_len())
    }
}

impl candle_core::Module for LearnedPositionalEmbedding {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        LearnedPositionalEmbedding::forward(self, x, 0).map_err(candle_core::Error::wrap)
    }
}

//! [`QuantizedEmbeddingBag`]: pooled lookups over a quantized table, dequantized and reduced in
//! one pass ([`super::kernel`]). Bags, offsets, `per_sample_weights` and `padding_idx` follow
//! [`crate::EmbeddingBag`] exactly (the same checks: [`BagSpec`]).

use candle_core::{DType, Device, Tensor};

use super::format::Bits;
use super::kernel::{pool, Bounds, PoolArgs};
use super::lookup::{quantize_table, QuantizedEmbedding};
use super::portable;
use super::table::QuantizedTable;
use crate::alloc::{checked_elems, try_alloc_uninit};
use crate::bag::{BagMode, BagSpec, PortablePool};
use crate::dtype::Float;
use crate::ids::Id;
use crate::{EmbeddingBag, Result};

/// A read-only quantized table of bags: a [`QuantizedEmbedding`] (the packed rows, their sizes
/// and the padding row, [`Self::embedding`]) with the bag options.
#[derive(Debug)]
pub struct QuantizedEmbeddingBag {
    embedding: QuantizedEmbedding,
    mode: BagMode,
    include_last_offset: bool,
}

impl QuantizedEmbeddingBag {
    /// Wrap a packed table with the bag options (`padding_idx` negative counts from the end).
    pub fn new(
        table: QuantizedTable,
        mode: BagMode,
        padding_idx: Option<i64>,
        include_last_offset: bool,
    ) -> Result<Self> {
        Ok(QuantizedEmbeddingBag {
            embedding: QuantizedEmbedding::new(table, padding_idx)?,
            mode,
            include_last_offset,
        })
    }

    /// The table: packed rows, sizes, code width and the row left out of every bag.
    pub fn embedding(&self) -> &QuantizedEmbedding {
        &self.embedding
    }
    /// How each bag is reduced.
    pub fn mode(&self) -> BagMode {
        self.mode
    }
    /// Whether 1-D offsets carry the final `N` entry (CSR).
    pub fn include_last_offset(&self) -> bool {
        self.include_last_offset
    }

    /// The bag options and table size the checks use.
    pub fn spec(&self) -> BagSpec {
        BagSpec {
            mode: self.mode,
            include_last_offset: self.include_last_offset,
            num_embeddings: self.embedding.num_embeddings(),
            embedding_dim: self.embedding.embedding_dim(),
        }
    }

    /// CPU fast path: check everything, then dequantize and reduce every bag into `out`
    /// (`B * D` elements of any float type; f32 math as FBGEMM, rounded once to `D`).
    /// `per_sample_weights` are f32, as FBGEMM's.
    pub fn forward_into<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        per_sample_weights: Option<&[f32]>,
        out: &mut [D],
    ) -> Result<()> {
        let spec = self.spec();
        let bags = spec.bags(ids, shape, offsets)?;
        spec.check_weights(&bags, per_sample_weights)?;
        spec.check_output(&bags, out.len(), "out")?;
        let table = self.embedding.table();
        table.with_bytes(|packed| {
            let args = PoolArgs {
                packed,
                layout: table.layout(),
                ids,
                bounds: Bounds::Csr(&bags.bounds),
                weights: per_sample_weights,
                padding: self.embedding.padding_idx(),
                mode: self.mode,
            };
            pool(&args, out)
        });
        Ok(())
    }

    /// [`QuantizedEmbeddingBag::forward_into`] a new `(B * D)` vector.
    pub fn forward_vec<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        per_sample_weights: Option<&[f32]>,
    ) -> Result<Vec<D>> {
        let spec = self.spec();
        let b = spec.num_bags(shape, offsets.map(<[O]>::len))?;
        let n = checked_elems(&[b, spec.embedding_dim], std::mem::size_of::<D>())?;
        let mut out = try_alloc_uninit::<D>(n)?;
        self.forward_into(ids, shape, offsets, per_sample_weights, &mut out)?;
        Ok(out)
    }

    /// Portable path: the rows dequantized with candle ops ([`portable::dequantize_rows`]),
    /// reduced with [`crate::EmbeddingBag`]'s portable candle ops. `(B, D)` f32.
    pub fn forward_portable<I: Id, O: Id>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        per_sample_weights: Option<&[f32]>,
    ) -> Result<Tensor> {
        let spec = self.spec();
        let bags = spec.bags(ids, shape, offsets)?;
        spec.check_weights(&bags, per_sample_weights)?;
        let pool = PortablePool {
            mode: self.mode,
            padding: self.embedding.padding_idx(),
            dim: spec.embedding_dim,
            acc_dtype: DType::F32,
            device: &Device::Cpu,
        };
        pool.reduce(&bags, per_sample_weights, |rows| {
            portable::dequantize_rows(self.embedding.table(), rows)
        })
    }
}

impl EmbeddingBag {
    /// This bag's table quantized row-wise to `bits` (FBGEMM's fused layout and rounding),
    /// keeping `mode`, `padding_idx` and `include_last_offset`. The table is unchanged.
    pub fn quantize(&self, bits: Bits) -> Result<QuantizedEmbeddingBag> {
        let table = quantize_table(self.embedding(), bits)?;
        let padding = self.padding_idx().map(|p| p as i64);
        QuantizedEmbeddingBag::new(table, self.mode(), padding, self.include_last_offset())
    }
}

//! [`QuantizedEmbeddingBag`]: pooled lookups over a quantized table, dequantized and reduced in
//! one pass ([`super::kernel`]). Bags, offsets, `per_sample_weights` and `padding_idx` follow
//! [`crate::EmbeddingBag`] exactly (the same checks: [`BagSpec`]).

use candle_core::{DType, Device, Tensor};

use super::format::Bits;
use super::kernel::{pool, Bounds, PoolArgs};
use super::lookup::quantize_table;
use super::portable;
use super::table::QuantizedTable;
use crate::alloc::{checked_elems, try_alloc_uninit};
use crate::bag::{BagMode, BagSpec, PortablePool};
use crate::dtype::Float;
use crate::embedding::resolve_padding_idx;
use crate::ids::Id;
use crate::{EmbeddingBag, Result};

/// A read-only quantized table of bags.
#[derive(Debug)]
pub struct QuantizedEmbeddingBag {
    table: QuantizedTable,
    padding_idx: Option<usize>,
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
        let padding_idx = resolve_padding_idx(padding_idx, table.rows())?;
        Ok(QuantizedEmbeddingBag {
            table,
            padding_idx,
            mode,
            include_last_offset,
        })
    }

    /// The packed table.
    pub fn table(&self) -> &QuantizedTable {
        &self.table
    }
    /// Rows (`V`).
    pub fn num_embeddings(&self) -> usize {
        self.table.rows()
    }
    /// Columns (`D`).
    pub fn embedding_dim(&self) -> usize {
        self.table.dim()
    }
    /// Code width.
    pub fn bits(&self) -> Bits {
        self.table.bits()
    }
    /// The row left out of every bag, resolved to `0..V`.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
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
            num_embeddings: self.num_embeddings(),
            embedding_dim: self.embedding_dim(),
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
        self.table.with_bytes(|packed| {
            let args = PoolArgs {
                packed,
                layout: self.table.layout(),
                ids,
                bounds: Bounds::Csr(&bags.bounds),
                weights: per_sample_weights,
                padding: self.padding_idx,
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
        let b = self.spec().num_bags(shape, offsets.map(<[O]>::len))?;
        let n = checked_elems(&[b, self.embedding_dim()], std::mem::size_of::<D>())?;
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
            padding: self.padding_idx,
            dim: self.embedding_dim(),
            acc_dtype: DType::F32,
            device: &Device::Cpu,
        };
        pool.reduce(&bags, per_sample_weights, |rows| {
            portable::dequantize_rows(&self.table, rows)
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

//! [`QuantizedEmbedding`]: lookups that dequantize, `y[..., j] = scale_r * code_rj + bias_r` for
//! `r = ids[...]` (one fused multiply-add, in f32, then rounded to the output type).

use candle_core::Tensor;

use super::format::Bits;
use super::portable;
use super::table::QuantizedTable;
use crate::alloc::{checked_elems, try_alloc_uninit};
use crate::dtype::Float;
use crate::embedding::resolve_padding_idx;
use crate::ids::{self, Id};
use crate::{with_float, Embedding, Error, Result};

/// A read-only quantized embedding table (see the module docs of [`crate::quantized`]).
#[derive(Debug)]
pub struct QuantizedEmbedding {
    table: QuantizedTable,
    padding_idx: Option<usize>,
}

impl QuantizedEmbedding {
    /// Wrap a packed table; `padding_idx` (negative counts from the end) is only recorded: it is
    /// the row a bag leaves out, and is carried by `save` and to the float table it came from.
    pub fn new(table: QuantizedTable, padding_idx: Option<i64>) -> Result<Self> {
        let padding_idx = resolve_padding_idx(padding_idx, table.rows())?;
        Ok(QuantizedEmbedding { table, padding_idx })
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
    /// The padding row, resolved to `0..V`.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }

    /// Check `ids` against the table (the error names the first bad id and the table size).
    pub fn validate_ids<I: Id>(&self, ids: &[I]) -> Result<()> {
        ids::validate(ids, self.num_embeddings(), "index", "an embedding table")
    }

    /// CPU fast path: validate, then dequantize rows `ids` into `out` (`ids.len() * D`
    /// elements of any float type; f32 math, rounded once to `D`).
    pub fn lookup_into<I: Id, D: Float>(&self, ids: &[I], out: &mut [D]) -> Result<()> {
        let dim = self.embedding_dim();
        if Some(out.len()) != ids.len().checked_mul(dim) {
            return Err(Error::shape(format!(
                "out has {} elements, expected {} ({} ids x {dim})",
                out.len(),
                ids.len().saturating_mul(dim),
                ids.len()
            )));
        }
        self.validate_ids(ids)?;
        self.table.lookup_rows(ids, out);
        Ok(())
    }

    /// [`QuantizedEmbedding::lookup_into`] a new `(ids.len() * D)` vector.
    pub fn lookup_vec<I: Id, D: Float>(&self, ids: &[I]) -> Result<Vec<D>> {
        let n = checked_elems(&[ids.len(), self.embedding_dim()], std::mem::size_of::<D>())?;
        let mut out = try_alloc_uninit::<D>(n)?;
        self.lookup_into(ids, &mut out)?;
        Ok(out)
    }

    /// Portable path (candle ops, [`portable::dequantize_rows`]): an f32 tensor of shape
    /// `shape + (D,)`.
    pub fn lookup_portable<I: Id>(&self, ids: &[I], shape: &[usize]) -> Result<Tensor> {
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(ids.len()) {
            return Err(Error::shape(format!(
                "{} ids do not fill shape {shape:?}",
                ids.len()
            )));
        }
        self.validate_ids(ids)?;
        let mut out_shape = shape.to_vec();
        out_shape.push(self.embedding_dim());
        Ok(portable::dequantize_rows(&self.table, ids)?.reshape(out_shape)?)
    }
}

/// The packed rows of `emb`'s table (read in place: a mapped table is quantized straight from
/// the file), refusing `max_norm`, which rewrites rows at lookup time and cannot apply to a
/// read-only quantized table.
pub(crate) fn quantize_table(emb: &Embedding, bits: Bits) -> Result<QuantizedTable> {
    if emb.config().max_norm.is_some() {
        return Err(Error::invalid(
            "max_norm renormalises rows at lookup time, which a read-only quantized table \
             cannot: quantize a table without max_norm",
        ));
    }
    let (rows, dim) = (emb.num_embeddings(), emb.embedding_dim());
    let table = emb.rows();
    with_float!(table.dtype(), T => table.read::<T, _>(|v| QuantizedTable::quantize(v, rows, dim, bits))?)
}

impl Embedding {
    /// This table quantized row-wise to `bits` (FBGEMM's fused layout and rounding), keeping
    /// `padding_idx`. The table itself is unchanged.
    pub fn quantize(&self, bits: Bits) -> Result<QuantizedEmbedding> {
        let padding = self.padding_idx().map(|p| p as i64);
        QuantizedEmbedding::new(quantize_table(self, bits)?, padding)
    }
}

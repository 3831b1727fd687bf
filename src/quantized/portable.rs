//! The portable path of quantized tables, made of candle ops: the reference the fast kernel
//! ([`super::kernel`]) is checked against.
//!
//! The codes of the rows a call needs become a `u8` tensor (a copy of those rows' bytes, from
//! memory or the mapped file), are widened to f32 and (4 bits) split into their two nibbles with
//! candle ops, and `code * scale + bias` is a broadcast multiply then add: two roundings where
//! the kernel's fused multiply-add has one, so the paths agree to within a few ulps, not bit for
//! bit. Scales and biases are decoded on the host (candle has no bit-cast op). Bags then reduce
//! with the same candle ops as [`crate::EmbeddingBag`]'s portable path.

use candle_core::{DType, Device, Tensor};

use super::format::Bits;
use super::table::QuantizedTable;
use crate::alloc::{checked_elems, try_alloc};
use crate::ids::Id;
use crate::Result;

/// Rows `ids` (validated) dequantized with candle ops: an `(ids.len(), dim)` f32 CPU tensor.
pub fn dequantize_rows<I: Id>(table: &QuantizedTable, ids: &[I]) -> Result<Tensor> {
    let layout = table.layout();
    let (n, dim, code_bytes, width) = (
        ids.len(),
        layout.dim,
        layout.codes_bytes(),
        layout.row_bytes(),
    );
    let mut codes = try_alloc::<u8>(checked_elems(&[n, code_bytes], 1)?)?;
    let mut scale = try_alloc::<f32>(n)?;
    let mut bias = try_alloc::<f32>(n)?;
    table.with_bytes(|packed| {
        for (k, id) in ids.iter().enumerate() {
            let row = &packed[id.index() * width..(id.index() + 1) * width];
            codes[k * code_bytes..(k + 1) * code_bytes].copy_from_slice(&row[..code_bytes]);
            (scale[k], bias[k]) = layout.scale_bias(row);
        }
    });
    let cpu = &Device::Cpu;
    let codes = Tensor::from_vec(codes, (n, code_bytes), cpu)?.to_dtype(DType::F32)?;
    let codes = match layout.bits {
        Bits::Eight => codes,
        // byte = lo + 16 hi: hi = floor(byte / 16), lo = byte - 16 hi; lo is element 2j.
        Bits::Four => {
            let hi = codes.affine(1.0 / 16.0, 0.0)?.floor()?;
            let lo = (&codes - hi.affine(16.0, 0.0)?)?;
            Tensor::stack(&[lo, hi], 2)?.reshape((n, dim))?
        }
    };
    let scale = Tensor::from_vec(scale, (n, 1), cpu)?;
    let bias = Tensor::from_vec(bias, (n, 1), cpu)?;
    Ok(codes.broadcast_mul(&scale)?.broadcast_add(&bias)?)
}

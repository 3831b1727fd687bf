//! The portable rotary paths: candle `narrow` / `mul` / `cat` on any device (the reference,
//! autograd through candle's own ops), and candle-nn's fused `rope` / `rope_i`.

use candle_core::{DType, Device, Tensor, D};

use super::{Positions, RopeLayout, RotaryEmbedding};
use crate::{bail_shape, Result};

impl RotaryEmbedding {
    /// The portable reference: candle `narrow` / `mul` / `cat` (any device, autograd through
    /// candle's own ops). Arithmetic in `x`'s dtype.
    pub fn forward_portable(&self, x: &Tensor, positions: &Positions) -> Result<Tensor> {
        crate::dtype::check_float(x.dtype())?;
        self.geometry(x.dims(), positions)?;
        self.portable(x, positions, false)
    }

    /// The portable transposed rotation.
    pub fn backward_portable(&self, grad: &Tensor, positions: &Positions) -> Result<Tensor> {
        crate::dtype::check_float(grad.dtype())?;
        self.geometry(grad.dims(), positions)?;
        self.portable(grad, positions, true)
    }

    /// cos/sin as tensors of `x`'s dtype and device, shaped to broadcast against
    /// `(..., T, rotary_dim/2)`: `(T, half)` or `(B, 1, .., 1, T, half)`.
    fn table_tensors(
        &self,
        dims: &[usize],
        positions: &Positions,
        dtype: DType,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let g = self.geometry(dims, positions)?;
        let t = self.tables(positions, g.seq_len)?;
        let mut shape = vec![t.batches];
        if t.batches > 1 || matches!(positions, Positions::PerBatch { .. }) {
            shape.extend(std::iter::repeat_n(1, dims.len() - 3));
        } else {
            shape.clear();
        }
        shape.extend([t.seq_len, t.half]);
        let mk = |v: &Vec<f64>| -> Result<Tensor> {
            Ok(Tensor::from_slice(v, shape.as_slice(), &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(device)?)
        };
        Ok((mk(&t.cos64)?, mk(&t.sin64)?))
    }

    pub(super) fn portable(
        &self,
        x: &Tensor,
        positions: &Positions,
        transpose: bool,
    ) -> Result<Tensor> {
        let (cos, sin) = self.table_tensors(x.dims(), positions, x.dtype(), x.device())?;
        let sin = if transpose { sin.neg()? } else { sin };
        let (d, rot, half) = (self.head_dim, self.rotary_dim, self.rotary_dim / 2);
        let xr = x.narrow(D::Minus1, 0, rot)?;
        let rotated = match self.config.layout {
            RopeLayout::Half => {
                let x1 = xr.narrow(D::Minus1, 0, half)?;
                let x2 = xr.narrow(D::Minus1, half, half)?;
                let o1 = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
                let o2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
                Tensor::cat(&[&o1, &o2], D::Minus1)?
            }
            RopeLayout::Interleaved => {
                let mut pair_shape = x.dims()[..x.rank() - 1].to_vec();
                pair_shape.extend([half, 2]);
                let xp = xr.reshape(pair_shape)?;
                let a = xp.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
                let b = xp.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
                let o1 = (a.broadcast_mul(&cos)? - b.broadcast_mul(&sin)?)?;
                let o2 = (b.broadcast_mul(&cos)? + a.broadcast_mul(&sin)?)?;
                Tensor::stack(&[&o1, &o2], D::Minus1)?.flatten_from(D::Minus2)?
            }
        };
        if rot == d {
            return Ok(rotated);
        }
        let pass = x.narrow(D::Minus1, rot, d - rot)?;
        Ok(Tensor::cat(&[&rotated, &pass], D::Minus1)?)
    }

    /// candle-nn's fused `rope` / `rope_i` (4-D `x` `(B, H, T, head_dim)` only; no backward).
    /// The pass-through dims of partial rotary are concatenated back.
    pub fn forward_fused(&self, x: &Tensor, positions: &Positions) -> Result<Tensor> {
        crate::dtype::check_float(x.dtype())?;
        let g = self.geometry(x.dims(), positions)?;
        if x.rank() != 4 {
            bail_shape!(
                "the fused candle-nn rope needs x of shape (B, H, T, D), got {:?}",
                x.dims()
            );
        }
        let t = self.tables(positions, g.seq_len)?;
        let shape: Vec<usize> = if t.batches > 1 || matches!(positions, Positions::PerBatch { .. })
        {
            vec![t.batches, t.seq_len, t.half]
        } else {
            vec![t.seq_len, t.half]
        };
        let mk = |v: &Vec<f64>| -> Result<Tensor> {
            Ok(Tensor::from_slice(v, shape.as_slice(), &Device::Cpu)?
                .to_dtype(x.dtype())?
                .to_device(x.device())?)
        };
        let (cos, sin) = (mk(&t.cos64)?, mk(&t.sin64)?);
        let (d, rot) = (self.head_dim, self.rotary_dim);
        let xr = x.narrow(D::Minus1, 0, rot)?.contiguous()?;
        let rotated = match self.config.layout {
            RopeLayout::Half => candle_nn::rotary_emb::rope(&xr, &cos, &sin)?,
            RopeLayout::Interleaved => candle_nn::rotary_emb::rope_i(&xr, &cos, &sin)?,
        };
        if rot == d {
            return Ok(rotated);
        }
        let pass = x.narrow(D::Minus1, rot, d - rot)?;
        Ok(Tensor::cat(&[&rotated, &pass], D::Minus1)?)
    }
}

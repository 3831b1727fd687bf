//! The forward of a bag: the fast CPU kernel into a caller's buffer, and the portable path.

use candle_core::{DType, Device, Tensor};

use super::{Bags, EmbeddingBag};
use crate::alloc::{
    self, checked_elems, try_alloc, try_alloc_uninit, try_collect, try_with_capacity,
};
use crate::dtype::{acc_dtype, Float};
use crate::ids::Id;
use crate::kernels::cpu::bag::{bag_reduce, BagArgs, Reduce};
use crate::{storage, with_float, Result};

impl EmbeddingBag {
    /// CPU fast path: validate, apply `max_norm`, then reduce every bag into `out`
    /// (`B * D` elements of `D`: the table's dtype, or f32 for a bf16/f16 table).
    /// On other devices the portable path runs and its result is copied into `out`.
    pub fn forward_into<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        per_sample_weights: Option<&[D]>,
        out: &mut [D],
    ) -> Result<()> {
        let bags = self.bags(ids, shape, offsets)?;
        self.check_weights(&bags, per_sample_weights)?;
        self.check_output(&bags, out.len(), "out")?;
        let dim = self.embedding_dim();
        self.table.apply_max_norm(ids)?;
        let rows = self.table.rows();
        if !rows.device().is_cpu() {
            let t = self.reduce_device(&bags, per_sample_weights)?;
            return storage::copy_into(&t, out);
        }
        let (padding, mode) = (self.padding_idx(), self.mode);
        with_float!(rows.dtype(), S => rows.read::<S, ()>(|table| {
            let args = BagArgs {
                table,
                dim,
                ids,
                bounds: &bags.bounds,
                weights: per_sample_weights,
                padding,
                mode,
            };
            bag_reduce(&args, out);
        }))
    }

    /// Fast path into a new `(B * D)` vector.
    pub fn forward_vec<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        per_sample_weights: Option<&[D]>,
    ) -> Result<Vec<D>> {
        let b = self.num_bags(shape, offsets.map(<[O]>::len))?;
        let n = checked_elems(&[b, self.embedding_dim()], std::mem::size_of::<D>())?;
        let mut out = try_alloc_uninit::<D>(n)?;
        self.forward_into(ids, shape, offsets, per_sample_weights, &mut out)?;
        Ok(out)
    }

    /// Portable path (any device): validation, `max_norm`, then `index_select` of the
    /// non-padding rows, a weighted `index_add` into the bags (sum / mean) or a per-bag `max`.
    /// Accumulates in f32 (f64 for f64 tables); returns `(B, D)` in the table's dtype.
    pub fn forward_portable<I: Id, O: Id, W: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        per_sample_weights: Option<&[W]>,
    ) -> Result<Tensor> {
        let bags = self.bags(ids, shape, offsets)?;
        self.check_weights(&bags, per_sample_weights)?;
        self.table.apply_max_norm(ids)?;
        self.reduce_portable(&bags, per_sample_weights)
    }

    /// The reduction on the table's device: our CUDA kernel when the CUDA kernels are on
    /// (`kernels::cuda::enabled`), else the portable path. `(B, D)`, table dtype.
    fn reduce_device<I: Id, W: Float>(
        &self,
        bags: &Bags<'_, I>,
        weights: Option<&[W]>,
    ) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if crate::kernels::cuda::active(self.weight().device()) {
            let w64 = weights
                .map(|ws| try_collect(ws.iter().map(|x| x.as_f64())))
                .transpose()?;
            return crate::kernels::cuda::bag_forward(
                &self.weight(),
                bags,
                w64.as_deref(),
                self.mode,
                self.padding_idx(),
            );
        }
        self.reduce_portable(bags, weights)
    }

    fn reduce_portable<I: Id, W: Float>(
        &self,
        bags: &Bags<'_, I>,
        weights: Option<&[W]>,
    ) -> Result<Tensor> {
        let table = self.table.rows();
        let (dtype, dev) = (table.dtype(), table.device());
        let acc_dt = acc_dtype(dtype);
        let (rows, dim) = (self.num_embeddings(), self.embedding_dim());
        let gather = |ids: &[i64]| Ok(table.select(ids, rows, dim)?.to_dtype(acc_dt)?);
        let pool = PortablePool {
            mode: self.mode,
            padding: self.padding_idx(),
            dim,
            acc_dtype: acc_dt,
            device: &dev,
        };
        Ok(pool.reduce(bags, weights, gather)?.to_dtype(dtype)?)
    }
}

/// The portable bag reduction (candle ops on `device`), given how to fetch rows: shared by
/// [`EmbeddingBag`] and the quantized bag, whose rows are dequantized instead of selected.
pub(crate) struct PortablePool<'a> {
    pub mode: Reduce,
    pub padding: Option<usize>,
    pub dim: usize,
    /// The dtype rows are fetched in and reduced in.
    pub acc_dtype: DType,
    pub device: &'a Device,
}

impl PortablePool<'_> {
    /// `(B, dim)` in the accumulator dtype: `gather(rows)` gives the `(m, dim)` rows of the
    /// `m` non-padding positions, in position order; then a weighted `index_add` into the bags
    /// (sum / mean) or a per-bag `max`.
    pub fn reduce<I: Id, W: Float>(
        &self,
        bags: &Bags<'_, I>,
        weights: Option<&[W]>,
        gather: impl FnOnce(&[i64]) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let (dim, nb, n, dev) = (self.dim, bags.num_bags(), bags.ids.len(), self.device);
        let acc_dt = self.acc_dtype;
        // Positions that take part (non-padding), the bag of each, and per-position scales.
        let mut rows = try_with_capacity::<i64>(n)?;
        let mut bag_of = try_with_capacity::<u32>(n)?;
        let mut scale = try_with_capacity::<f64>(if weights.is_some() { n } else { 0 })?;
        let mut count = try_alloc::<usize>(nb)?;
        for (b, c) in count.iter_mut().enumerate() {
            let lo = bags.bounds[b];
            for (pos, id) in (lo..).zip(&bags.ids[lo..bags.bounds[b + 1]]) {
                let id = id.index();
                if Some(id) == self.padding {
                    continue;
                }
                rows.push(id as i64);
                bag_of.push(b as u32);
                if let Some(ws) = weights {
                    scale.push(ws[pos].as_f64());
                }
                *c += 1;
            }
        }
        let zeros = alloc::zeros((nb, dim), acc_dt, dev)?;
        if rows.is_empty() {
            return Ok(zeros);
        }
        let m = rows.len();
        let gathered = gather(&rows)?;
        Ok(match self.mode {
            Reduce::Sum | Reduce::Mean => {
                let src = if weights.is_some() {
                    let s = Tensor::from_vec(scale, (m, 1), dev)?.to_dtype(acc_dt)?;
                    gathered.broadcast_mul(&s)?
                } else {
                    gathered
                };
                let bag_idx = Tensor::from_vec(bag_of, m, dev)?;
                let sum = zeros.index_add(&bag_idx, &src, 0)?;
                if self.mode == Reduce::Mean {
                    let c = try_collect(count.iter().map(|&c| c.max(1) as f64))?;
                    let c = Tensor::from_vec(c, (nb, 1), dev)?.to_dtype(acc_dt)?;
                    sum.broadcast_div(&c)?
                } else {
                    sum
                }
            }
            Reduce::Max => {
                let mut parts = try_with_capacity(nb)?;
                let mut start = 0;
                for &c in &count {
                    parts.push(if c == 0 {
                        alloc::zeros((1, dim), acc_dt, dev)?
                    } else {
                        gathered.narrow(0, start, c)?.max_keepdim(0)?
                    });
                    start += c;
                }
                Tensor::cat(&parts, 0)?
            }
        })
    }
}

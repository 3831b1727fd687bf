//! The backward of a bag: the table's coalesced gradient and the per-sample weights' gradient.
//!
//! `d W[i] = sum_{k: ids[k] = i} s_k * g[bag(k)]` with `s_k = w_k` (sum), `1/count` (mean),
//! divided by `n_i` (the non-padding positions of `i` in the call) with `scale_grad_by_freq`;
//! for max each column's gradient goes to that column's argmax (first occurrence), recomputed
//! from the current table. The sum over the positions of one id is the crate's grouping
//! primitive ([`crate::sparse::coalesce`]) with the bag's own per-position contribution, so no
//! `(ids.len(), D)` intermediate is materialised.

use candle_core::{Device, Tensor};

use super::{mode_name, EmbeddingBag};
use crate::alloc::{try_alloc, try_alloc_uninit};
use crate::dtype::Float;
use crate::ids::Id;
use crate::kernels::cpu::bag::{bag_argmax, Reduce};
use crate::sparse::coalesce::{group, round_f64, sum_groups, F64Rows};
use crate::{with_float, Error, Result, SparseGrad};

impl EmbeddingBag {
    /// Gradient of the table given `grad_output` `(B, D)` (as `B * D` values), coalesced.
    /// The values have the table's dtype; each is a sum in f64 in id-position order, rounded
    /// once (deterministic for any thread count).
    pub fn backward<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        grad_output: &[D],
        per_sample_weights: Option<&[D]>,
    ) -> Result<SparseGrad> {
        let bags = self.bags(ids, shape, offsets)?;
        self.check_weights(&bags, per_sample_weights)?;
        self.check_output(&bags, grad_output.len(), "grad_output")?;
        let dim = self.embedding_dim();
        let table = self.table.rows();
        let padding = self.padding_idx();
        #[cfg(feature = "cuda")]
        if crate::kernels::cuda::active(&table.device())
            && self.mode != Reduce::Max
            && !self.scale_grad_by_freq()
        {
            // Our sort + segment-reduce kernel on the table's device: the upstream gradient
            // goes up once, the coalesced gradient stays there.
            let g = Tensor::from_slice(grad_output, (bags.num_bags(), dim), &Device::Cpu)?
                .to_device(&table.device())?;
            let w64 = per_sample_weights
                .map(|ws| crate::alloc::try_collect(ws.iter().map(|x| x.as_f64())))
                .transpose()?;
            let sg = crate::kernels::cuda::bag_backward(
                &g,
                &bags,
                w64.as_deref(),
                self.mode,
                padding,
                self.num_embeddings(),
            )?;
            let values = sg.values().to_dtype(table.dtype())?;
            return Ok(SparseGrad::from_coalesced_unchecked(
                sg.indices().to_vec(),
                values,
                self.num_embeddings(),
            ));
        }
        let (bag_of, mut scale) = bags.position_scales(self.mode, padding, |p| {
            per_sample_weights.map_or(1.0, |ws| ws[p].as_f64())
        })?;
        let groups = group(ids, self.num_embeddings(), padding)?;
        if self.scale_grad_by_freq() {
            // Each position of id i also carries 1/n_i, n_i = the size of i's group.
            for k in 0..groups.len() {
                let n = groups.positions(k).len() as f64;
                for &pos in groups.positions(k) {
                    scale[pos] /= n;
                }
            }
        }
        let argmax = if self.mode == Reduce::Max {
            Some(with_float!(table.dtype(), S => table.read::<S, _>(|t| {
                bag_argmax(t, dim, ids, &bags.bounds, padding)
            })?)?)
        } else {
            None
        };
        let contribution = F64Rows(|pos: usize, acc: &mut [f64]| {
            let b = bag_of[pos];
            let g = &grad_output[b * dim..(b + 1) * dim];
            match &argmax {
                None => {
                    let s = scale[pos];
                    for (a, &x) in acc.iter_mut().zip(g) {
                        *a += s * x.as_f64();
                    }
                }
                Some(arg) => {
                    let arg = &arg[b * dim..(b + 1) * dim];
                    for ((a, &m), &x) in acc.iter_mut().zip(arg).zip(g) {
                        if m == pos {
                            *a += x.as_f64();
                        }
                    }
                }
            }
        });
        let n = groups.len();
        let values = with_float!(table.dtype(), S => {
            let mut v = try_alloc_uninit::<S>(n * dim)?;
            sum_groups(&groups, dim, &contribution, &mut v, round_f64::<S>);
            Tensor::from_vec(v, (n, dim), &Device::Cpu).map_err(Error::from)
        })?;
        Ok(SparseGrad::from_coalesced_unchecked(
            groups.unique,
            values.to_device(&table.device())?,
            self.num_embeddings(),
        ))
    }

    /// Gradient of the per-sample weights (sum mode): `d w_k = <g[bag(k)], W[ids[k]]>`,
    /// 0 for padding positions. One value per id, in f64.
    pub fn backward_per_sample_weights<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        grad_output: &[D],
    ) -> Result<Vec<f64>> {
        if self.mode != Reduce::Sum {
            return Err(Error::invalid(format!(
                "per_sample_weights gradients exist only for mode='sum', got mode='{}'",
                mode_name(self.mode)
            )));
        }
        let bags = self.bags(ids, shape, offsets)?;
        self.check_output(&bags, grad_output.len(), "grad_output")?;
        let (dim, nb) = (self.embedding_dim(), bags.num_bags());
        let table = self.table.rows();
        let padding = self.padding_idx();
        let mut out = try_alloc::<f64>(ids.len())?;
        with_float!(table.dtype(), S => table.read::<S, ()>(|t| {
            for b in 0..nb {
                let g = &grad_output[b * dim..(b + 1) * dim];
                let (lo, hi) = (bags.bounds[b], bags.bounds[b + 1]);
                for (&id, o) in ids[lo..hi].iter().zip(&mut out[lo..hi]) {
                    let id = id.index();
                    if Some(id) == padding {
                        continue;
                    }
                    let row = &t[id * dim..(id + 1) * dim];
                    *o = row.iter().zip(g).map(|(&r, &x)| r.as_f64() * x.as_f64()).sum();
                }
            }
        }))?;
        Ok(out)
    }
}

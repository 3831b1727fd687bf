//! Weight tying: the table as the output projection of a language model.
//!
//! Shapes, with `x` of `n` rows of `D` and the table `W` of `(V, D)`:
//! - [`Targets::All`]: `logits = x @ W^T`, `(n, V)`;
//! - [`Targets::Shared`] (`ids` of `k`, shared by every row, as sampled softmax uses):
//!   `logits = x @ W[ids]^T`, `(n, k)`;
//! - [`Targets::PerRow`] (`ids` of `(n, k)`, each row its own candidates, as negative sampling
//!   uses): `logits[b, j] = x[b] . W[ids[b, j]]`, `(n, k)`.
//!
//! Backward for upstream `g = dL/dlogits`: `grad_x = g @ W_sel`, `grad_W_sel = g^T @ x`, returned
//! as a coalesced [`SparseGrad`] (every row for `All`; the sorted unique ids, duplicate columns
//! summed in position order, otherwise).
//!
//! Fast path (CPU, f16/f32/f64 tables): the `gemm` crate (candle's CPU matmul) on the table's
//! storage in place and the caller's buffers, multi-threaded on the crate's pool; `PerRow` is a
//! gather of dot products. Portable path: candle `matmul` / `index_select` / `index_add`.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::alloc::{try_alloc_uninit, try_collect};
use crate::dtype::Float;
use crate::ids::{index_tensor, Id};
use crate::kernels::cpu::gather::gather_rows;
use crate::kernels::cpu::linalg::{dot, gemm_strided};
use crate::kernels::cpu::prefetch::{prefetch_row, DISTANCE};
use crate::sparse::coalesce::{group, round_f64, sum_groups, sum_groups_portable, F64Rows, Groups};
use crate::{storage, threads, Embedding, Error, Result, SparseGrad};

/// Which rows of the table score each input row.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a, I> {
    /// Every row: logits `(n, V)`.
    All,
    /// The same `k` rows for every input row: logits `(n, k)`.
    Shared(&'a [I]),
    /// `k` rows per input row (`ids` is `n x k`, row-major): logits `(n, k)`.
    PerRow(&'a [I], usize),
}

impl<I: Id> Targets<'_, I> {
    /// Logit columns per input row.
    pub fn cols(&self, num_embeddings: usize) -> usize {
        match *self {
            Targets::All => num_embeddings,
            Targets::Shared(ids) => ids.len(),
            Targets::PerRow(_, k) => k,
        }
    }
}

fn check_lengths<I: Id>(
    emb: &Embedding,
    x_len: usize,
    n: usize,
    targets: &Targets<'_, I>,
    other_len: usize,
    other: &str,
) -> Result<usize> {
    let dim = emb.embedding_dim();
    if x_len != n * dim {
        return Err(Error::Shape(format!(
            "x has {x_len} elements, expected {n} rows of embedding_dim {dim}"
        )));
    }
    let cols = targets.cols(emb.num_embeddings());
    if other_len != n * cols {
        return Err(Error::Shape(format!(
            "{other} has {other_len} elements, expected {n} x {cols}"
        )));
    }
    match *targets {
        Targets::All => {}
        Targets::Shared(ids) => emb.validate_ids(ids)?,
        Targets::PerRow(ids, k) => {
            if ids.len() != n * k {
                return Err(Error::Shape(format!(
                    "ids has {} elements, expected {n} rows of {k}",
                    ids.len()
                )));
            }
            emb.validate_ids(ids)?
        }
    }
    Ok(cols)
}

impl Embedding {
    /// Whether the fast path applies to inputs of element type `T`.
    fn attend_fast<T: Float>(&self) -> bool {
        let w = self.weight();
        w.device().is_cpu() && w.dtype() == T::DT && T::DT != DType::BF16
    }

    /// Logits of `n` rows `x` (`n x D`, element type `T`) against `targets`, into `out`
    /// (`n x cols`). Fast path when the table is a CPU table of dtype `T` (f16/f32/f64), else
    /// the portable path.
    pub fn attend_into<T: Float, I: Id>(
        &self,
        x: &[T],
        n: usize,
        targets: Targets<'_, I>,
        out: &mut [T],
    ) -> Result<()> {
        let cols = check_lengths(self, x.len(), n, &targets, out.len(), "out")?;
        let dim = self.embedding_dim();
        if !self.attend_fast::<T>() {
            let xt = Tensor::from_slice(x, (n, dim), &self.device())?;
            let y = self.attend_portable(&xt, targets)?;
            return storage::copy_into(&y, out);
        }
        let w = self.weight();
        storage::read::<T, Result<()>>(&w, |table| {
            match targets {
                // x is n x dim row-major; the table V x dim row-major, read as its transpose.
                Targets::All => gemm_strided((n, cols, dim), out, x, (dim, 1), table, (1, dim)),
                Targets::Shared(ids) => {
                    let mut sel = try_alloc_uninit::<T>(ids.len() * dim)?;
                    gather_rows(table, dim, ids, &mut sel);
                    gemm_strided((n, cols, dim), out, x, (dim, 1), &sel, (1, dim))
                }
                Targets::PerRow(ids, k) => per_row_logits(table, dim, x, ids, k, out),
            }
            Ok(())
        })?
    }

    /// Portable path of [`Embedding::attend_into`]: candle ops on the table's device; `x` is
    /// `(n, D)`, the table is converted to `x`'s dtype. Returns `(n, cols)`.
    pub fn attend_portable<I: Id>(&self, x: &Tensor, targets: Targets<'_, I>) -> Result<Tensor> {
        let (n, _) = x.dims2()?;
        check_lengths(
            self,
            x.elem_count(),
            n,
            &targets,
            n * targets.cols(self.num_embeddings()),
            "logits",
        )?;
        let w = self.weight().to_dtype(x.dtype())?;
        let x = x.to_device(w.device())?;
        Ok(match targets {
            Targets::All => x.matmul(&w.t()?)?,
            Targets::Shared(ids) => x.matmul(
                &w.index_select(&index_tensor(ids, self.num_embeddings(), w.device())?, 0)?
                    .t()?,
            )?,
            Targets::PerRow(ids, k) => {
                let sel = w
                    .index_select(&index_tensor(ids, self.num_embeddings(), w.device())?, 0)?
                    .reshape((n, k, self.embedding_dim()))?;
                sel.matmul(&x.unsqueeze(2)?)?.squeeze(2)?
            }
        })
    }

    /// Backward of [`Embedding::attend_into`]: writes `grad_x` (`n x D`) and returns the table's
    /// gradient as a coalesced [`SparseGrad`] of element type `T`.
    pub fn attend_backward_into<T: Float, I: Id>(
        &self,
        x: &[T],
        n: usize,
        grad_logits: &[T],
        targets: Targets<'_, I>,
        grad_x: &mut [T],
    ) -> Result<SparseGrad> {
        let cols = check_lengths(self, x.len(), n, &targets, grad_logits.len(), "grad_logits")?;
        let dim = self.embedding_dim();
        if grad_x.len() != n * dim {
            return Err(Error::Shape(format!(
                "grad_x has {} elements, expected {n} x {dim}",
                grad_x.len()
            )));
        }
        if !self.attend_fast::<T>() {
            let dev = self.device();
            let xt = Tensor::from_slice(x, (n, dim), &dev)?;
            let gt = Tensor::from_slice(grad_logits, (n, cols), &dev)?;
            let (gx, gw) = self.attend_backward_portable(&xt, &gt, targets)?;
            storage::copy_into(&gx, grad_x)?;
            return Ok(gw);
        }
        let v = self.num_embeddings();
        let w = self.weight();
        let (indices, values) = storage::read::<T, Result<(Vec<i64>, Vec<T>)>>(&w, |table| {
            match targets {
                Targets::All => {
                    // grad_x (n, D) = g (n, V) @ W (V, D)
                    gemm_strided((n, dim, v), grad_x, grad_logits, (v, 1), table, (dim, 1));
                    // grad_W (V, D) = g^T (V, n) @ x (n, D)
                    let mut gw = try_alloc_uninit::<T>(v * dim)?;
                    gemm_strided((v, dim, n), &mut gw, grad_logits, (1, v), x, (dim, 1));
                    Ok((try_collect(0..v as i64)?, gw))
                }
                Targets::Shared(ids) => {
                    let k = ids.len();
                    let mut sel = try_alloc_uninit::<T>(k * dim)?;
                    gather_rows(table, dim, ids, &mut sel);
                    let mut gsel = try_alloc_uninit::<T>(k * dim)?;
                    gemm_strided((n, dim, k), grad_x, grad_logits, (k, 1), &sel, (dim, 1));
                    gemm_strided((k, dim, n), &mut gsel, grad_logits, (1, k), x, (dim, 1));
                    let groups = group(ids, v, None)?;
                    if groups.len() == k && groups.order.iter().enumerate().all(|(q, &p)| q == p) {
                        return Ok((groups.unique, gsel)); // already sorted and unique
                    }
                    let vals = sum_rows_f64::<T>(&groups, dim, |p, acc| {
                        for (a, &g) in acc.iter_mut().zip(&gsel[p * dim..(p + 1) * dim]) {
                            *a += g.as_f64();
                        }
                    })?;
                    Ok((groups.unique, vals))
                }
                Targets::PerRow(ids, k) => {
                    per_row_grad_x(table, dim, grad_logits, ids, k, grad_x);
                    let groups = group(ids, v, None)?;
                    let vals = sum_rows_f64::<T>(&groups, dim, |p, acc| {
                        let g = grad_logits[p].as_f64();
                        let b = p / k;
                        for (a, &xv) in acc.iter_mut().zip(&x[b * dim..(b + 1) * dim]) {
                            *a += g * xv.as_f64();
                        }
                    })?;
                    Ok((groups.unique, vals))
                }
            }
        })??;
        let nnz = indices.len();
        let values = Tensor::from_vec(values, (nnz, dim), &Device::Cpu)?;
        Ok(SparseGrad::from_coalesced_unchecked(indices, values, v))
    }

    /// Portable path of [`Embedding::attend_backward_into`] (candle `matmul` + `index_add`).
    /// `x` is `(n, D)`, `grad_logits` `(n, cols)`; returns `(grad_x, grad_weight)`.
    pub fn attend_backward_portable<I: Id>(
        &self,
        x: &Tensor,
        grad_logits: &Tensor,
        targets: Targets<'_, I>,
    ) -> Result<(Tensor, SparseGrad)> {
        let (n, dim) = x.dims2()?;
        check_lengths(
            self,
            x.elem_count(),
            n,
            &targets,
            grad_logits.elem_count(),
            "grad_logits",
        )?;
        let v = self.num_embeddings();
        let w = self.weight().to_dtype(x.dtype())?;
        let dev = w.device().clone();
        let x = x.to_device(&dev)?;
        let g = grad_logits.to_device(&dev)?.to_dtype(x.dtype())?;
        let coalesce = |ids: &[I], contrib: &Tensor| -> Result<SparseGrad> {
            let groups = group(ids, v, None)?;
            let vals = sum_groups_portable(&groups, contrib, x.dtype())?;
            Ok(SparseGrad::from_coalesced_unchecked(groups.unique, vals, v))
        };
        Ok(match targets {
            Targets::All => {
                let g = g.reshape((n, v))?;
                let gx = g.matmul(&w)?;
                let gw = g.t()?.matmul(&x)?;
                (
                    gx,
                    SparseGrad::from_coalesced_unchecked(try_collect(0..v as i64)?, gw, v),
                )
            }
            Targets::Shared(ids) => {
                let g = g.reshape((n, ids.len()))?;
                let sel = w.index_select(&index_tensor(ids, v, &dev)?, 0)?;
                let gx = g.matmul(&sel)?;
                let contrib = g.t()?.matmul(&x)?;
                (gx, coalesce(ids, &contrib)?)
            }
            Targets::PerRow(ids, k) => {
                let g = g.reshape((n, k))?;
                let sel = w
                    .index_select(&index_tensor(ids, v, &dev)?, 0)?
                    .reshape((n, k, dim))?;
                let gx = g.unsqueeze(1)?.matmul(&sel)?.squeeze(1)?;
                let contrib = x
                    .unsqueeze(1)?
                    .broadcast_mul(&g.unsqueeze(2)?)?
                    .reshape((n * k, dim))?;
                (gx, coalesce(ids, &contrib)?)
            }
        })
    }
}

/// Per unique id of `groups`, the sum in f64 (position order) of `add(p, acc)` over its
/// positions, rounded once to `T`: a `(nnz, dim)` vector.
fn sum_rows_f64<T: Float>(
    groups: &Groups,
    dim: usize,
    add: impl Fn(usize, &mut [f64]) + Sync,
) -> Result<Vec<T>> {
    let mut vals = try_alloc_uninit::<T>(groups.len() * dim)?;
    sum_groups(groups, dim, &F64Rows(add), &mut vals, round_f64::<T>);
    Ok(vals)
}

/// `out[b, j] = x[b] . table[ids[b, j]]`, parallel over rows of `x`, prefetching table rows.
fn per_row_logits<T: Float, I: Id>(
    table: &[T],
    dim: usize,
    x: &[T],
    ids: &[I],
    k: usize,
    out: &mut [T],
) {
    if k == 0 || out.is_empty() {
        return;
    }
    let serial = |b0: usize, out: &mut [T]| {
        let ids = &ids[b0 * k..b0 * k + out.len()];
        for (p, (o, &id)) in out.iter_mut().zip(ids).enumerate() {
            if let Some(&ahead) = ids.get(p + DISTANCE) {
                let a = ahead.index() * dim;
                prefetch_row(&table[a..a + dim]);
            }
            let b = b0 + p / k;
            let r = id.index();
            *o = T::from_acc(dot(
                &x[b * dim..(b + 1) * dim],
                &table[r * dim..(r + 1) * dim],
            ));
        }
    };
    threads::install(|| {
        let rows = threads::chunk_len(out.len() / k, 16);
        out.par_chunks_mut(rows * k)
            .enumerate()
            .for_each(|(c, o)| serial(c * rows, o));
    });
}

/// `grad_x[b] = sum_j g[b, j] table[ids[b, j]]` (f64 accumulation), parallel over rows.
fn per_row_grad_x<T: Float, I: Id>(
    table: &[T],
    dim: usize,
    g: &[T],
    ids: &[I],
    k: usize,
    grad_x: &mut [T],
) {
    if dim == 0 {
        return;
    }
    threads::install(|| {
        grad_x.par_chunks_mut(dim).enumerate().for_each_init(
            || vec![0.0f64; dim],
            |acc, (b, out)| {
                acc.fill(0.0);
                for j in 0..k {
                    let gv = g[b * k + j].as_f64();
                    let r = ids[b * k + j].index();
                    for (a, &wv) in acc.iter_mut().zip(&table[r * dim..(r + 1) * dim]) {
                        *a += gv * wv.as_f64();
                    }
                }
                for (o, &a) in out.iter_mut().zip(acc.iter()) {
                    *o = T::of_f64(a);
                }
            },
        )
    });
}

//! Lookup with per-row transforms (whole-word dropout, unit-norm rows), fused into the gather,
//! and the matching transform of the upstream gradient.
//!
//! Forward: `y[k] = m(r) * W[r] / n(r)` for `r = ids[k]`, where `m(r)` is the dropout factor
//! (`0` or `1/(1-p)`, [`WordDropout`]) and `n(r) = max(||W[r]||, eps)` when normalising, else 1.
//! Backward: `dL/dW[r] = sum over k with ids[k] = r of m(r) * J(W[r])^T g[k]` where `J` is the
//! normalisation's Jacobian ([`normalize::grad_row`]); [`Embedding::transform_grad`] computes
//! the per-position rows, and the plain backward sums them.

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::dropout::WordDropout;
use super::normalize;
use crate::alloc::{try_alloc_uninit, try_collect};
use crate::dtype::Float;
use crate::ids::Id;
use crate::kernels::cpu::prefetch::{prefetch_row, DISTANCE};
use crate::{bail_invalid, rng, storage, threads, with_float, Embedding, Result, SparseGrad};

/// Below this many output elements the pool's dispatch costs more than it saves.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// What to do to each looked-up row: drop whole words, normalise to unit L2 norm, or both.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowTransform {
    /// Whole-word dropout (`None`: keep every row).
    pub dropout: Option<WordDropout>,
    /// Scale rows to unit L2 norm.
    pub normalize: bool,
}

impl RowTransform {
    /// The forward's transform. `dropout` must be in `[0, 1)`; with `dropout > 0` and no `seed`
    /// a fresh seed is drawn (a backward can then not reproduce the mask).
    pub fn new(dropout: f64, seed: Option<u64>, normalize: bool) -> Result<Self> {
        super::dropout::check_p(dropout)?;
        let dropout = if dropout > 0.0 {
            Some(WordDropout::new(
                dropout,
                seed.unwrap_or_else(rng::entropy_seed),
            )?)
        } else {
            None
        };
        Ok(RowTransform { dropout, normalize })
    }

    /// The backward's transform: `dropout > 0` needs the forward's explicit `seed`.
    pub fn for_backward(dropout: f64, seed: Option<u64>, normalize: bool) -> Result<Self> {
        if dropout > 0.0 && seed.is_none() {
            bail_invalid!(
                "backward with dropout > 0 needs the seed the forward used (pass seed=...)"
            );
        }
        Self::new(dropout, seed, normalize)
    }

    /// True when the transform changes nothing (the plain lookup applies).
    pub fn is_identity(&self) -> bool {
        self.dropout.is_none() && !self.normalize
    }

    /// The dropout factor of row `r` (1 without dropout).
    #[inline(always)]
    pub fn mask_scale(&self, r: usize) -> f64 {
        self.dropout.map_or(1.0, |d| d.scale(r))
    }

    /// The total factor of row `r` whose values are `row`.
    #[inline(always)]
    pub fn row_scale<T: Float>(&self, r: usize, row: &[T]) -> f64 {
        let m = self.mask_scale(r);
        if self.normalize && m != 0.0 {
            m * normalize::inv_norm(row)
        } else {
            m
        }
    }
}

/// `out[k] = t.row_scale(ids[k]) * table[ids[k]]`, converted to `D` (products in f64, one
/// rounding). Ids must be validated. Parallel over id chunks; bit-identical for any thread count.
pub fn gather_transformed<S: Float, D: Float, I: Id>(
    table: &[S],
    dim: usize,
    ids: &[I],
    out: &mut [D],
    t: &RowTransform,
) {
    debug_assert_eq!(out.len(), ids.len() * dim);
    if dim == 0 || ids.is_empty() {
        return;
    }
    let serial = |ids: &[I], out: &mut [D]| {
        for (k, (&id, dst)) in ids.iter().zip(out.chunks_exact_mut(dim)).enumerate() {
            if let Some(&ahead) = ids.get(k + DISTANCE) {
                let a = ahead.index() * dim;
                prefetch_row(&table[a..a + dim]);
            }
            let r = id.index();
            let src = &table[r * dim..r * dim + dim];
            let s = t.row_scale(r, src);
            if s == 0.0 {
                dst.fill(D::of_f64(0.0));
            } else {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = D::of_f64(v.as_f64() * s);
                }
            }
        }
    };
    if out.len() < PARALLEL_MIN_ELEMS {
        return serial(ids, out);
    }
    threads::install(|| {
        let chunk = threads::chunk_len(ids.len(), 64);
        ids.par_chunks(chunk)
            .zip(out.par_chunks_mut(chunk * dim))
            .for_each(|(ids, out)| serial(ids, out));
    });
}

impl Embedding {
    /// CPU fast path of `emb(ids, dropout=, seed=, normalize=)`: validate, apply `max_norm`, then
    /// one fused gather writing `t`-transformed rows into `out` (`ids.len() * D` elements).
    pub fn lookup_transformed_into<I: Id, D: Float>(
        &self,
        ids: &[I],
        out: &mut [D],
        t: &RowTransform,
    ) -> Result<()> {
        if t.is_identity() {
            return self.lookup_into(ids, out);
        }
        let dim = self.embedding_dim();
        self.check_rows(ids.len(), out.len(), "out")?;
        self.validate_ids(ids)?;
        if !self.device().is_cpu() {
            let rows = self.lookup_transformed_portable(ids, &[ids.len()], t)?;
            return storage::copy_into(&rows, out);
        }
        self.apply_max_norm(ids)?;
        let rows = self.rows();
        with_float!(rows.dtype(), S => rows.read::<S, ()>(|table| {
            gather_transformed(table, dim, ids, out, t)
        }))
    }

    /// Portable path (candle ops on the table's device): `index_select`, then the per-row
    /// factors (dropout mask from the same hash, norms with candle reductions) in f64.
    /// Returns `shape + (D,)` in the table's dtype.
    pub fn lookup_transformed_portable<I: Id>(
        &self,
        ids: &[I],
        shape: &[usize],
        t: &RowTransform,
    ) -> Result<Tensor> {
        let rows = self.lookup_portable(ids, shape)?;
        if t.is_identity() {
            return Ok(rows);
        }
        let dtype = rows.dtype();
        let dims = rows.dims().to_vec();
        let n = ids.len();
        let flat = rows
            .reshape((n, self.embedding_dim()))?
            .to_dtype(DType::F64)?;
        let mask = try_collect(ids.iter().map(|i| t.mask_scale(i.index())))?;
        let mut scale = Tensor::from_vec(mask, (n, 1), flat.device())?;
        if t.normalize {
            let norms = flat.sqr()?.sum_keepdim(1)?.sqrt()?;
            let denom = norms.maximum(normalize::EPS)?;
            scale = scale.div(&denom)?;
        }
        Ok(flat.broadcast_mul(&scale)?.to_dtype(dtype)?.reshape(dims)?)
    }

    /// The per-position gradient rows of the plain lookup that make `backward` exact through
    /// `t`: row `k` becomes `m(r) * J(W[r])^T grad[k]` for `r = ids[k]` (`grad` is
    /// `ids.len() x D`, element type `G`). Summing these rows per id is `dL/dW`.
    pub fn transform_grad<I: Id, G: Float>(
        &self,
        ids: &[I],
        grad: &[G],
        t: &RowTransform,
    ) -> Result<Vec<G>> {
        let dim = self.embedding_dim();
        self.check_rows(ids.len(), grad.len(), "grad_output")?;
        self.validate_ids(ids)?;
        let mut out = try_alloc_uninit::<G>(grad.len())?;
        if t.is_identity() || dim == 0 {
            out.copy_from_slice(grad);
            return Ok(out);
        }
        if !t.normalize {
            // Dropout only: a per-row factor, the table is not needed.
            rows_par(ids, grad, &mut out, dim, |r, g, o| {
                let s = t.mask_scale(r);
                for (o, &v) in o.iter_mut().zip(g) {
                    *o = G::of_f64(v.as_f64() * s);
                }
            });
            return Ok(out);
        }
        let rows = self.rows();
        with_float!(rows.dtype(), S => rows.read::<S, ()>(|table| {
            rows_par(ids, grad, &mut out, dim, |r, g, o| {
                normalize::grad_row(&table[r * dim..(r + 1) * dim], g, t.mask_scale(r), o)
            })
        }))?;
        Ok(out)
    }
}

impl Embedding {
    /// `backward` through `t`: the table's gradient of `emb(ids, dropout=, seed=, normalize=)`
    /// given `grad_output` (`ids.len() x D`): [`Embedding::transform_grad`], then the plain
    /// [`Embedding::backward_rows`] (padding row and `scale_grad_by_freq` as there). Rows that
    /// dropout removed are present with zero values.
    pub fn backward_transformed<I: Id, T: Float>(
        &self,
        ids: &[I],
        grad_output: &[T],
        t: &RowTransform,
    ) -> Result<SparseGrad> {
        if t.is_identity() {
            return self.backward(ids, grad_output);
        }
        let rows = self.transform_grad(ids, grad_output, t)?;
        self.backward_rows(ids, &rows)
    }
}

/// Run `f(row id, grad row, out row)` for every position, in parallel over position chunks.
fn rows_par<I: Id, G: Float>(
    ids: &[I],
    grad: &[G],
    out: &mut [G],
    dim: usize,
    f: impl Fn(usize, &[G], &mut [G]) + Sync,
) {
    let serial = |ids: &[I], g: &[G], o: &mut [G]| {
        for ((&id, g), o) in ids
            .iter()
            .zip(g.chunks_exact(dim))
            .zip(o.chunks_exact_mut(dim))
        {
            f(id.index(), g, o);
        }
    };
    if out.len() < PARALLEL_MIN_ELEMS {
        return serial(ids, grad, out);
    }
    threads::install(|| {
        let chunk = threads::chunk_len(ids.len(), 64);
        ids.par_chunks(chunk)
            .zip(grad.par_chunks(chunk * dim))
            .zip(out.par_chunks_mut(chunk * dim))
            .for_each(|((ids, g), o)| serial(ids, g, o));
    });
}

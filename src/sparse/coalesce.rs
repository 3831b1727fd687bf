//! Coalescing: `(ids, rows)` with duplicates -> sorted unique ids + one summed row each.
//!
//! Math: for every distinct id `u` (ascending), `out[k(u), :] = sum_{i : ids[i] = u} values[i, :]`,
//! optionally divided by the count of `u` (`scale_grad_by_freq`) and with one id skipped
//! (`padding_idx`). `values` has `ids.len()` rows of `dim` elements.
//!
//! Fast CPU path, no atomics, deterministic: (1) a stable counting sort of positions into
//! row-range buckets, (2) each bucket sorted by `(id, position)` on its own thread, (3) each
//! output row summed by one thread in ascending position order, accumulating in `T::Acc`.
//! The sorted order and every sum's order are independent of the thread count, so results are
//! bit-identical for any number of threads. The portable path ([`coalesce_portable`]) computes
//! the same unique/inverse on the host and sums with candle's `index_add` into zeros (same
//! order, so bit-identical for f32/f64 up to the sign of an all-zero row).

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::dtype::Float;
use crate::embedding::try_alloc_uninit;
use crate::ids::{self, Id};
use crate::sparse::SparseGrad;
use crate::{threads, Error, Result};

/// Options of a coalesce.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CoalesceOptions {
    /// Drop every position whose id equals this (PyTorch's `padding_idx`: no gradient).
    pub skip: Option<usize>,
    /// Divide each summed row by the number of positions that hit it (`scale_grad_by_freq`).
    pub scale_by_count: bool,
}

/// Positions grouped by id: `unique[k]` owns `order[starts[k]..starts[k + 1]]` (ascending).
#[derive(Clone, Debug, Default)]
pub struct Groups {
    pub unique: Vec<i64>,
    pub starts: Vec<usize>,
    pub order: Vec<usize>,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.unique.len()
    }
    pub fn is_empty(&self) -> bool {
        self.unique.is_empty()
    }
    /// Positions of group `k`, ascending.
    pub fn positions(&self, k: usize) -> &[usize] {
        &self.order[self.starts[k]..self.starts[k + 1]]
    }
}

/// Bucket count and shift for a row-range split of `0..num_rows`: a power of two of buckets,
/// about 8 positions per bucket, so the per-bucket sorts are tiny (an MSD radix pass). The
/// count does not depend on the thread count (nor would the result if it did).
pub(crate) fn buckets(n: usize, num_rows: usize) -> (usize, u32) {
    let nb = (n / 8).next_power_of_two().clamp(1, 1 << 16);
    let bits = usize::BITS - num_rows.saturating_sub(1).leading_zeros();
    let shift = bits.saturating_sub(nb.trailing_zeros());
    (nb, shift)
}

/// Stable counting sort of the positions of `ids` (skipping `skip`) into row-range buckets.
/// Returns the positions (bucket by bucket, ascending within a bucket) and bucket offsets.
pub(crate) fn bucket_positions<I: Id>(
    ids: &[I],
    num_rows: usize,
    skip: Option<usize>,
) -> (Vec<usize>, Vec<usize>) {
    let (nb, shift) = buckets(ids.len(), num_rows);
    let keep = |id: usize| skip != Some(id);
    let mut counts = vec![0usize; nb + 1];
    for &i in ids {
        let id = i.index();
        if keep(id) {
            counts[(id >> shift) + 1] += 1;
        }
    }
    for b in 0..nb {
        counts[b + 1] += counts[b];
    }
    let offsets = counts.clone();
    let mut cursor = counts;
    let mut pos = vec![0usize; offsets[nb]];
    for (p, &i) in ids.iter().enumerate() {
        let id = i.index();
        if keep(id) {
            let b = id >> shift;
            pos[cursor[b]] = p;
            cursor[b] += 1;
        }
    }
    (pos, offsets)
}

/// Split `v` at the given offsets into disjoint mutable slices.
pub(crate) fn split_at_offsets<'a, T>(mut v: &'a mut [T], offsets: &[usize]) -> Vec<&'a mut [T]> {
    let mut parts = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        let (head, tail) = v.split_at_mut(w[1] - w[0]);
        parts.push(head);
        v = tail;
    }
    parts
}

/// Group the positions of (validated) `ids` by id, ids ascending, positions ascending.
pub fn group<I: Id>(ids: &[I], num_rows: usize, skip: Option<usize>) -> Groups {
    threads::install(|| {
        let (pos, offsets) = bucket_positions(ids, num_rows, skip);
        let mut keys: Vec<(u64, usize)> = pos.iter().map(|&p| (ids[p].index() as u64, p)).collect();
        // (id, position) pairs are distinct, so an unstable sort has one possible result.
        let parts = split_at_offsets(&mut keys, &offsets);
        if pos.len() < 1 << 13 {
            parts.into_iter().for_each(|part| part.sort_unstable());
        } else {
            parts
                .into_par_iter()
                .with_min_len(256)
                .for_each(|part| part.sort_unstable());
        }
        let mut g = Groups {
            unique: Vec::new(),
            starts: Vec::new(),
            order: Vec::with_capacity(keys.len()),
        };
        for (k, &(id, p)) in keys.iter().enumerate() {
            if g.unique.last() != Some(&(id as i64)) {
                g.unique.push(id as i64);
                g.starts.push(k);
            }
            g.order.push(p);
        }
        g.starts.push(keys.len());
        g
    })
}

/// Sum the rows of each group into `out` (`groups.len() * dim`), in position order, in `T::Acc`.
pub fn sum_groups<T: Float>(
    groups: &Groups,
    values: &[T],
    dim: usize,
    scale_by_count: bool,
    out: &mut [T],
) {
    debug_assert_eq!(out.len(), groups.len() * dim);
    if dim == 0 || groups.is_empty() {
        return;
    }
    let run = |first: usize, out: &mut [T]| {
        let mut acc: Vec<T::Acc> = vec![T::acc_from_f64(0.0); dim];
        for (j, dst) in out.chunks_exact_mut(dim).enumerate() {
            let pos = groups.positions(first + j);
            let row = |p: usize| &values[p * dim..(p + 1) * dim];
            for (a, &v) in acc.iter_mut().zip(row(pos[0])) {
                *a = v.to_acc();
            }
            for &p in &pos[1..] {
                for (a, &v) in acc.iter_mut().zip(row(p)) {
                    *a += v.to_acc();
                }
            }
            if scale_by_count && pos.len() > 1 {
                let c = T::acc_from_f64(pos.len() as f64);
                for (d, &a) in dst.iter_mut().zip(&acc) {
                    *d = T::from_acc(a / c);
                }
            } else {
                for (d, &a) in dst.iter_mut().zip(&acc) {
                    *d = T::from_acc(a);
                }
            }
        }
    };
    if groups.order.len() * dim < 1 << 15 {
        return run(0, out);
    }
    let chunk = threads::chunk_for(groups.len(), 16);
    threads::for_each_chunk_mut(out, chunk * dim, |c, out| run(c * chunk, out));
}

/// Fast CPU coalesce of row gradients: validates `ids` against `num_rows` and the length of
/// `values` (`ids.len() * dim`), then returns sorted unique ids and their summed rows.
pub fn coalesce_rows<I: Id, T: Float>(
    ids: &[I],
    values: &[T],
    dim: usize,
    num_rows: usize,
    opts: CoalesceOptions,
) -> Result<(Vec<i64>, Vec<T>)> {
    check_len(ids.len(), values.len(), dim)?;
    ids::validate(ids, num_rows, "index", "a gradient of a table")?;
    let groups = group(ids, num_rows, opts.skip);
    let mut out = try_alloc_uninit::<T>(groups.len() * dim)?;
    sum_groups(&groups, values, dim, opts.scale_by_count, &mut out);
    Ok((groups.unique, out))
}

/// [`coalesce_rows`] wrapped as a [`SparseGrad`] of a `(num_rows, dim)` table (CPU).
pub fn coalesce_to_grad<I: Id, T: Float>(
    ids: &[I],
    values: &[T],
    dim: usize,
    num_rows: usize,
    opts: CoalesceOptions,
) -> Result<SparseGrad> {
    let (unique, rows) = coalesce_rows(ids, values, dim, num_rows, opts)?;
    let t = Tensor::from_vec(rows, (unique.len(), dim), &Device::Cpu)?;
    Ok(SparseGrad::from_coalesced_unchecked(unique, t, num_rows))
}

fn check_len(n: usize, len: usize, dim: usize) -> Result<()> {
    if n.checked_mul(dim) != Some(len) {
        return Err(Error::Shape(format!(
            "values has {len} elements, expected {n} ids x {dim} = {}",
            n.saturating_mul(dim)
        )));
    }
    Ok(())
}

/// The accumulator dtype of a table dtype (f64 for f64, f32 otherwise).
pub fn acc_dtype(d: DType) -> DType {
    if d == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// Portable coalesce through candle ops on `values`' device: host-side unique/inverse, then
/// `zeros(nnz, D).index_add(inverse, values)` in the accumulator dtype, then the count division.
/// `values` is `(ids.len(), D)`.
pub fn coalesce_portable<I: Id>(
    ids: &[I],
    values: &Tensor,
    num_rows: usize,
    opts: CoalesceOptions,
) -> Result<SparseGrad> {
    let (n, dim) = values.dims2()?;
    if n != ids.len() {
        return Err(Error::Shape(format!(
            "values has {n} rows but there are {} ids",
            ids.len()
        )));
    }
    crate::dtype::check_float(values.dtype())?;
    ids::validate(ids, num_rows, "index", "a gradient of a table")?;
    let dev = values.device();
    let kept: Vec<u32> = (0..n)
        .filter(|&p| opts.skip != Some(ids[p].index()))
        .map(|p| p as u32)
        .collect();
    let mut unique: Vec<i64> = kept
        .iter()
        .map(|&p| ids[p as usize].index() as i64)
        .collect();
    unique.sort_unstable();
    unique.dedup();
    let inverse: Vec<u32> = kept
        .iter()
        .map(|&p| unique.partition_point(|&u| u < ids[p as usize].index() as i64) as u32)
        .collect();
    if unique.is_empty() {
        return SparseGrad::empty(num_rows, dim, values.dtype(), dev);
    }
    let acc = acc_dtype(values.dtype());
    let src = if kept.len() == n {
        values.to_dtype(acc)?
    } else {
        let k = Tensor::from_vec(kept.clone(), kept.len(), dev)?;
        values.index_select(&k, 0)?.to_dtype(acc)?
    };
    let inv = Tensor::from_vec(inverse.clone(), inverse.len(), dev)?;
    let mut sums = Tensor::zeros((unique.len(), dim), acc, dev)?.index_add(&inv, &src, 0)?;
    if opts.scale_by_count {
        let mut counts = vec![0f64; unique.len()];
        for &k in &inverse {
            counts[k as usize] += 1.0;
        }
        let c = Tensor::from_vec(counts, (unique.len(), 1), dev)?.to_dtype(acc)?;
        sums = sums.broadcast_div(&c)?;
    }
    let values = sums.to_dtype(values.dtype())?;
    Ok(SparseGrad::from_coalesced_unchecked(
        unique, values, num_rows,
    ))
}

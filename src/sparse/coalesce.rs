//! The grouping primitive: positions grouped by id, and one summed row per group.
//!
//! Every gradient that flows back through a lookup is built here (the plain lookup, the bag,
//! weight tying, the transformer embeddings, the GPU segment plans, `max_norm`'s unique rows):
//!
//! 1. [`group`]: the positions of `ids` grouped by id: sorted unique ids, and for each its
//!    positions in ascending order (optionally skipping one id, the padding row);
//! 2. [`sum_groups`]: for every group, its positions' rows summed in ascending position order
//!    by one thread, under the accumulation rule of [`crate::dtype`] ([`PlainRows`] for sums of
//!    table values, [`F64Rows`] for products formed in f64);
//! 3. [`coalesce_rows`]: the two together on `(ids, rows)`, the coalesce of a row gradient.
//!
//! Math: for every distinct id `u` (ascending), `out[k(u), :] = sum_{i : ids[i] = u} values[i, :]`,
//! optionally divided by the count of `u` (`scale_grad_by_freq`) and with one id skipped
//! (`padding_idx`). `values` has `ids.len()` rows of `dim` elements.
//!
//! Fast CPU path, no atomics, deterministic: (1) a stable counting sort of positions into
//! row-range buckets, (2) each bucket sorted by `(id, position)` on its own thread, (3) each
//! output row summed by one thread in ascending position order. The sorted order and every
//! sum's order are independent of the thread count, so results are bit-identical for any number
//! of threads. The portable path ([`coalesce_portable`], built on [`sum_groups_portable`]) uses
//! the same groups and sums with candle's `index_add` into zeros (same order, so bit-identical
//! for f32/f64 up to the sign of an all-zero row).

use candle_core::{DType, Device, Tensor};
use num_traits::Zero;
use rayon::prelude::*;

use crate::alloc::{self, try_alloc, try_alloc_uninit, try_filled, try_with_capacity};
pub use crate::dtype::acc_dtype;
use crate::dtype::{Accumulator, Float};
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
    /// The distinct ids, ascending.
    pub unique: Vec<i64>,
    /// `unique.len() + 1` offsets into `order`.
    pub starts: Vec<usize>,
    /// Every kept position, grouped by id, ascending within a group.
    pub order: Vec<usize>,
}

impl Groups {
    /// Number of groups (distinct ids).
    pub fn len(&self) -> usize {
        self.unique.len()
    }
    /// True when no position was kept.
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
    if shift >= usize::BITS {
        // One bucket over ids of all 64 bits: `id >> 64` does not exist; two buckets split by
        // the top bit instead (the grouping does not depend on the bucket count).
        return (2, usize::BITS - 1);
    }
    (nb, shift)
}

/// Stable counting sort of the positions of (validated) `ids` (skipping `skip`) into row-range
/// buckets. Returns the positions (bucket by bucket, ascending within a bucket) and the bucket
/// offsets.
pub(crate) fn bucket_positions<I: Id>(
    ids: &[I],
    num_rows: usize,
    skip: Option<usize>,
) -> Result<(Vec<usize>, Vec<usize>)> {
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
    let mut pos = try_alloc::<usize>(offsets[nb])?;
    for (p, &i) in ids.iter().enumerate() {
        let id = i.index();
        if keep(id) {
            let b = id >> shift;
            pos[cursor[b]] = p;
            cursor[b] += 1;
        }
    }
    Ok((pos, offsets))
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

/// `key(p)` of every kept position `p` of (validated) `ids`, sorted: bucketed by row range,
/// then each bucket sorted on its own. Keys must order like their ids (ties among equal ids are
/// then broken by the key alone).
fn sorted_keys<I: Id, K: Ord + Send>(
    ids: &[I],
    num_rows: usize,
    skip: Option<usize>,
    key: impl Fn(usize) -> K,
) -> Result<Vec<K>> {
    let (pos, offsets) = bucket_positions(ids, num_rows, skip)?;
    let mut keys = try_with_capacity(pos.len())?;
    keys.extend(pos.iter().map(|&p| key(p)));
    drop(pos);
    let parts = split_at_offsets(&mut keys, &offsets);
    if offsets[offsets.len() - 1] < 1 << 13 {
        parts.into_iter().for_each(|part| part.sort_unstable());
    } else {
        parts
            .into_par_iter()
            .with_min_len(256)
            .for_each(|part| part.sort_unstable());
    }
    Ok(keys)
}

/// Group the positions of (validated) `ids` by id, ids ascending, positions ascending; positions
/// whose id is `skip` belong to no group. Deterministic for any thread count.
pub fn group<I: Id>(ids: &[I], num_rows: usize, skip: Option<usize>) -> Result<Groups> {
    threads::install(|| {
        // (id, position) pairs are distinct, so an unstable sort has one possible result.
        let keys = sorted_keys(ids, num_rows, skip, |p| (ids[p].index() as u64, p))?;
        let mut g = Groups {
            unique: try_with_capacity(keys.len())?,
            starts: try_with_capacity(keys.len() + 1)?,
            order: try_with_capacity(keys.len())?,
        };
        for (k, &(id, p)) in keys.iter().enumerate() {
            if g.unique.last() != Some(&(id as i64)) {
                g.unique.push(id as i64);
                g.starts.push(k);
            }
            g.order.push(p);
        }
        g.starts.push(keys.len());
        Ok(g)
    })
}

/// The distinct ids of (validated) `ids`, ascending (the groups without their positions).
pub fn unique_ids<I: Id>(ids: &[I], num_rows: usize) -> Result<Vec<usize>> {
    threads::install(|| {
        let mut keys = sorted_keys(ids, num_rows, None, |p| ids[p].index())?;
        keys.dedup();
        Ok(keys)
    })
}

/// What a group sum adds: each position's contribution to its group's accumulator row.
pub trait GroupRows: Sync {
    /// The accumulator type (the rule of [`crate::dtype`]).
    type Acc: Accumulator;
    /// Start a group's accumulator with the contribution of its first position `p`.
    #[inline(always)]
    fn first(&self, p: usize, acc: &mut [Self::Acc]) {
        acc.fill(Self::Acc::zero());
        self.add(p, acc);
    }
    /// Add the contribution of position `p`.
    fn add(&self, p: usize, acc: &mut [Self::Acc]);
}

/// Row `p` of `values` (rows of `dim`) is position `p`'s contribution, summed in `T::Acc`.
pub struct PlainRows<'a, T> {
    /// `positions x dim` values, row-major.
    pub values: &'a [T],
    /// Row length.
    pub dim: usize,
}

impl<T: Float> GroupRows for PlainRows<'_, T> {
    type Acc = T::Acc;
    #[inline(always)]
    fn first(&self, p: usize, acc: &mut [T::Acc]) {
        let row = &self.values[p * self.dim..(p + 1) * self.dim];
        for (a, &v) in acc.iter_mut().zip(row) {
            *a = v.to_acc();
        }
    }
    #[inline(always)]
    fn add(&self, p: usize, acc: &mut [T::Acc]) {
        let row = &self.values[p * self.dim..(p + 1) * self.dim];
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v.to_acc();
        }
    }
}

/// Contributions formed in f64 by a closure: `F64Rows(|p, acc| ..)` adds position `p`'s terms
/// to `acc` (which starts at zero for each group).
pub struct F64Rows<F>(pub F);

impl<F: Fn(usize, &mut [f64]) + Sync> GroupRows for F64Rows<F> {
    type Acc = f64;
    #[inline(always)]
    fn add(&self, p: usize, acc: &mut [f64]) {
        (self.0)(p, acc)
    }
}

/// A `finish` for [`sum_groups`]: the f64 sums rounded once to `T`.
#[inline]
pub fn round_f64<T: Float>(acc: &[f64], _count: usize, dst: &mut [T]) {
    for (d, &a) in dst.iter_mut().zip(acc) {
        *d = T::of_f64(a);
    }
}

/// For every group `k`, sum its positions' contributions (`rows`, ascending position order, one
/// thread per output row) and write `finish(sum, count, out_row)` into row `k` of `out`
/// (`groups.len() * dim` elements).
pub fn sum_groups<R: GroupRows, O: Send>(
    groups: &Groups,
    dim: usize,
    rows: &R,
    out: &mut [O],
    finish: impl Fn(&[R::Acc], usize, &mut [O]) + Sync,
) {
    debug_assert_eq!(out.len(), groups.len() * dim);
    if dim == 0 || groups.is_empty() {
        return;
    }
    let run = |first: usize, out: &mut [O]| {
        let mut acc = vec![R::Acc::zero(); dim];
        for (j, dst) in out.chunks_exact_mut(dim).enumerate() {
            let pos = groups.positions(first + j);
            rows.first(pos[0], &mut acc);
            for &p in &pos[1..] {
                rows.add(p, &mut acc);
            }
            finish(&acc, pos.len(), dst);
        }
    };
    if groups.order.len() * dim < 1 << 15 {
        return run(0, out);
    }
    let chunk = threads::chunk_for(groups.len(), 16);
    threads::for_each_chunk_mut(out, chunk * dim, |c, out| run(c * chunk, out));
}

/// The coalesce of a row gradient (fast CPU path): validates `ids` against `num_rows` and the
/// length of `values` (`ids.len() * dim`), then returns the sorted unique ids and, for each, the
/// sum of its rows in `T::Acc` (divided by its count with `scale_by_count`).
pub fn coalesce_rows<I: Id, T: Float>(
    ids: &[I],
    values: &[T],
    dim: usize,
    num_rows: usize,
    opts: CoalesceOptions,
) -> Result<(Vec<i64>, Vec<T>)> {
    check_len(ids.len(), values.len(), dim)?;
    ids::validate(ids, num_rows, "index", "a gradient of a table")?;
    let groups = group(ids, num_rows, opts.skip)?;
    let mut out = try_alloc_uninit::<T>(groups.len() * dim)?;
    let scale = opts.scale_by_count;
    let rows = PlainRows { values, dim };
    sum_groups(&groups, dim, &rows, &mut out, |acc, count, dst| {
        if scale && count > 1 {
            let c = T::acc_from_f64(count as f64);
            for (d, &a) in dst.iter_mut().zip(acc) {
                *d = T::from_acc(a / c);
            }
        } else {
            for (d, &a) in dst.iter_mut().zip(acc) {
                *d = T::from_acc(a);
            }
        }
    });
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

/// Portable group sum through candle ops on `src`'s device: `src` is `(positions, D)`; returns
/// `zeros(groups, D).index_add(group_of, src[kept])` in dtype `acc`, where `kept` are the
/// positions that belong to a group, in ascending order, so candle adds each group's rows in
/// ascending position order (as [`sum_groups`] does).
pub fn sum_groups_portable(groups: &Groups, src: &Tensor, acc: DType) -> Result<Tensor> {
    let (n, dim) = src.dims2()?;
    let mut slot = try_filled(n, u32::MAX)?;
    for k in 0..groups.len() {
        for &p in groups.positions(k) {
            slot[p] = k as u32;
        }
    }
    let mut kept = try_with_capacity::<u32>(groups.order.len())?;
    let mut inverse = try_with_capacity::<u32>(groups.order.len())?;
    for (p, &s) in slot.iter().enumerate() {
        if s != u32::MAX {
            kept.push(p as u32);
            inverse.push(s);
        }
    }
    let dev = src.device();
    let sel = if kept.len() == n {
        src.clone()
    } else {
        src.index_select(&Tensor::from_vec(kept, groups.order.len(), dev)?, 0)?
    };
    let inv = Tensor::from_vec(inverse, groups.order.len(), dev)?;
    Ok(alloc::zeros((groups.len(), dim), acc, dev)?.index_add(&inv, &sel.to_dtype(acc)?, 0)?)
}

/// Portable coalesce through candle ops on `values`' device: the groups of [`group`], then
/// [`sum_groups_portable`] in the accumulator dtype, then the count division. `values` is
/// `(ids.len(), D)`.
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
    let groups = group(ids, num_rows, opts.skip)?;
    if groups.is_empty() {
        return SparseGrad::empty(num_rows, dim, values.dtype(), dev);
    }
    let acc = acc_dtype(values.dtype());
    let mut sums = sum_groups_portable(&groups, values, acc)?;
    if opts.scale_by_count {
        let counts = alloc::try_collect(groups.starts.windows(2).map(|w| (w[1] - w[0]) as f64))?;
        let c = Tensor::from_vec(counts, (groups.len(), 1), dev)?.to_dtype(acc)?;
        sums = sums.broadcast_div(&c)?;
    }
    let values = sums.to_dtype(values.dtype())?;
    Ok(SparseGrad::from_coalesced_unchecked(
        groups.unique,
        values,
        num_rows,
    ))
}

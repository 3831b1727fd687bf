//! Dense scatter-add: `dst[ids[i], :] += src[i, :]` (PyTorch's `index_add_` along dim 0).
//!
//! Fast CPU path, no atomics, deterministic: positions are counting-sorted (stably) into
//! destination row ranges; each range is owned by one thread, which applies its positions in
//! ascending order. Every destination row therefore receives its additions in the same order
//! as a serial loop, whatever the thread count, so the result is bit-identical to candle's
//! serial CPU `index_add` (the portable path, [`index_add_portable`]) for every dtype.

// `x = x + y`: the generic `Float` element types do not promise `AddAssign`.
#![allow(clippy::assign_op_pattern)]

use candle_core::Tensor;
use rayon::prelude::*;

use crate::alloc::try_alloc_uninit;
use crate::dtype::Float;
use crate::ids::{self, Id};
use crate::rows::RowsMut;
use crate::sparse::coalesce::{bucket_positions, split_at_offsets};
use crate::{threads, Error, Result};

fn check(dst_len: usize, dim: usize, n: usize, src_len: usize) -> Result<usize> {
    if dim == 0 {
        return Ok(0);
    }
    if dst_len % dim != 0 {
        return Err(Error::Shape(format!(
            "dst has {dst_len} elements, not a whole number of rows of {dim}"
        )));
    }
    if n.checked_mul(dim) != Some(src_len) {
        return Err(Error::Shape(format!(
            "src has {src_len} elements, expected {n} ids x {dim}"
        )));
    }
    Ok(dst_len / dim)
}

/// In place: `dst[ids[i]] += src[i]` for a row-major `dst` of rows of `dim` elements.
/// Validates everything before touching `dst`.
pub fn index_add_into<I: Id, T: Float>(
    dst: &mut [T],
    dim: usize,
    ids: &[I],
    src: &[T],
) -> Result<()> {
    let rows = check(dst.len(), dim, ids.len(), src.len())?;
    if dim == 0 {
        return Ok(());
    }
    ids::validate(ids, rows, "index", "the destination")?;
    let add_row = |d: &mut [T], p: usize| {
        for (x, &s) in d.iter_mut().zip(&src[p * dim..(p + 1) * dim]) {
            *x = *x + s;
        }
    };
    if ids.len() * dim < 1 << 15 {
        for (p, &id) in ids.iter().enumerate() {
            let i = id.index();
            add_row(&mut dst[i * dim..(i + 1) * dim], p);
        }
        return Ok(());
    }
    let (mut pos, offsets) = bucket_positions(ids, rows, None)?;
    let view = RowsMut::new(dst, dim);
    threads::install(|| {
        split_at_offsets(&mut pos, &offsets)
            .into_par_iter()
            .with_min_len(64)
            .for_each(|part| {
                for &p in part.iter() {
                    // SAFETY: buckets are disjoint row ranges, so no other thread touches this
                    // row; within the bucket rows are used one at a time.
                    let d = unsafe { view.row(ids[p].index()) };
                    add_row(d, p);
                }
            });
    });
    Ok(())
}

/// A new buffer holding `dst` with `src` rows added at `ids` (`dst` unchanged).
pub fn index_add<I: Id, T: Float>(dst: &[T], dim: usize, ids: &[I], src: &[T]) -> Result<Vec<T>> {
    let mut out = try_alloc_uninit::<T>(dst.len())?;
    index_add_to(dst, dim, ids, src, &mut out)?;
    Ok(out)
}

/// `out = dst` with `src` rows added at `ids`; `out` has `dst.len()` elements.
pub fn index_add_to<I: Id, T: Float>(
    dst: &[T],
    dim: usize,
    ids: &[I],
    src: &[T],
    out: &mut [T],
) -> Result<()> {
    let rows = check(dst.len(), dim, ids.len(), src.len())?;
    if out.len() != dst.len() {
        return Err(Error::Shape(format!(
            "out has {} elements, expected {}",
            out.len(),
            dst.len()
        )));
    }
    ids::validate(ids, rows, "index", "the destination")?;
    if dst.len() < 1 << 16 {
        out.copy_from_slice(dst);
    } else {
        threads::install(|| {
            let chunk = threads::chunk_len(dst.len(), 1 << 14);
            out.par_chunks_mut(chunk)
                .zip(dst.par_chunks(chunk))
                .for_each(|(o, d)| o.copy_from_slice(d));
        });
    }
    index_add_into(out, dim, ids, src)
}

/// Portable path: candle's `index_add` along dim 0 (`dst` `(V, ...)`, `src` `(n, ...)`).
pub fn index_add_portable<I: Id>(dst: &Tensor, ids: &[I], src: &Tensor) -> Result<Tensor> {
    let rows = dst.dims().first().copied().unwrap_or(0);
    ids::validate(ids, rows, "index", "the destination")?;
    let idx = ids::index_tensor(ids, rows, dst.device())?;
    Ok(dst.index_add(&idx, src, 0)?)
}

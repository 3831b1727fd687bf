//! The fast path: tiles of rows on the crate's pool, `gemm` per tile and query block.

use std::any::TypeId;
use std::sync::Mutex;

use num_traits::{One, Zero};

use super::topk::TopK;
use super::{Query, Ranked, Scorer, Table, COSMUL_EPSILON};
use crate::alloc::try_filled;
use crate::dtype::{Accumulator, Float};
use crate::kernels::cpu::linalg::{gemm_with, Threads};
use crate::{threads, Error, Result};

/// Table bytes per tile: the tile stays in cache while every query block passes over it.
const TILE_BYTES: usize = 1 << 20;
/// Queries per `gemm` call.
const QUERY_BLOCK: usize = 64;

/// Rows per tile for rows of `dim` elements of type `A` (never fewer than 1, at most 1024).
fn tile_rows<A>(dim: usize) -> usize {
    (TILE_BYTES / (dim.max(1) * std::mem::size_of::<A>())).clamp(1, 1024)
}

/// A tile's rows as the accumulation type: the table itself when it already is (f32, f64),
/// else widened into `scratch` (f16, bf16: exact).
fn rows_as_acc<'s, T: Float>(rows: &'s [T], scratch: &'s mut Vec<T::Acc>) -> &'s [T::Acc] {
    if TypeId::of::<T>() == TypeId::of::<T::Acc>() {
        // SAFETY: T and T::Acc are the same type (checked just above), so the slice is
        // reinterpreted as itself.
        return unsafe { std::slice::from_raw_parts(rows.as_ptr() as *const T::Acc, rows.len()) };
    }
    scratch.clear();
    scratch.extend(rows.iter().map(|v| v.to_acc()));
    scratch
}

/// Per-thread buffers of one chunk of tiles.
struct Buffers<A> {
    /// A tile's rows widened to `A` (16-bit tables only).
    widened: Vec<A>,
    /// Products of a query block with a tile's rows, `(QUERY_BLOCK, tile)`.
    block: Vec<A>,
    /// 3CosMul's running products over a tile's rows: positive terms, negative terms.
    pos: Vec<A>,
    neg: Vec<A>,
}

impl<A: Accumulator> Buffers<A> {
    fn new(tile: usize, cosmul: bool) -> Result<Self> {
        let products = if cosmul { tile } else { 0 };
        Ok(Buffers {
            widened: Vec::new(),
            block: try_filled(QUERY_BLOCK * tile, A::zero())?,
            pos: try_filled(products, A::one())?,
            neg: try_filled(products, A::one())?,
        })
    }
}

/// Score every tile of the query's range and hand each output's scores for the tile's rows to
/// `visit(local, output, first_row, scores)`. Tiles are grouped in chunks run on the pool;
/// each chunk gets a fresh `local` from `new_local`, and the chunks' locals come back in
/// chunk order.
fn drive<T, L, N, V>(
    table: &Table<'_, T>,
    query: &Query<'_, T::Acc>,
    new_local: N,
    visit: V,
) -> Result<Vec<L>>
where
    T: Float,
    L: Send,
    N: Fn() -> L + Sync,
    V: Fn(&mut L, usize, usize, &[T::Acc]) + Sync,
{
    query.check(table.len(), table.dim)?;
    let dim = table.dim;
    let tile = tile_rows::<T::Acc>(dim);
    let span = query.range.end - query.range.start;
    let tiles = span.div_ceil(tile);
    let per_chunk = threads::chunk_for(tiles, 1);
    let chunks = tiles.div_ceil(per_chunk);
    let results: Mutex<Vec<Option<L>>> = Mutex::new((0..chunks).map(|_| None).collect());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    threads::run_chunks(chunks, &|c| {
        let cosmul = matches!(query.scorer, Scorer::CosMul { .. });
        let mut bufs = match Buffers::<T::Acc>::new(tile, cosmul) {
            Ok(b) => b,
            Err(e) => {
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                return;
            }
        };
        let mut local = new_local();
        for t in c * per_chunk..((c + 1) * per_chunk).min(tiles) {
            let r0 = query.range.start + t * tile;
            let r1 = (r0 + tile).min(query.range.end);
            score_tile(table, query, (r0, r1), &mut bufs, &mut |o, s| {
                visit(&mut local, o, r0, s)
            });
        }
        results.lock().unwrap_or_else(|p| p.into_inner())[c] = Some(local);
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

/// The scores of rows `r0..r1` for every output of `query`, each handed to `emit(output, s)`.
fn score_tile<T: Float>(
    table: &Table<'_, T>,
    query: &Query<'_, T::Acc>,
    (r0, r1): (usize, usize),
    bufs: &mut Buffers<T::Acc>,
    emit: &mut dyn FnMut(usize, &[T::Acc]),
) {
    let (dim, nr) = (table.dim, r1 - r0);
    let rows = rows_as_acc(&table.rows[r0 * dim..r1 * dim], &mut bufs.widened);
    let norms = &table.norms[r0..r1];
    let cosmul = matches!(query.scorer, Scorer::CosMul { .. });
    let (pos, neg) = if cosmul {
        (&mut bufs.pos[..nr], &mut bufs.neg[..nr])
    } else {
        (&mut bufs.pos[..0], &mut bufs.neg[..0])
    };
    pos.fill(T::Acc::one());
    neg.fill(T::Acc::one());
    let half = <T::Acc as Accumulator>::of_f64(0.5);
    for q0 in (0..query.count).step_by(QUERY_BLOCK) {
        let nq = QUERY_BLOCK.min(query.count - q0);
        let block = &mut bufs.block[..nq * nr];
        // block (nq x nr) = queries[q0..q0+nq] (nq x D) @ rows^T (D x nr)
        gemm_with(
            Threads::Caller,
            (nq, nr, dim),
            block,
            &query.vectors[q0 * dim..(q0 + nq) * dim],
            (dim, 1),
            rows,
            (1, dim),
        );
        for (j, line) in block.chunks_exact_mut(nr.max(1)).enumerate() {
            for (s, &norm) in line.iter_mut().zip(norms) {
                *s = *s / norm;
            }
            match query.scorer {
                Scorer::Cosine => emit(q0 + j, line),
                Scorer::CosMul { positive } => {
                    let acc = if q0 + j < positive {
                        &mut *pos
                    } else {
                        &mut *neg
                    };
                    for (p, &s) in acc.iter_mut().zip(line.iter()) {
                        *p = *p * ((T::Acc::one() + s) * half);
                    }
                }
            }
        }
    }
    if cosmul {
        let eps = <T::Acc as Accumulator>::of_f64(COSMUL_EPSILON);
        for (p, &n) in pos.iter_mut().zip(neg.iter()) {
            *p = *p / (n + eps);
        }
        emit(0, pos);
    }
}

/// Every output's scores over the query's range: `(outputs, end - start)`, row-major.
pub fn scores<T: Float>(table: &Table<'_, T>, query: &Query<'_, T::Acc>) -> Result<Vec<T::Acc>> {
    query.check(table.len(), table.dim)?;
    let (start, span) = (query.range.start, query.range.end - query.range.start);
    let total =
        crate::alloc::checked_elems(&[query.outputs(), span], std::mem::size_of::<T::Acc>())?;
    let mut out = try_filled(total, T::Acc::zero())?;
    let dst = Dst(out.as_mut_ptr());
    drive(
        table,
        query,
        || (),
        |_, o, r0, s| {
            // SAFETY: output `o`'s scores for rows r0..r0+len land in its own row of `out`, at
            // columns no other tile writes (tiles are disjoint row ranges).
            unsafe { dst.write(o * span + (r0 - start), s) }
        },
    )?;
    Ok(out)
}

/// Each output's `k` best rows (see the module docs); `exclude` is empty or one list of rows per
/// output, skipped in that output's answer.
pub fn top_k<T: Float>(
    table: &Table<'_, T>,
    query: &Query<'_, T::Acc>,
    k: usize,
    exclude: &[Vec<usize>],
) -> Result<Vec<Ranked<T::Acc>>> {
    let outputs = query.outputs();
    if !exclude.is_empty() && exclude.len() != outputs {
        return Err(Error::invalid(format!(
            "{} exclusion lists for {outputs} outputs",
            exclude.len()
        )));
    }
    let mut sorted: Vec<Vec<usize>> = exclude.to_vec();
    for e in &mut sorted {
        e.sort_unstable();
        e.dedup();
    }
    let k = k.min(query.range.end.saturating_sub(query.range.start));
    let none: &[usize] = &[];
    let locals = drive(
        table,
        query,
        || (0..outputs).map(|_| TopK::new(k)).collect::<Vec<_>>(),
        |tops, o, r0, s| {
            let ex = sorted.get(o).map_or(none, |e| e.as_slice());
            let top = &mut tops[o];
            for (i, &v) in s.iter().enumerate() {
                top.offer(r0 + i, v, ex);
            }
        },
    )?;
    let mut merged: Vec<TopK<T::Acc>> = (0..outputs).map(|_| TopK::new(k)).collect();
    for local in locals {
        for (m, t) in merged.iter_mut().zip(local) {
            m.merge(t);
        }
    }
    Ok(merged.into_iter().map(TopK::finish).collect())
}

/// A raw destination written at disjoint places by many threads.
struct Dst<A>(*mut A);
// SAFETY: every write goes to a range no other thread writes (see `scores`).
unsafe impl<A: Send> Sync for Dst<A> {}
impl<A: Copy> Dst<A> {
    /// # Safety
    /// `at..at + src.len()` is inside the buffer and written by no other thread.
    unsafe fn write(&self, at: usize, src: &[A]) {
        std::ptr::copy_nonoverlapping(src.as_ptr(), self.0.add(at), src.len());
    }
}

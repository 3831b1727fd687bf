//! The fast path: tiles of rows on the crate's pool, the table's products ([`Rows`]) per tile
//! and query block.

use std::sync::Mutex;

use num_traits::{One, Zero};

use super::rows::{Products, Rows};
use super::topk::TopK;
use super::{Query, Ranked, Scorer, COSMUL_EPSILON};
use crate::alloc::try_filled;
use crate::dtype::Accumulator;
use crate::{threads, Error, Result};

/// Table bytes per tile: the tile stays in cache while every query block passes over it.
const TILE_BYTES: usize = 1 << 20;
/// Queries per product call.
const QUERY_BLOCK: usize = 64;

/// Rows per tile for rows of `dim` elements of type `A` (never fewer than 1, at most 1024).
fn tile_rows<A>(dim: usize) -> usize {
    (TILE_BYTES / (dim.max(1) * std::mem::size_of::<A>())).clamp(1, 1024)
}

/// Per-thread buffers of one chunk of tiles.
struct Buffers<A> {
    /// Products of a query block with a tile's rows, `(min(queries, QUERY_BLOCK), tile)`.
    block: Products<A>,
    /// 3CosMul's running products over a tile's rows: positive terms, negative terms.
    pos: Vec<A>,
    neg: Vec<A>,
}

impl<A: Accumulator> Buffers<A> {
    fn new(tile: usize, queries: usize, cosmul: bool) -> Result<Self> {
        let products = if cosmul { tile } else { 0 };
        Ok(Buffers {
            block: Products {
                values: try_filled(queries.min(QUERY_BLOCK) * tile, A::zero())?,
                scratch: Vec::new(),
            },
            pos: try_filled(products, A::one())?,
            neg: try_filled(products, A::one())?,
        })
    }
}

/// Score every tile of the query's range and hand each output's scores for the tile's rows to
/// `visit(local, output, first_row, scores)`. Tiles are grouped in chunks run on the pool;
/// each chunk gets a fresh `local` from `new_local`, and the chunks' locals come back in
/// chunk order.
fn drive<R, L, N, V>(table: &R, query: &Query<'_, R::Acc>, new_local: N, visit: V) -> Result<Vec<L>>
where
    R: Rows + ?Sized,
    L: Send,
    N: Fn() -> L + Sync,
    V: Fn(&mut L, usize, usize, &[R::Acc]) + Sync,
{
    query.check(table.len(), table.dim())?;
    let tile = tile_rows::<R::Acc>(table.dim());
    let span = query.range.end - query.range.start;
    let tiles = span.div_ceil(tile);
    let per_chunk = threads::chunk_for(tiles, 1);
    let chunks = tiles.div_ceil(per_chunk);
    let results: Mutex<Vec<Option<L>>> = Mutex::new((0..chunks).map(|_| None).collect());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    threads::run_chunks(chunks, &|c| {
        let cosmul = matches!(query.scorer, Scorer::CosMul { .. });
        let mut bufs = match Buffers::<R::Acc>::new(tile, query.count, cosmul) {
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
fn score_tile<R: Rows + ?Sized>(
    table: &R,
    query: &Query<'_, R::Acc>,
    (r0, r1): (usize, usize),
    bufs: &mut Buffers<R::Acc>,
    emit: &mut dyn FnMut(usize, &[R::Acc]),
) {
    let (dim, nr) = (table.dim(), r1 - r0);
    let norms = &table.norms()[r0..r1];
    let cosmul = matches!(query.scorer, Scorer::CosMul { .. });
    let (pos, neg) = if cosmul {
        (&mut bufs.pos[..nr], &mut bufs.neg[..nr])
    } else {
        (&mut bufs.pos[..0], &mut bufs.neg[..0])
    };
    pos.fill(R::Acc::one());
    neg.fill(R::Acc::one());
    let half = <R::Acc as Accumulator>::of_f64(0.5);
    for q0 in (0..query.count).step_by(QUERY_BLOCK) {
        let nq = QUERY_BLOCK.min(query.count - q0);
        // block (nq x nr) = queries[q0..q0+nq] (nq x D) . rows r0..r1
        let queries = &query.vectors[q0 * dim..(q0 + nq) * dim];
        table.products(queries, r0..r1, &mut bufs.block);
        let block = &mut bufs.block.values[..nq * nr];
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
                        *p = *p * ((R::Acc::one() + s) * half);
                    }
                }
            }
        }
    }
    if cosmul {
        let eps = <R::Acc as Accumulator>::of_f64(COSMUL_EPSILON);
        for (p, &n) in pos.iter_mut().zip(neg.iter()) {
            *p = *p / (n + eps);
        }
        emit(0, pos);
    }
}

/// Every output's scores over the query's range: `(outputs, end - start)`, row-major.
pub fn scores<R: Rows + ?Sized>(table: &R, query: &Query<'_, R::Acc>) -> Result<Vec<R::Acc>> {
    query.check(table.len(), table.dim())?;
    let (start, span) = (query.range.start, query.range.end - query.range.start);
    let total =
        crate::alloc::checked_elems(&[query.outputs(), span], std::mem::size_of::<R::Acc>())?;
    let mut out = try_filled(total, R::Acc::zero())?;
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
pub fn top_k<R: Rows + ?Sized>(
    table: &R,
    query: &Query<'_, R::Acc>,
    k: usize,
    exclude: &[Vec<usize>],
) -> Result<Vec<Ranked<R::Acc>>> {
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
    let mut merged: Vec<TopK<R::Acc>> = (0..outputs).map(|_| TopK::new(k)).collect();
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

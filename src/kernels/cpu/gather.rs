//! Row gather: `out[k, :] = map(table[ids[k], :])`. One read of each row, one write of each
//! output row, no zero-fill, no intermediate. Ids must be validated by the caller.

use super::prefetch::{prefetch_row, DISTANCE};
use crate::ids::Id;
use crate::threads;

/// Below this many output elements the pool's dispatch costs more than it saves.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// Rows per work item of the parallel split: small enough that a late thread leaves little to
/// wait for, large enough that the per-chunk prefetch warm-up and the atomic are negligible.
const CHUNK_ROWS_MIN: usize = 64;

/// Run `serial(ids[a..b], out[a*dim..b*dim])` over chunks covering all rows.
///
/// One thread, or little work: the calling thread does it all, with no pool round trip (on a
/// loaded machine waking a pool thread can cost more than a whole lookup). Otherwise the caller
/// and the pool's threads claim 64+-row chunks from one counter (`threads::run_chunks`), so a
/// thread that is scheduled late takes fewer chunks, or none, instead of delaying the end. Row
/// copies do not depend on the split, so the result is the same for any thread count.
fn split_rows<I: Id, D: Send>(
    ids: &[I],
    out: &mut [D],
    dim: usize,
    serial: impl Fn(&[I], &mut [D]) + Sync,
) {
    assert_eq!(
        out.len(),
        ids.len() * dim,
        "gather: out must hold ids.len() rows"
    );
    let nthreads = threads::get_num_threads();
    if nthreads <= 1 || out.len() < PARALLEL_MIN_ELEMS {
        return serial(ids, out);
    }
    let chunk = threads::chunk_for(ids.len(), CHUNK_ROWS_MIN);
    threads::for_each_chunk_mut(out, chunk * dim, |c, dst| {
        let a = c * chunk;
        serial(&ids[a..a + dst.len() / dim], dst);
    });
}

/// The serial loop shared by both entry points: `row(table[ids[k]], out[k])` for every `k`, with
/// the table row `DISTANCE` ids ahead prefetched. A chunk starts by prefetching its first
/// `DISTANCE` rows (the thread that ran the previous chunk prefetched nothing for this one), and
/// the steady-state loop has no bounds test on the look-ahead.
#[inline(always)]
fn for_each_row<S, D, I: Id>(
    table: &[S],
    dim: usize,
    ids: &[I],
    out: &mut [D],
    mut row: impl FnMut(&[S], &mut [D]),
) {
    let src = |id: I| {
        let a = id.index() * dim;
        &table[a..a + dim]
    };
    for &id in ids.iter().take(DISTANCE) {
        prefetch_row(src(id));
    }
    let steady = ids.len().saturating_sub(DISTANCE);
    let (out_head, out_tail) = out.split_at_mut(steady * dim);
    for ((&id, &ahead), dst) in ids[..steady]
        .iter()
        .zip(&ids[DISTANCE.min(ids.len())..])
        .zip(out_head.chunks_exact_mut(dim))
    {
        prefetch_row(src(ahead));
        row(src(id), dst);
    }
    for (&id, dst) in ids[steady..].iter().zip(out_tail.chunks_exact_mut(dim)) {
        row(src(id), dst);
    }
}

/// Gather rows of `table` (rows of `dim` elements) at `ids` into `out` (`ids.len() * dim`),
/// converting each element with `map` (the identity for same-dtype lookups).
pub fn gather_rows_map<S, D, I>(
    table: &[S],
    dim: usize,
    ids: &[I],
    out: &mut [D],
    map: impl Fn(S) -> D + Sync,
) where
    S: Copy + Sync,
    D: Copy + Send,
    I: Id,
{
    debug_assert_eq!(out.len(), ids.len() * dim);
    if dim == 0 || ids.is_empty() {
        return;
    }
    let serial = |ids: &[I], out: &mut [D]| {
        for_each_row(table, dim, ids, out, |src, dst| {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = map(s);
            }
        })
    };
    split_rows(ids, out, dim, serial)
}

/// Same-dtype gather: a plain row copy (`copy_from_slice` becomes `memcpy`).
pub fn gather_rows<T: Copy + Send + Sync, I: Id>(
    table: &[T],
    dim: usize,
    ids: &[I],
    out: &mut [T],
) {
    if dim == 0 || ids.is_empty() {
        return;
    }
    let serial = |ids: &[I], out: &mut [T]| {
        for_each_row(table, dim, ids, out, |src, dst| dst.copy_from_slice(src))
    };
    split_rows(ids, out, dim, serial)
}

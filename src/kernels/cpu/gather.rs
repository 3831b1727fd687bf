//! Row gather: `out[k, :] = map(table[ids[k], :])`. One read of each row, one write of each
//! output row, no zero-fill, no intermediate. Ids must be validated by the caller.

use rayon::prelude::*;

use super::prefetch::{prefetch_row, DISTANCE};
use crate::ids::Id;
use crate::threads;

/// Below this many output elements the pool's dispatch costs more than it saves.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

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
        for (k, (&id, dst)) in ids.iter().zip(out.chunks_exact_mut(dim)).enumerate() {
            if let Some(&ahead) = ids.get(k + DISTANCE) {
                let a = ahead.index() * dim;
                prefetch_row(&table[a..a + dim]);
            }
            let src = &table[id.index() * dim..id.index() * dim + dim];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = map(s);
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
        for (k, (&id, dst)) in ids.iter().zip(out.chunks_exact_mut(dim)).enumerate() {
            if let Some(&ahead) = ids.get(k + DISTANCE) {
                let a = ahead.index() * dim;
                prefetch_row(&table[a..a + dim]);
            }
            let start = id.index() * dim;
            dst.copy_from_slice(&table[start..start + dim]);
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

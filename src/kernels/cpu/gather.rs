//! Row gather: `out[k, :] = map(table[ids[k], :])`. One read of each row, one write of each
//! output row, no zero-fill, no intermediate. Ids must be validated by the caller.
//!
//! Rows are prefetched a row-size-dependent distance ahead, and same-dtype outputs larger than
//! the caches are written with streaming stores ([`super::tuning`], [`super::stream`]). Neither
//! changes a single bit of the result: the slow reference is the plain copy loop
//! ([`gather_rows_reference`]) and the portable candle `index_select` path of the callers.

use super::prefetch::prefetch_row;
use super::stream::{self, StreamWidth};
use super::tuning::{self, Tuning};
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
/// the table row `distance` ids ahead prefetched (none when `distance` is 0). A chunk starts by
/// prefetching its first `distance` rows (the thread that ran the previous chunk prefetched
/// nothing for this one), and the steady-state loop has no bounds test on the look-ahead.
#[inline(always)]
fn for_each_row<S, D, I: Id>(
    table: &[S],
    dim: usize,
    ids: &[I],
    out: &mut [D],
    distance: usize,
    mut row: impl FnMut(&[S], &mut [D]),
) {
    let src = |id: I| {
        let a = id.index() * dim;
        &table[a..a + dim]
    };
    for &id in ids.iter().take(distance) {
        prefetch_row(src(id));
    }
    let steady = if distance == 0 {
        0
    } else {
        ids.len().saturating_sub(distance)
    };
    let (out_head, out_tail) = out.split_at_mut(steady * dim);
    for ((&id, &ahead), dst) in ids[..steady]
        .iter()
        .zip(&ids[distance.min(ids.len())..])
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
    let distance = tuning::get().prefetch_rows(dim * std::mem::size_of::<S>());
    let serial = |ids: &[I], out: &mut [D]| {
        for_each_row(table, dim, ids, out, distance, |src, dst| {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = map(s);
            }
        })
    };
    split_rows(ids, out, dim, serial)
}

/// Same-dtype gather: a plain row copy (`copy_from_slice` becomes `memcpy`), or streaming
/// stores for outputs of at least [`Tuning::stream_min_bytes`] whose start and row size allow
/// them. Settings from [`tuning::get`].
pub fn gather_rows<T: Copy + Send + Sync, I: Id>(
    table: &[T],
    dim: usize,
    ids: &[I],
    out: &mut [T],
) {
    gather_rows_tuned(table, dim, ids, out, tuning::get())
}

/// [`gather_rows`] with explicit settings `t` (tests and sweeps pin a path with them).
pub fn gather_rows_tuned<T: Copy + Send + Sync, I: Id>(
    table: &[T],
    dim: usize,
    ids: &[I],
    out: &mut [T],
    t: Tuning,
) {
    if dim == 0 || ids.is_empty() {
        return;
    }
    let row_bytes = dim * std::mem::size_of::<T>();
    let distance = t.prefetch_rows(row_bytes);
    match streaming_width(out, row_bytes, &t) {
        // Every chunk starts on a row boundary, and rows are a multiple of the width, so every
        // row a thread writes is aligned too.
        Some(w) => split_rows(ids, out, dim, |ids: &[I], out: &mut [T]| {
            for_each_row(table, dim, ids, out, distance, |src, dst| {
                // SAFETY: `src` and `dst` are whole rows of `row_bytes` in distinct buffers,
                // `dst` is aligned to `w` and `row_bytes` a multiple of it (`width_for`).
                unsafe {
                    stream::copy_row(src.as_ptr().cast(), dst.as_mut_ptr().cast(), row_bytes, w)
                }
            });
            // Make the weakly ordered stores visible before the chunk is reported done.
            stream::fence();
        }),
        None => split_rows(ids, out, dim, |ids: &[I], out: &mut [T]| {
            for_each_row(table, dim, ids, out, distance, |src, dst| {
                dst.copy_from_slice(src)
            })
        }),
    }
}

/// The streaming store width for writing `out` (rows of `row_bytes`), or `None` when `out` is
/// below the threshold or not aligned for any width.
fn streaming_width<T>(out: &[T], row_bytes: usize, t: &Tuning) -> Option<StreamWidth> {
    let bytes = std::mem::size_of_val(out);
    if bytes < t.stream_min_bytes {
        return None;
    }
    stream::width_for(out.as_ptr().cast(), row_bytes)
}

/// The slow reference of the gathers: one row after the other, no prefetch, no threads, no
/// streaming.
pub fn gather_rows_reference<S: Copy, D, I: Id>(
    table: &[S],
    dim: usize,
    ids: &[I],
    out: &mut [D],
    map: impl Fn(S) -> D,
) {
    for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(dim.max(1))) {
        let a = id.index() * dim;
        for (d, &s) in dst.iter_mut().zip(&table[a..a + dim]) {
            *d = map(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: usize, dim: usize) -> Vec<f32> {
        (0..rows * dim)
            .map(|i| (i as f32 * 0.37).sin() * 1e3)
            .collect()
    }

    fn ids(n: usize, rows: usize) -> Vec<i64> {
        // a fixed pseudo-random walk with repeats, covering first and last rows
        (0..n as i64)
            .map(|k| (k * 7919 + k * k * 31) % rows as i64)
            .collect()
    }

    /// Every prefetch distance and both store kinds give the reference's bytes, at row sizes
    /// that stream (multiples of 16/32/64 bytes) and that do not, across the parallel split.
    #[test]
    fn tuned_gathers_match_the_reference_bit_for_bit() {
        let rows = 997;
        for dim in [1usize, 3, 4, 8, 16, 17, 64, 100, 128, 512] {
            let tab = table(rows, dim);
            let n = (1 << 16) / dim + 37; // past PARALLEL_MIN_ELEMS: several chunks
            let ids = ids(n, rows);
            let mut want = vec![0f32; n * dim];
            gather_rows_reference(&tab, dim, &ids, &mut want, |x| x);
            for prefetch_bytes in [0usize, 1, 4096, 8 << 10, 1 << 20] {
                for stream_min_bytes in [0usize, usize::MAX] {
                    let t = Tuning {
                        prefetch_bytes,
                        stream_min_bytes,
                        ..Tuning::default()
                    };
                    let mut got = vec![f32::NAN; n * dim];
                    if stream_min_bytes == 0 && dim % 4 == 0 {
                        // the streaming path is really taken where the row size allows it
                        let w = streaming_width(&got, dim * 4, &t);
                        let aligned = (got.as_ptr() as usize) % 16 == 0;
                        assert_eq!(w.is_some(), aligned && cfg!(target_arch = "x86_64"));
                    }
                    gather_rows_tuned(&tab, dim, &ids, &mut got, t);
                    let (g, w): (Vec<u32>, Vec<u32>) = (
                        got.iter().map(|x| x.to_bits()).collect(),
                        want.iter().map(|x| x.to_bits()).collect(),
                    );
                    assert!(g == w, "dim {dim} {t:?}");
                }
            }
        }
    }

    /// The converting gather with the default settings matches the reference, short and long.
    #[test]
    fn converting_gather_matches_the_reference() {
        let (rows, dim) = (301, 24);
        let tab = table(rows, dim);
        for n in [1usize, 5, 16, 17, 5000] {
            let ids = ids(n, rows);
            let mut want = vec![0f64; n * dim];
            gather_rows_reference(&tab, dim, &ids, &mut want, f64::from);
            let mut got = vec![f64::NAN; n * dim];
            gather_rows_map(&tab, dim, &ids, &mut got, f64::from);
            assert_eq!(got, want);
        }
    }
}

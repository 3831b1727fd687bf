//! Shared pieces of the positional encodings: position-span checks, the broadcast add of table
//! rows onto `(..., T, dim)` inputs, and a deterministic sum over leading dims. (Gradient rows
//! scattered to table rows are coalesced by the crate's grouping primitive,
//! [`crate::sparse::coalesce`].)
//!
//! Every reduction here sums in a fixed order (never split by thread), so results are
//! bit-identical for any thread count.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::alloc::{checked_elems, try_filled};
use crate::dtype::Float;
use crate::{storage, threads, Error, Result};

/// Work (in elements) below which a kernel runs on the calling thread.
pub const PAR_MIN: usize = 1 << 15;

/// Check that positions `offset..offset+len` lie in `0..max_len`. A negative offset or a span
/// past the table is `IndexOutOfRange` naming the first bad position.
pub fn check_span(
    offset: i64,
    len: usize,
    max_len: usize,
    container: &'static str,
) -> Result<usize> {
    if offset < 0 {
        return Err(Error::IndexOutOfRange {
            what: "offset",
            index: offset as i128,
            container,
            size: max_len,
        });
    }
    let off = offset as usize;
    if (off as u128 + len as u128) > max_len as u128 {
        return Err(Error::IndexOutOfRange {
            what: "position",
            index: off as i128 + (len as i128 - 1).max(0),
            container,
            size: max_len,
        });
    }
    Ok(off)
}

/// Split a `(..., T, dim)` shape into `(lead, T)`, checking rank >= 2 and the last dim.
pub fn split_seq_shape(shape: &[usize], dim: usize, what: &str) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::shape(format!(
            "{what} must have shape (..., T, {dim}), got {shape:?}"
        )));
    }
    let last = shape[shape.len() - 1];
    if last != dim {
        return Err(Error::shape(format!(
            "{what} has last dimension {last}, expected {dim} (shape {shape:?})"
        )));
    }
    let t = shape[shape.len() - 2];
    let lead = shape[..shape.len() - 2].iter().product::<usize>();
    Ok((lead, t))
}

/// `out[b, t, :] = x[b, t, :] + rows[t, :]` for every leading index `b`
/// (`rows` holds `T * dim` elements; `x` and `out` hold `lead * T * dim`).
pub fn add_rows<T: Float>(x: &[T], rows: &[T], out: &mut [T]) {
    debug_assert_eq!(x.len(), out.len());
    let block = rows.len();
    if block == 0 {
        return;
    }
    let body = |(xo, oo): (&[T], &mut [T])| {
        for ((o, &a), &r) in oo.iter_mut().zip(xo).zip(rows) {
            *o = a + r;
        }
    };
    if x.len() < PAR_MIN {
        x.chunks(block).zip(out.chunks_mut(block)).for_each(body);
    } else {
        // Blocks of whole (T, dim) slabs, split further by chunk_len when there are few slabs.
        let chunk = threads::install(|| threads::chunk_len(x.len(), 1 << 13));
        let chunk = chunk.div_ceil(block) * block;
        threads::install(|| {
            x.par_chunks(chunk)
                .zip(out.par_chunks_mut(chunk))
                .for_each(|(xc, oc)| xc.chunks(block).zip(oc.chunks_mut(block)).for_each(body))
        });
    }
}

/// The fast path of every position table: `out = x + table[offset..offset+T]` for `x` of
/// `shape` `(..., T, dim)`, after every check (shape, span within the table's `(max_len, dim)`,
/// sizes, a CPU table of element type `T`). `container` names the table in errors.
pub fn add_table_rows<T: Float>(
    table: &Tensor,
    x: &[T],
    shape: &[usize],
    offset: i64,
    out: &mut [T],
    container: &'static str,
) -> Result<()> {
    let (max_len, dim) = table.dims2()?;
    let (_, t) = split_seq_shape(shape, dim, "x")?;
    let off = check_span(offset, t, max_len, container)?;
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if x.len() != out.len() || Some(x.len()) != n {
        return Err(Error::shape("x, out and shape disagree in size"));
    }
    if table.dtype() != T::DT || !table.device().is_cpu() {
        return Err(Error::dtype(format!(
            "add_into needs a CPU {:?} table, this one is {:?}",
            T::DT,
            table.dtype()
        )));
    }
    storage::read::<T, ()>(table, |tab| {
        add_rows(x, &tab[off * dim..(off + t) * dim], out)
    })
}

/// The portable path of every position table: `x + table.narrow(0, offset, T)` with candle ops
/// on the table's device, in `x`'s dtype.
pub fn add_table_rows_portable(
    table: &Tensor,
    x: &Tensor,
    offset: i64,
    container: &'static str,
) -> Result<Tensor> {
    let (max_len, dim) = table.dims2()?;
    let (_, t) = split_seq_shape(x.dims(), dim, "x")?;
    let off = check_span(offset, t, max_len, container)?;
    let rows = table.narrow(0, off, t)?.to_dtype(x.dtype())?;
    Ok(x.broadcast_add(&rows)?)
}

/// `0, 1, .., n - 1` as an f64 tensor of shape `(n,)` on `device`: exact below 2^53, far past
/// any length that can be allocated (a `u32` range would wrap past 2^32).
pub fn arange_f64(n: usize, device: &Device) -> Result<Tensor> {
    Ok(Tensor::arange(0f64, n as f64, device)?)
}

/// Sum a `(lead, rows, dim)` buffer over `lead`, in f64, in index order: `(rows, dim)`.
pub fn sum_leading<T: Float>(g: &[T], lead: usize, rows: usize, dim: usize) -> Result<Vec<T>> {
    let mut out = try_filled(checked_elems(&[rows, dim], 8)?, T::of_f64(0.0))?;
    let slab = rows * dim;
    let one_row = |(r, o): (usize, &mut [T])| {
        let mut acc = vec![0.0f64; dim];
        for b in 0..lead {
            let src = &g[b * slab + r * dim..b * slab + (r + 1) * dim];
            for (a, &v) in acc.iter_mut().zip(src) {
                *a += v.as_f64();
            }
        }
        for (o, a) in o.iter_mut().zip(acc) {
            *o = T::of_f64(a);
        }
    };
    if dim == 0 {
        return Ok(out);
    }
    if g.len() < PAR_MIN {
        out.chunks_mut(dim).enumerate().for_each(one_row);
    } else {
        threads::install(|| out.par_chunks_mut(dim).enumerate().for_each(one_row));
    }
    Ok(out)
}

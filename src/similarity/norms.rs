//! Row norms `|v_i| = sqrt(sum_d v_id^2)`: the sum of squares in f64 (every row on one thread,
//! in column order), the root rounded to the table's accumulation type.

use candle_core::{DType, Tensor};

use num_traits::Zero;

use crate::alloc::try_filled;
use crate::dtype::{acc_dtype, Accumulator, Float};
use crate::{threads, Error, Result};

/// The norm of each of the `n` rows of `dim` in `rows` (row-major): `n` values.
pub fn row_norms<T: Float>(rows: &[T], n: usize, dim: usize) -> Result<Vec<T::Acc>> {
    if Some(rows.len()) != n.checked_mul(dim) {
        return Err(Error::Shape(format!(
            "the table holds {} numbers, expected {n} rows of {dim}",
            rows.len()
        )));
    }
    let mut out = try_filled(n, T::Acc::zero())?;
    let chunk = threads::chunk_for(n, (1 << 14) / dim.max(1));
    threads::for_each_chunk_mut(&mut out, chunk, |c, part| {
        let first = c * chunk;
        for (k, o) in part.iter_mut().enumerate() {
            let row = &rows[(first + k) * dim..(first + k + 1) * dim];
            let sum: f64 = row.iter().map(|v| v.as_f64() * v.as_f64()).sum();
            *o = <T::Acc as Accumulator>::of_f64(sum.sqrt());
        }
    });
    Ok(out)
}

/// Portable [`row_norms`]: candle ops on `rows` (`(n, D)`, any float dtype, any device); an
/// `(n,)` tensor of the accumulation dtype.
pub fn row_norms_portable(rows: &Tensor) -> Result<Tensor> {
    let acc = acc_dtype(rows.dtype());
    Ok(rows
        .to_dtype(DType::F64)?
        .sqr()?
        .sum(1)?
        .sqrt()?
        .to_dtype(acc)?)
}

//! Scores of query vectors against every quantized row, without dequantizing the table:
//! `out[i, r] = sum_j x_ij (scale_r q_rj + bias_r) = scale_r (x_i . q_r) + bias_r sum_j x_ij`
//! (`x @ W.T` of the dequantized table `W`, as `Embedding::attend`). The row's codes are read
//! once for all queries; the integer-weighted dot product accumulates in f32 over eight
//! lanes. This is the kernel a similarity search over int8 / int4 rows (KeyedVectors'
//! `most_similar` on a quantized table: divide by [`QuantizedTable::row_norms`]) needs.

use super::format::{Bits, RowLayout};
use super::table::QuantizedTable;
use crate::alloc::{checked_elems, try_alloc, try_alloc_uninit};
use crate::{threads, Error, Result};

/// `x . codes` of one row, eight lanes of f32 (vectorisable).
#[inline(always)]
fn dot_codes(layout: RowLayout, row: &[u8], x: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    match layout.bits {
        Bits::Eight => {
            for (xs, qs) in x.chunks(8).zip(row.chunks(8)) {
                for (k, (&a, &q)) in xs.iter().zip(qs).enumerate() {
                    lanes[k] += a * f32::from(q);
                }
            }
        }
        Bits::Four => {
            let codes = &row[..layout.codes_bytes()];
            for (xs, qs) in x.chunks(8).zip(codes.chunks(4)) {
                for (k, (pair, &q)) in xs.chunks_exact(2).zip(qs).enumerate() {
                    lanes[2 * k] += pair[0] * f32::from(q & 0x0F);
                    lanes[2 * k + 1] += pair[1] * f32::from(q >> 4);
                }
            }
        }
    }
    lanes.iter().sum()
}

impl QuantizedTable {
    /// Scores of the `n` queries `x` (`n x dim`, row-major) against every row: `n x rows`
    /// values, `out[i * rows + r] = x_i . W_r` with `W_r` the dequantized row.
    pub fn attend(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let (rows, dim) = (self.rows(), self.dim());
        if Some(x.len()) != n.checked_mul(dim) {
            return Err(Error::shape(format!(
                "x has {} elements, expected {n} x {dim}",
                x.len()
            )));
        }
        let sums: Vec<f32> = crate::alloc::try_collect(
            (0..n).map(|i| x[i * dim..(i + 1) * dim].iter().sum::<f32>()),
        )?;
        // Row-major by table row first (each row's codes read once), transposed at the end.
        let mut by_row = try_alloc::<f32>(checked_elems(&[rows, n], 4)?)?;
        let layout = self.layout();
        let width = layout.row_bytes();
        if n > 0 && rows > 0 {
            self.with_bytes(|packed| {
                let chunk = threads::chunk_for(rows, 256);
                threads::for_each_chunk_mut(&mut by_row, chunk * n, |c, part| {
                    for (k, scores) in part.chunks_exact_mut(n).enumerate() {
                        let r = c * chunk + k;
                        let row = &packed[r * width..(r + 1) * width];
                        let (scale, bias) = layout.scale_bias(row);
                        for (i, s) in scores.iter_mut().enumerate() {
                            let xi = &x[i * dim..(i + 1) * dim];
                            *s = scale * dot_codes(layout, row, xi) + bias * sums[i];
                        }
                    }
                });
            });
        }
        let mut out = try_alloc_uninit::<f32>(by_row.len())?;
        for (r, scores) in by_row.chunks_exact(n.max(1)).enumerate() {
            for (i, &s) in scores.iter().enumerate() {
                out[i * rows + r] = s;
            }
        }
        Ok(out)
    }

    /// The L2 norm of every dequantized row (in f64, rounded to f32).
    pub fn row_norms(&self) -> Result<Vec<f32>> {
        let mut out = try_alloc::<f32>(self.rows())?;
        let layout = self.layout();
        let width = layout.row_bytes();
        self.with_bytes(|packed| {
            for (r, norm) in out.iter_mut().enumerate() {
                let row = &packed[r * width..(r + 1) * width];
                let (s, b) = layout.scale_bias(row);
                let sq: f64 = (0..layout.dim)
                    .map(|j| f64::from(s) * f64::from(layout.code(row, j)) + f64::from(b))
                    .map(|v| v * v)
                    .sum();
                *norm = sq.sqrt() as f32;
            }
        });
        Ok(out)
    }
}

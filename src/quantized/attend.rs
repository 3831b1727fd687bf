//! Scores of query vectors against every quantized row, without dequantizing the table:
//! `out[i, r] = sum_j x_ij (scale_r q_rj + bias_r) = scale_r (x_i . q_r) + bias_r sum_j x_ij`
//! (`x @ W.T` of the dequantized table `W`, as `Embedding::attend`). The row's codes are read
//! once for all queries; the integer-weighted dot product accumulates in f32 over eight
//! lanes. This is the kernel a similarity search over int8 / int4 rows (KeyedVectors'
//! `most_similar` on a quantized table: divide by [`QuantizedTable::row_norms`]) needs;
//! [`QuantizedRows`] is that table as the similarity scan's [`Rows`].

use std::ops::Range;

use super::format::{Bits, RowLayout};
use super::table::QuantizedTable;
use crate::alloc::{checked_elems, try_alloc, try_alloc_uninit};
use crate::similarity::{Products, Rows};
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

/// A quantized table's packed rows with the norms of its dequantized rows, as the similarity
/// scan reads them (`crate::similarity::scores` / `top_k` of the dequantized table, computed
/// from the codes: `q . W_r = scale_r (q . code_r) + bias_r sum(q)`).
#[derive(Clone, Copy, Debug)]
pub struct QuantizedRows<'a> {
    layout: RowLayout,
    packed: &'a [u8],
    norms: &'a [f32],
}

impl<'a> QuantizedRows<'a> {
    /// `packed` (`norms.len()` rows in `layout`, e.g. from [`QuantizedTable::with_bytes`]) with
    /// `norms` (one per row, [`QuantizedTable::row_norms`]).
    pub fn new(layout: RowLayout, packed: &'a [u8], norms: &'a [f32]) -> Result<Self> {
        if Some(packed.len()) != norms.len().checked_mul(layout.row_bytes()) {
            return Err(Error::shape(format!(
                "{} packed bytes are not {} rows (one per norm) of {}",
                packed.len(),
                norms.len(),
                layout.row_bytes()
            )));
        }
        Ok(QuantizedRows {
            layout,
            packed,
            norms,
        })
    }
}

impl Rows for QuantizedRows<'_> {
    type Acc = f32;

    fn len(&self) -> usize {
        self.norms.len()
    }

    fn dim(&self) -> usize {
        self.layout.dim
    }

    fn norms(&self) -> &[f32] {
        self.norms
    }

    fn products(&self, q: &[f32], rows: Range<usize>, out: &mut Products<f32>) {
        let dim = self.layout.dim.max(1);
        let Products {
            values,
            scratch: sums,
        } = out;
        sums.clear();
        sums.extend(q.chunks_exact(dim).map(|x| x.iter().sum::<f32>()));
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the clone is compiled for.
                return unsafe { self.products_avx2(q, sums, rows, values) };
            }
        }
        self.products_serial(q, sums, rows, values)
    }
}

impl QuantizedRows<'_> {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn products_avx2(&self, x: &[f32], sums: &[f32], rows: Range<usize>, out: &mut [f32]) {
        self.products_serial(x, sums, rows, out)
    }

    /// `out[i * nr + k] = scale_r (x_i . code_r) + bias_r sums_i` for row `r = rows.start + k`.
    #[inline(always)]
    fn products_serial(&self, x: &[f32], sums: &[f32], rows: Range<usize>, out: &mut [f32]) {
        let (dim, width, nr) = (self.layout.dim.max(1), self.layout.row_bytes(), rows.len());
        for (k, r) in rows.enumerate() {
            let row = &self.packed[r * width..(r + 1) * width];
            let (scale, bias) = self.layout.scale_bias(row);
            for (i, (xi, &sum)) in x.chunks_exact(dim).zip(sums).enumerate() {
                out[i * nr + k] = scale * dot_codes(self.layout, row, xi) + bias * sum;
            }
        }
    }
}

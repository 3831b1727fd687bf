//! LayerNorm over the last dimension (Ba et al.), forward and backward, in f64.
//!
//! For each row `e` of `D` values, with `γ`, `β` of `(D,)`:
//! ```text
//! μ = mean(e),  σ² = mean((e - μ)²)          (biased variance)
//! rstd = 1 / sqrt(σ² + eps),  x̂ = (e - μ) · rstd,  y = x̂ · γ + β
//! ```
//! Backward for the upstream gradient `g` of `y`:
//! `dβ = Σ_rows g`, `dγ = Σ_rows g · x̂`, `de = rstd · (gγ − mean(gγ) − x̂ · mean(gγ · x̂))`.
//!
//! Rows run in parallel in fixed chunks of [`ROWS_PER_CHUNK`]; the parameter gradients are
//! summed per chunk, then over chunks in chunk order, so every result is bit-identical for any
//! thread count. The inputs and outputs of each row are the caller's (closures), so a block that
//! builds its rows from several tables (the transformer embeddings) needs no `(N, D)` input
//! buffer.

use rayon::prelude::*;

use crate::alloc::try_alloc;
use crate::dtype::Float;
use crate::{threads, Result};

/// Rows per work unit (fixed, so reductions are thread-count independent).
pub const ROWS_PER_CHUNK: usize = 64;

/// The parameters of a LayerNorm, as f64.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// The scale `γ`, `(D,)`.
    pub gamma: Vec<f64>,
    /// The shift `β`, `(D,)`.
    pub beta: Vec<f64>,
    /// Added to the variance.
    pub eps: f64,
}

/// What the backward needs from the forward: `x̂` (`N x D`) and `rstd` (`N`).
#[derive(Clone, Debug)]
pub struct Saved {
    /// The normalised rows.
    pub xhat: Vec<f64>,
    /// `1 / sqrt(σ² + eps)` of each row.
    pub rstd: Vec<f64>,
}

/// The gradients of a backward: `de` (`N x D`) and the parameters' `(D,)` gradients.
#[derive(Clone, Debug)]
pub struct Grads {
    /// Gradient of the input rows.
    pub de: Vec<f64>,
    /// Gradient of `γ`.
    pub dgamma: Vec<f64>,
    /// Gradient of `β`.
    pub dbeta: Vec<f64>,
}

impl LayerNorm {
    /// The row length `D`.
    pub fn dim(&self) -> usize {
        self.gamma.len()
    }

    /// Forward over `n` rows: `input(r, e)` writes row `r`'s input into `e`; `output(r, y, o)`
    /// gets `y` (f64) and writes row `r` of `out` (`o`, `D` elements).
    pub fn forward<T: Float>(
        &self,
        n: usize,
        out: &mut [T],
        input: impl Fn(usize, &mut [f64]) + Sync,
        output: impl Fn(usize, &[f64], &mut [T]) + Sync,
    ) -> Result<Saved> {
        let d = self.dim();
        debug_assert_eq!(out.len(), n * d);
        let mut xhat = try_alloc::<f64>(n * d)?;
        let mut rstd = try_alloc::<f64>(n)?;
        let chunk = ROWS_PER_CHUNK * d.max(1);
        let work = |(c, ((oc, xc), rc)): ChunkOut<'_, T>| {
            let mut e = vec![0.0f64; d];
            let mut y = vec![0.0f64; d];
            for (k, r) in rc.iter_mut().enumerate() {
                let row = c * ROWS_PER_CHUNK + k;
                input(row, &mut e);
                let mean = e.iter().sum::<f64>() / d as f64;
                let var = e.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
                let rs = 1.0 / (var + self.eps).sqrt();
                *r = rs;
                let xrow = &mut xc[k * d..(k + 1) * d];
                for (((x, yj), &ej), (&g, &b)) in xrow
                    .iter_mut()
                    .zip(y.iter_mut())
                    .zip(&e)
                    .zip(self.gamma.iter().zip(&self.beta))
                {
                    let xh = (ej - mean) * rs;
                    *x = xh;
                    *yj = xh * g + b;
                }
                output(row, &y, &mut oc[k * d..(k + 1) * d]);
            }
        };
        threads::install(|| {
            out.par_chunks_mut(chunk)
                .zip(xhat.par_chunks_mut(chunk))
                .zip(rstd.par_chunks_mut(ROWS_PER_CHUNK))
                .enumerate()
                .for_each(work)
        });
        Ok(Saved { xhat, rstd })
    }

    /// Backward of [`LayerNorm::forward`]: `grad(r, g)` writes the upstream gradient of row `r`
    /// (as f64) into `g`.
    pub fn backward(
        &self,
        saved: &Saved,
        grad: impl Fn(usize, &mut [f64]) + Sync,
    ) -> Result<Grads> {
        let d = self.dim();
        let n = saved.rstd.len();
        let mut de = try_alloc::<f64>(n * d)?;
        let nchunks = n.div_ceil(ROWS_PER_CHUNK);
        let mut partial = try_alloc::<f64>(nchunks * 2 * d)?;
        if d > 0 && n > 0 {
            let chunk = ROWS_PER_CHUNK * d;
            let work = |(ci, (dc, acc)): (usize, (&mut [f64], &mut [f64]))| {
                let (dgam, dbet) = acc.split_at_mut(d);
                let mut g = vec![0.0f64; d];
                for (k, derow) in dc.chunks_mut(d).enumerate() {
                    let row = ci * ROWS_PER_CHUNK + k;
                    grad(row, &mut g);
                    let xh = &saved.xhat[row * d..(row + 1) * d];
                    let (mut s1, mut s2) = (0.0f64, 0.0f64);
                    for j in 0..d {
                        dgam[j] += g[j] * xh[j];
                        dbet[j] += g[j];
                        let dx = g[j] * self.gamma[j];
                        s1 += dx;
                        s2 += dx * xh[j];
                    }
                    let (m1, m2) = (s1 / d as f64, s2 / d as f64);
                    let rs = saved.rstd[row];
                    for j in 0..d {
                        derow[j] = rs * (g[j] * self.gamma[j] - m1 - xh[j] * m2);
                    }
                }
            };
            threads::install(|| {
                de.par_chunks_mut(chunk)
                    .zip(partial.par_chunks_mut(2 * d))
                    .enumerate()
                    .for_each(work)
            });
        }
        let mut dgamma = try_alloc::<f64>(d)?;
        let mut dbeta = try_alloc::<f64>(d)?;
        for row in partial.chunks_exact(2 * d.max(1)).take(nchunks) {
            for j in 0..d {
                dgamma[j] += row[j];
                dbeta[j] += row[d + j];
            }
        }
        Ok(Grads { de, dgamma, dbeta })
    }
}

/// One chunk of the forward's outputs: (chunk index, ((output, x̂), rstd per row)).
type ChunkOut<'a, T> = (usize, ((&'a mut [T], &'a mut [f64]), &'a mut [f64]));

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of `L = Σ c · LayerNorm(e)` against the backward's `de`, `dγ`, `dβ`.
    #[test]
    fn backward_matches_finite_differences() {
        let (n, d) = (3usize, 5usize);
        let e: Vec<f64> = (0..n * d)
            .map(|k| ((k * 37 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let c: Vec<f64> = (0..n * d)
            .map(|k| ((k * 13 % 7) as f64 - 3.0) / 2.0)
            .collect();
        let ln = LayerNorm {
            gamma: vec![1.5, -0.5, 2.0, 0.25, 1.0],
            beta: vec![0.1, 0.2, -0.3, 0.0, 0.5],
            eps: 1e-5,
        };
        let loss = |ln: &LayerNorm, e: &[f64]| -> f64 {
            let mut out = vec![0.0f64; n * d];
            ln.forward(
                n,
                &mut out,
                |r, x| x.copy_from_slice(&e[r * d..(r + 1) * d]),
                |_, y, o| o.copy_from_slice(y),
            )
            .unwrap();
            out.iter().zip(&c).map(|(a, b)| a * b).sum()
        };
        let mut out = vec![0.0f64; n * d];
        let saved = ln
            .forward(
                n,
                &mut out,
                |r, x| x.copy_from_slice(&e[r * d..(r + 1) * d]),
                |_, y, o| o.copy_from_slice(y),
            )
            .unwrap();
        let g = ln
            .backward(&saved, |r, g| g.copy_from_slice(&c[r * d..(r + 1) * d]))
            .unwrap();
        let h = 1e-6;
        for k in 0..n * d {
            let (mut p, mut m) = (e.clone(), e.clone());
            p[k] += h;
            m[k] -= h;
            let fd = (loss(&ln, &p) - loss(&ln, &m)) / (2.0 * h);
            assert!((fd - g.de[k]).abs() < 1e-6, "de[{k}]: {fd} vs {}", g.de[k]);
        }
        for j in 0..d {
            let (mut p, mut m) = (ln.clone(), ln.clone());
            p.gamma[j] += h;
            m.gamma[j] -= h;
            let fd = (loss(&p, &e) - loss(&m, &e)) / (2.0 * h);
            assert!((fd - g.dgamma[j]).abs() < 1e-6, "dgamma[{j}]");
            let (mut p, mut m) = (ln.clone(), ln.clone());
            p.beta[j] += h;
            m.beta[j] -= h;
            let fd = (loss(&p, &e) - loss(&m, &e)) / (2.0 * h);
            assert!((fd - g.dbeta[j]).abs() < 1e-6, "dbeta[{j}]");
        }
    }
}

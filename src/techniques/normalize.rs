//! Unit-L2-norm rows and the exact gradient through the normalisation.
//!
//! Forward: `y = w / max(||w||_2, eps)` with `eps = 1e-12` (PyTorch's `F.normalize`).
//! Backward, for an upstream gradient `g` of `y`:
//! - `||w|| > eps`: `dL/dw = (g - y (y . g)) / ||w||` (the projection removing the radial part);
//! - `||w|| <= eps`: `y = w / eps` is linear, so `dL/dw = g / eps`.
//!
//! Norms and dot products accumulate in f64 whatever the table dtype.

use crate::dtype::Float;

/// The normalisation's epsilon (PyTorch's `F.normalize` default).
pub const EPS: f64 = 1e-12;

/// `||row||_2` accumulated in f64.
#[inline]
pub fn l2_norm<T: Float>(row: &[T]) -> f64 {
    row.iter()
        .map(|&v| {
            let v = v.as_f64();
            v * v
        })
        .sum::<f64>()
        .sqrt()
}

/// The factor a row is multiplied by: `1 / max(||row||, eps)`.
#[inline]
pub fn inv_norm<T: Float>(row: &[T]) -> f64 {
    1.0 / l2_norm(row).max(EPS)
}

/// `out = scale * dL/dw` for one row `w` with upstream gradient `g` of `w / max(||w||, eps)`.
/// `scale` carries any further per-row factor (the dropout mask); `scale == 0` writes zeros.
pub fn grad_row<T: Float, G: Float>(w: &[T], g: &[G], scale: f64, out: &mut [G]) {
    if scale == 0.0 {
        out.fill(G::of_f64(0.0));
        return;
    }
    let n = l2_norm(w);
    if n > EPS {
        let inv = 1.0 / n;
        // y . g with y = w / n
        let yg = w
            .iter()
            .zip(g)
            .map(|(&a, &b)| a.as_f64() * b.as_f64())
            .sum::<f64>()
            * inv;
        let s = scale * inv;
        for ((o, &a), &b) in out.iter_mut().zip(w).zip(g) {
            *o = G::of_f64(s * (b.as_f64() - a.as_f64() * inv * yg));
        }
    } else {
        let s = scale / EPS;
        for (o, &b) in out.iter_mut().zip(g) {
            *o = G::of_f64(s * b.as_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of L = sum(c * normalize(w)) against `grad_row`.
    #[test]
    fn gradient_matches_finite_differences() {
        let w = [0.3f64, -1.2, 2.0, 0.7];
        let c = [0.5f64, 1.5, -0.25, 2.0];
        let loss = |w: &[f64]| -> f64 {
            let s = inv_norm(w);
            w.iter().zip(&c).map(|(a, b)| a * s * b).sum()
        };
        let mut got = [0.0f64; 4];
        grad_row(&w, &c, 1.0, &mut got);
        for k in 0..4 {
            let h = 1e-6;
            let (mut p, mut m) = (w, w);
            p[k] += h;
            m[k] -= h;
            let fd = (loss(&p) - loss(&m)) / (2.0 * h);
            assert!((fd - got[k]).abs() < 1e-8, "{k}: {fd} vs {}", got[k]);
        }
    }

    #[test]
    fn tiny_rows_take_the_eps_branch() {
        let w = [1e-14f64, 0.0];
        let g = [1.0f64, 2.0];
        let mut got = [0.0f64; 2];
        grad_row(&w, &g, 2.0, &mut got);
        assert_eq!(got, [2.0 / EPS, 4.0 / EPS]);
        assert_eq!(inv_norm(&w), 1.0 / EPS);
    }
}

//! Normalisations: p-norms of rows and PyTorch's in-place `max_norm` renormalisation (here),
//! and LayerNorm forward/backward ([`layer_norm`]).

pub mod layer_norm;

use rayon::prelude::*;

use crate::dtype::Float;
use crate::rows::RowsMut;
use crate::{threads, Error, Result};

/// Check a `norm_type`: any p > 0, or +inf.
pub fn check_norm_type(p: f64) -> Result<()> {
    if p > 0.0 || p == f64::INFINITY {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "norm_type must be > 0 (or inf), got {p}"
        )))
    }
}

/// The p-norm of a row, computed in f64.
pub fn row_norm<T: Float>(row: &[T], p: f64) -> f64 {
    if p == f64::INFINITY {
        row.iter().fold(0.0f64, |m, &x| m.max(x.as_f64().abs()))
    } else if p == 2.0 {
        row.iter()
            .map(|&x| x.as_f64() * x.as_f64())
            .sum::<f64>()
            .sqrt()
    } else if p == 1.0 {
        row.iter().map(|&x| x.as_f64().abs()).sum::<f64>()
    } else {
        row.iter()
            .map(|&x| x.as_f64().abs().powf(p))
            .sum::<f64>()
            .powf(1.0 / p)
    }
}

/// PyTorch's `embedding_renorm_`: each *unique* row `k` in `rows` whose p-norm exceeds
/// `max_norm` is scaled in place by `max_norm / (norm + 1e-7)`.
pub fn renorm_rows<T: Float>(table: &mut [T], dim: usize, rows: &[usize], max_norm: f64, p: f64) {
    let view = RowsMut::new(table, dim);
    let scale_one = |r: usize| {
        // SAFETY: `rows` holds unique ids (callers pass `sparse::coalesce::unique_ids` output).
        let row = unsafe { view.row(r) };
        let norm = row_norm(row, p);
        if norm > max_norm {
            let scale = max_norm / (norm + 1e-7);
            for x in row.iter_mut() {
                *x = T::of_f64(x.as_f64() * scale);
            }
        }
    };
    if rows.len() * dim < 1 << 15 {
        rows.iter().for_each(|&r| scale_one(r));
    } else {
        threads::install(|| rows.par_iter().for_each(|&r| scale_one(r)));
    }
}

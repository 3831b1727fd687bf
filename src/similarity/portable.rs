//! The references: scores from candle ops on any device, and top-k by a full sort.

use candle_core::Tensor;

use super::topk::rank;
use super::{Ranked, Scorer, COSMUL_EPSILON};
use crate::dtype::{acc_dtype, Accumulator};
use crate::{Error, Result};

/// Portable [`super::scores`]: `rows` `(n, D)` (any float dtype), `norms` `(n,)`, `queries`
/// `(q, D)`; computed in the accumulation dtype of `rows`. Returns `(outputs, end - start)`.
pub fn scores_portable(
    rows: &Tensor,
    norms: &Tensor,
    queries: &Tensor,
    range: std::ops::Range<usize>,
    scorer: Scorer,
) -> Result<Tensor> {
    let acc = acc_dtype(rows.dtype());
    let (n, _) = rows.dims2()?;
    let (q, _) = queries.dims2()?;
    if range.start > range.end || range.end > n {
        return Err(Error::invalid(format!(
            "rows {}..{} are not a range of a table of {n} rows",
            range.start, range.end
        )));
    }
    let span = range.end - range.start;
    let rows = rows.narrow(0, range.start, span)?.to_dtype(acc)?;
    let norms = norms.narrow(0, range.start, span)?.to_dtype(acc)?;
    let queries = queries.to_dtype(acc)?.to_device(rows.device())?;
    // c (q, span) = queries @ rows^T / norms
    let c = queries
        .matmul(&rows.t()?)?
        .broadcast_div(&norms.unsqueeze(0)?)?;
    match scorer {
        Scorer::Cosine => Ok(c),
        Scorer::CosMul { positive } => {
            if positive == 0 || positive > q {
                return Err(Error::invalid(format!(
                    "3CosMul needs 1 to {q} positive terms, got {positive}"
                )));
            }
            let m = ((c + 1.0)? * 0.5)?;
            let product = |from: usize, to: usize| -> Result<Tensor> {
                let mut p = Tensor::ones((1, span), acc, m.device())?;
                for j in from..to {
                    p = p.mul(&m.narrow(0, j, 1)?)?;
                }
                Ok(p)
            };
            let num = product(0, positive)?;
            let den = (product(positive, q)? + COSMUL_EPSILON)?;
            Ok(num.div(&den)?)
        }
    }
}

/// Reference top-k of one output's `scores` (row `i` at `scores[i - start]`): every row not in
/// `exclude`, sorted by the kernel's order, the first `k`.
pub fn top_k_sorted<A: Accumulator>(
    scores: &[A],
    start: usize,
    k: usize,
    exclude: &[usize],
) -> Ranked<A> {
    let mut all: Ranked<A> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (start + i, s))
        .filter(|(r, _)| !exclude.contains(r))
        .collect();
    all.sort_by(|a, b| rank(b, a));
    all.truncate(k);
    all
}

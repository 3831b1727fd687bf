//! Running top-k selection with a total order: higher score first, equal scores by lower row
//! first, NaN after every number (NaN among themselves by row). The best `k` under a total
//! order are one set, whatever order candidates arrive in and however partial selections are
//! merged, so a parallel selection gives the same answer for any split.

use std::cmp::Ordering;

use crate::dtype::Accumulator;

/// `Greater` when `a` ranks before `b` (see the module docs).
#[inline]
pub(crate) fn rank<A: Accumulator>(a: &(usize, A), b: &(usize, A)) -> Ordering {
    match (a.1.is_nan(), b.1.is_nan()) {
        (false, false) => {
            a.1.partial_cmp(&b.1)
                .unwrap_or(Ordering::Equal)
                .then(b.0.cmp(&a.0))
        }
        (true, true) => b.0.cmp(&a.0),
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
    }
}

/// The best `k` candidates offered so far (at most `2k` kept between prunes).
#[derive(Clone, Debug)]
pub(crate) struct TopK<A> {
    k: usize,
    kept: Vec<(usize, A)>,
    /// The k-th best after the last prune: a candidate not ranking before it cannot enter.
    bar: Option<(usize, A)>,
}

impl<A: Accumulator> TopK<A> {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            kept: Vec::new(),
            bar: None,
        }
    }

    /// Offer row `row` with `score`, unless `row` is in `exclude` (sorted).
    #[inline]
    pub(crate) fn offer(&mut self, row: usize, score: A, exclude: &[usize]) {
        // The common case in one comparison: a number below the bar's never enters (a NaN
        // compares false and takes the full ranking below).
        if self.bar.is_some_and(|b| score < b.1) {
            return;
        }
        let cand = (row, score);
        if self.k == 0
            || self
                .bar
                .is_some_and(|b| rank(&cand, &b) != Ordering::Greater)
        {
            return;
        }
        if !exclude.is_empty() && exclude.binary_search(&row).is_ok() {
            return;
        }
        self.kept.push(cand);
        if self.kept.len() >= 2 * self.k.max(8) {
            self.prune();
        }
    }

    /// Keep the best `k`, and raise the bar to the k-th.
    fn prune(&mut self) {
        if self.kept.len() > self.k {
            self.kept
                .select_nth_unstable_by(self.k - 1, |a, b| rank(b, a));
            self.kept.truncate(self.k);
            self.bar = self.kept.iter().copied().min_by(|a, b| rank(a, b));
        }
    }

    /// Add another selection's candidates (of the same `k`).
    pub(crate) fn merge(&mut self, other: TopK<A>) {
        self.kept.extend(other.kept);
        self.prune();
    }

    /// The best `k`, best first.
    pub(crate) fn finish(mut self) -> Vec<(usize, A)> {
        self.prune();
        self.kept.sort_unstable_by(|a, b| rank(b, a));
        self.kept
    }
}

//! The inputs of a bag reduction, shared by the generic loop ([`super::bag`]), the register
//! kernel ([`super::bag_simd`]), the CUDA kernels and the backward: the reduction, the bags as
//! CSR bounds, and one call's arguments. Their own file so the two CPU kernels need not import
//! each other.

use crate::alloc::try_alloc;
use crate::ids::Id;
use crate::Result;

/// The reduction applied to each bag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// `sum_k w_k * W[ids[k]]`.
    Sum,
    /// The sum divided by the number of non-padding ids (0 for an empty bag).
    Mean,
    /// Column-wise maximum (0 for an empty bag).
    Max,
}

/// The bags of one call: ids (flat) and validated CSR bounds, as `EmbeddingBag::bags` builds
/// them (the one offsets check); the CPU and CUDA bag kernels and backwards take them. Here, in
/// the kernels layer beside [`Reduce`], so the CUDA kernels need not import the table layer.
pub struct Bags<'a, I> {
    /// Every id of the call, bag after bag.
    pub ids: &'a [I],
    /// `B + 1` non-decreasing offsets into `ids`: bag `b` is `ids[bounds[b]..bounds[b + 1]]`.
    pub bounds: Vec<usize>,
}

impl<I> Bags<'_, I> {
    /// The number of bags `B`.
    pub fn num_bags(&self) -> usize {
        self.bounds.len() - 1
    }
}

impl<I: Id> Bags<'_, I> {
    /// For each position of `ids`: its bag, and the scale of that bag's gradient row in the
    /// position's share of the backward: `1 / count` (non-padding ids of the bag) for the mean,
    /// `weight(position)` otherwise (the per-sample weight in sum mode, or 1).
    pub fn position_scales(
        &self,
        mode: Reduce,
        padding: Option<usize>,
        weight: impl Fn(usize) -> f64,
    ) -> Result<(Vec<usize>, Vec<f64>)> {
        let n = self.ids.len();
        let (mut bag_of, mut scale) = (try_alloc::<usize>(n)?, try_alloc::<f64>(n)?);
        for b in 0..self.num_bags() {
            let (lo, hi) = (self.bounds[b], self.bounds[b + 1]);
            let count = self.ids[lo..hi]
                .iter()
                .filter(|i| Some(i.index()) != padding)
                .count();
            bag_of[lo..hi].fill(b);
            for (pos, s) in (lo..hi).zip(&mut scale[lo..hi]) {
                *s = match mode {
                    Reduce::Mean => 1.0 / count.max(1) as f64,
                    _ => weight(pos),
                };
            }
        }
        Ok((bag_of, scale))
    }
}

/// Inputs shared by every bag of one call.
pub struct BagArgs<'a, S, D, I> {
    /// The `(V, dim)` table, row-major.
    pub table: &'a [S],
    /// Row length.
    pub dim: usize,
    /// Validated ids, bag after bag.
    pub ids: &'a [I],
    /// CSR bounds, `B + 1` entries.
    pub bounds: &'a [usize],
    /// One weight per id (sum mode only).
    pub weights: Option<&'a [D]>,
    /// Row left out of every bag.
    pub padding: Option<usize>,
    /// The reduction.
    pub mode: Reduce,
}

//! What one call of the packed-row kernel (`pool` in the kernel module) reads: the packed table,
//! the ids, how they form bags, the weights, the padding row and the reduction.

use super::format::RowLayout;
use crate::kernels::cpu::bag::Reduce;

/// Which ids form each bag.
#[derive(Clone, Copy, Debug)]
pub enum Bounds<'a> {
    /// CSR bounds, `B + 1` entries: bag `b` is `ids[bounds[b]..bounds[b + 1]]`.
    Csr(&'a [usize]),
    /// Every id is a bag of its own (a lookup).
    Singles,
}

impl Bounds<'_> {
    #[inline(always)]
    pub(super) fn of(&self, b: usize) -> (usize, usize) {
        match self {
            Bounds::Csr(bounds) => (bounds[b], bounds[b + 1]),
            Bounds::Singles => (b, b + 1),
        }
    }
}

/// Inputs shared by every bag of one call.
pub struct PoolArgs<'a, I> {
    /// The packed table, `rows * layout.row_bytes()` bytes.
    pub packed: &'a [u8],
    /// The row layout.
    pub layout: RowLayout,
    /// Validated ids, bag after bag.
    pub ids: &'a [I],
    /// The bags.
    pub bounds: Bounds<'a>,
    /// One weight per id (sum only).
    pub weights: Option<&'a [f32]>,
    /// Row left out of every bag.
    pub padding: Option<usize>,
    /// The reduction.
    pub mode: Reduce,
}

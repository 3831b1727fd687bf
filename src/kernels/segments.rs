//! Host-side segment plans for the deterministic GPU reductions.
//!
//! A [`SegmentPlan`] is the crate's grouping ([`crate::sparse::coalesce::group`]) of lookup
//! positions by destination row (ties keep their input order), with `u32` positions and offsets
//! for the device. The CUDA `segment_reduce` kernel then
//! runs one block per distinct row and sums that row's sources in this fixed order, so the result
//! is bit-identical run to run, with no atomics. Ids arrive from NumPy on the host, where they are
//! validated anyway, so sorting them here costs one pass over memory already in cache and spares a
//! device sort; the plan is plain Rust and is tested without a GPU.

use crate::alloc::try_collect;
use crate::ids::{self, Id};
use crate::sparse::coalesce::group;
use crate::{Error, Result};

/// Lookup positions grouped by destination row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentPlan {
    /// Sorted distinct destination rows (the coalesced indices).
    pub rows: Vec<i64>,
    /// `rows.len() + 1` offsets into `order`: segment `s` is `order[offsets[s]..offsets[s+1]]`.
    pub offsets: Vec<u32>,
    /// Input positions, sorted by destination row, stable within a row.
    pub order: Vec<u32>,
}

impl SegmentPlan {
    /// Validate `ids` against `num_rows`, drop positions whose id is `skip` (a padding row), and
    /// group the rest by id.
    pub fn new<I: Id>(ids: &[I], num_rows: usize, skip: Option<usize>) -> Result<Self> {
        ids::validate(ids, num_rows, "index", "an embedding table")?;
        if ids.len() > u32::MAX as usize {
            return Err(Error::invalid(format!(
                "{} lookups exceed the GPU kernels' u32 positions",
                ids.len()
            )));
        }
        // The crate's grouping primitive, narrowed to the kernels' u32 positions.
        let groups = group(ids, num_rows, skip)?;
        Ok(SegmentPlan {
            rows: groups.unique,
            offsets: try_collect(groups.starts.iter().map(|&s| s as u32))?,
            order: try_collect(groups.order.iter().map(|&p| p as u32))?,
        })
    }

    /// Number of distinct rows.
    pub fn num_segments(&self) -> usize {
        self.rows.len()
    }

    /// Per sorted position, `1 / count(row)` (the `scale_grad_by_freq` weights).
    pub fn inverse_frequency(&self) -> Vec<f64> {
        let mut w = Vec::with_capacity(self.order.len());
        for s in self.offsets.windows(2) {
            let n = (s[1] - s[0]) as usize;
            w.extend(std::iter::repeat_n(1.0 / n as f64, n));
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_stably_and_skips_padding() {
        let p = SegmentPlan::new(&[3i32, 1, 3, 0, 1, 3, 2], 4, Some(2)).unwrap();
        assert_eq!(p.rows, vec![0, 1, 3]);
        assert_eq!(p.offsets, vec![0, 1, 3, 6]);
        assert_eq!(p.order, vec![3, 1, 4, 0, 2, 5]);
        assert_eq!(
            p.inverse_frequency(),
            vec![1.0, 0.5, 0.5, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]
        );
    }

    #[test]
    fn empty_and_out_of_range() {
        let p = SegmentPlan::new::<i64>(&[], 4, None).unwrap();
        assert_eq!(p.num_segments(), 0);
        assert_eq!(p.offsets, vec![0]);
        assert!(matches!(
            SegmentPlan::new(&[0i64, 4], 4, None),
            Err(Error::IndexOutOfRange { index: 4, .. })
        ));
        assert!(SegmentPlan::new(&[-1i8], 4, None).is_err());
    }

    #[test]
    fn large_input_matches_small_path() {
        let ids: Vec<u32> = (0..100_000u32).map(|i| (i * 7919) % 1000).collect();
        let p = SegmentPlan::new(&ids, 1000, None).unwrap();
        assert_eq!(p.num_segments(), 1000);
        for s in 0..p.num_segments() {
            let seg = &p.order[p.offsets[s] as usize..p.offsets[s + 1] as usize];
            assert!(seg.windows(2).all(|w| w[0] < w[1]));
            assert!(seg.iter().all(|&q| ids[q as usize] as i64 == p.rows[s]));
        }
    }
}

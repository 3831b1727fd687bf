//! Copy-on-first-touch views of a table for deterministic training ([`super::deterministic`]).
//!
//! A sub-block reads and writes its own copies of the rows it touches: the first access to row
//! `r` copies `table[r]` (the table as of the start of the minibatch) into the sub-block's
//! [`RowDelta`]; later accesses see the sub-block's own updates, never another sub-block's.
//! When the sub-block ends, [`RowDelta::finish`] turns each copy into its change
//! `copy - table[r]`, and after every sub-block of the minibatch has finished,
//! [`RowDelta::apply`] adds the changes to the table in sub-block order.

use super::kernels::{OutputRows, RowTable};
use crate::alloc::try_filled;
use crate::Result;

/// "Row not copied yet" in a [`SlotMap`].
const ABSENT: u32 = u32::MAX;

/// A worker's row -> copy index map for one table (all `ABSENT` between sub-blocks).
pub struct SlotMap(Vec<u32>);

impl SlotMap {
    /// A map for a table of `rows` rows.
    pub fn new(rows: usize) -> Result<Self> {
        Ok(SlotMap(try_filled(rows, ABSENT)?))
    }
}

/// The rows one sub-block touched in one table: their ids, in first-touch order, and their
/// copies (then, after [`RowDelta::finish`], their changes), `(rows.len(), dim)` row-major.
#[derive(Default)]
pub struct RowDelta {
    rows: Vec<u32>,
    values: Vec<f32>,
}

impl RowDelta {
    /// Forget the previous minibatch's rows (the buffers are kept).
    pub fn clear(&mut self) {
        self.rows.clear();
        self.values.clear();
    }

    /// Turn the copies into changes against `table` and reset `slots` for the next sub-block.
    ///
    /// # Safety
    /// `table` is the table the copies were taken from, unchanged since, and live.
    pub unsafe fn finish(&mut self, table: OutputRows, slots: &mut SlotMap) {
        let d = table.dim;
        for (k, &r) in self.rows.iter().enumerate() {
            let base = table.row(r);
            for (v, b) in self.values[k * d..(k + 1) * d].iter_mut().zip(base.iter()) {
                *v -= *b;
            }
            slots.0[r as usize] = ABSENT;
        }
    }

    /// `table[r] += change` for the finished rows `r` with `r % stripes == stripe` (workers
    /// split the rows; every row still gets its sub-blocks' changes in sub-block order).
    ///
    /// # Safety
    /// `table` is live and no other thread writes the rows of this stripe.
    pub unsafe fn apply(&self, table: OutputRows, stripe: usize, stripes: usize) {
        let d = table.dim;
        for (k, &r) in self.rows.iter().enumerate() {
            if r as usize % stripes == stripe {
                let row = table.row(r);
                for (t, v) in row.iter_mut().zip(&self.values[k * d..(k + 1) * d]) {
                    *t += *v;
                }
            }
        }
    }
}

/// A sub-block's view of `table`: rows copied into `delta` on first touch.
pub struct StagedRows {
    table: OutputRows,
    slots: *mut SlotMap,
    delta: *mut RowDelta,
}

impl StagedRows {
    /// A view of `table` through the worker's `slots` into the sub-block's `delta`. Both must
    /// outlive the view and be used through it alone while it is in use.
    pub fn new(table: OutputRows, slots: &mut SlotMap, delta: &mut RowDelta) -> Self {
        StagedRows {
            table,
            slots,
            delta,
        }
    }
}

// SAFETY: `row` grows `delta.values` only when a new row is copied in, which may move the
// earlier rows; the trainer holds at most one row of a view at a time (the input row `l1`
// and the output rows live in different views).
unsafe impl RowTable for StagedRows {
    #[inline(always)]
    unsafe fn row<'a>(&self, r: u32) -> &'a mut [f32] {
        let d = self.table.dim;
        let slots = &mut *self.slots;
        let delta = &mut *self.delta;
        let slot = &mut slots.0[r as usize];
        if *slot == ABSENT {
            *slot = delta.rows.len() as u32;
            delta.rows.push(r);
            delta.values.extend_from_slice(self.table.row(r));
        }
        let k = *slot as usize;
        &mut delta.values[k * d..(k + 1) * d]
    }
}

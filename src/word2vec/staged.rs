//! Staged views of a table for deterministic training ([`super::deterministic`]): a sub-block
//! never writes the shared table; its changes are added to it after the minibatch. Two ways:
//!
//! - [`Staging::Copy`] (copy on first touch): the first access to row `r` copies `table[r]`
//!   (the table as of the start of the minibatch) into the sub-block's [`RowDelta`]; later
//!   reads see the sub-block's own updates, never another sub-block's. When the sub-block
//!   ends, [`RowDelta::finish`] turns each copy into its change `copy - table[r]`.
//! - [`Staging::Accumulate`]: reads see `table[r]` as of the start of the minibatch, the
//!   sub-block's own updates included only after it (as HogBatch's window, Ji et al. 2016);
//!   the first update of row `r` starts a zero change in the [`RowDelta`] and every update
//!   adds to it. No copy and no subtraction: for the noise words' output rows (most rows a
//!   sub-block touches, each touched a few times) this halves the staging cost.
//!
//! After every sub-block of the minibatch has finished, [`RowDelta::apply`] adds the changes
//! to the table in sub-block order, each scaled (with [`Touches`]) by `1 / sqrt(number of
//! sub-blocks that touched the row)`.

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

/// How a [`StagedRows`] view stages a row (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Staging {
    /// Copy on first touch; the sub-block reads its own updates.
    #[default]
    Copy,
    /// Read the table as of the minibatch's start; collect the updates in a zeroed change.
    Accumulate,
}

/// The rows one sub-block touched in one table: their ids, in first-touch order, and their
/// staged values, `(rows.len(), dim)` row-major: copies (then, after [`RowDelta::finish`],
/// changes) with [`Staging::Copy`], changes with [`Staging::Accumulate`].
#[derive(Default)]
pub struct RowDelta {
    rows: Vec<u32>,
    values: Vec<f32>,
    staging: Staging,
}

impl RowDelta {
    /// An empty delta staged the `staging` way.
    pub fn new(staging: Staging) -> Self {
        RowDelta {
            staging,
            ..RowDelta::default()
        }
    }

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
            if self.staging == Staging::Copy {
                let base = table.row(r);
                for (v, b) in self.values[k * d..(k + 1) * d].iter_mut().zip(base.iter()) {
                    *v -= *b;
                }
            }
            slots.0[r as usize] = ABSENT;
        }
    }

    /// `table[r] += change` for the finished rows `r` with `r % stripes == stripe` (workers
    /// split the rows; every row still gets its sub-blocks' changes in sub-block order).
    /// With `touches` ([`Touches::count`] over the minibatch's sub-blocks), each change is
    /// scaled by `1 / sqrt(touches[r])` (why: [`super::deterministic`]'s module docs).
    ///
    /// # Safety
    /// `table` is live and no other thread writes the rows of this stripe.
    pub unsafe fn apply(
        &self,
        table: OutputRows,
        (stripe, stripes): (usize, usize),
        touches: Option<&Touches>,
    ) {
        let d = table.dim;
        for (k, &r) in self.rows.iter().enumerate() {
            if r as usize % stripes == stripe {
                let row = table.row(r);
                let change = &self.values[k * d..(k + 1) * d];
                match touches {
                    None => row.iter_mut().zip(change).for_each(|(t, v)| *t += *v),
                    Some(c) => {
                        // 1 / sqrt(1) is exact: a row one sub-block touched gets its change.
                        let scale = 1.0 / (c.0[r as usize] as f32).sqrt();
                        row.iter_mut()
                            .zip(change)
                            .for_each(|(t, v)| *t += *v * scale);
                    }
                }
            }
        }
    }
}

/// Per row of a table, how many sub-blocks of the current minibatch touched it (the rows of a
/// worker's stripe only; 0 between minibatches).
pub struct Touches(Vec<u32>);

impl Touches {
    /// Counts for a table of `rows` rows.
    pub fn new(rows: usize) -> Result<Self> {
        Ok(Touches(try_filled(rows, 0)?))
    }

    /// Add `delta`'s rows of the stripe (`r % stripes == stripe`); `remove` takes them away
    /// again (after the minibatch's changes are applied, leaving the counts at 0).
    pub fn count(&mut self, delta: &RowDelta, (stripe, stripes): (usize, usize), remove: bool) {
        for &r in &delta.rows {
            if r as usize % stripes == stripe {
                let c = &mut self.0[r as usize];
                *c = if remove { 0 } else { *c + 1 };
            }
        }
    }
}

/// A sub-block's view of `table`: rows staged into `delta` (the way `delta` says).
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

    /// The staged values of row `r`, staged now (copied, or zeroed) on its first touch.
    ///
    /// # Safety
    /// As [`RowTable`]; `r < table.count`.
    #[inline(always)]
    unsafe fn staged<'a>(&self, r: u32) -> &'a mut [f32] {
        let d = self.table.dim;
        let slots = &mut *self.slots;
        let delta = &mut *self.delta;
        let slot = &mut slots.0[r as usize];
        if *slot == ABSENT {
            *slot = delta.rows.len() as u32;
            delta.rows.push(r);
            match delta.staging {
                Staging::Copy => delta.values.extend_from_slice(self.table.row(r)),
                Staging::Accumulate => delta.values.resize(delta.values.len() + d, 0.0),
            }
        }
        let k = *slot as usize;
        &mut delta.values[k * d..(k + 1) * d]
    }
}

// SAFETY: staging a new row grows `delta.values`, which may move the earlier rows; the trainer
// holds at most one row of a view at a time (the input row `l1` and the output rows live in
// different views), and a row read from the table itself (`Accumulate`) never moves: nobody
// writes the table while sub-blocks run.
unsafe impl RowTable for StagedRows {
    #[inline(always)]
    unsafe fn read<'a>(&self, r: u32) -> &'a [f32] {
        match (*self.delta).staging {
            Staging::Copy => self.staged(r),
            Staging::Accumulate => self.table.row(r),
        }
    }

    #[inline(always)]
    unsafe fn grad<'a>(&self, r: u32) -> &'a mut [f32] {
        self.staged(r)
    }
}

//! How a sparse step visits rows, shared by every optimizer: check and convert the gradients
//! ([`prepare`], which also negates them under `maximize`), then for each table
//! ([`step_tables`]) run the optimizer's per-row rule over the gradient's unique rows in
//! parallel ([`for_each_touched_row`]). Each optimizer module only states its rule.

use std::sync::Arc;

use candle_core::Tensor;

use super::rounding::WeightRow;
use super::state::Layout;
use super::state::{self, AccElem, ParamState, Slot, MAX_STEP};
use crate::dtype::Float;
use crate::embedding::Embedding;
use crate::kernels::cpu::prefetch::{prefetch_bytes, DISTANCE};
use crate::rows::RowsMut;
use crate::sparse::SparseGrad;
use crate::{storage, threads, Error, Result};

/// One table's gradient ready for a step: its rows and its values in the accumulator dtype.
pub(crate) struct Prepared {
    pub rows: Vec<usize>,
    pub values: Tensor,
}

/// Check the gradients against the tables and convert each one's values to the accumulator
/// dtype (contiguous CPU tensors; negated when `maximize`), before anything is written.
pub(crate) fn prepare(
    params: &[Arc<Embedding>],
    grads: &[Option<&SparseGrad>],
    maximize: bool,
) -> Result<Vec<Option<Prepared>>> {
    if grads.len() != params.len() {
        return Err(Error::InvalidArgument(format!(
            "got {} gradients for {} parameters",
            grads.len(),
            params.len()
        )));
    }
    let mut out = Vec::with_capacity(grads.len());
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        let Some(g) = g else {
            out.push(None);
            continue;
        };
        let want = (p.num_embeddings(), p.embedding_dim());
        if g.shape() != want {
            return Err(Error::Shape(format!(
                "gradient {i} has shape {:?}, but its table has shape {want:?}",
                g.shape()
            )));
        }
        let acc = state::acc_dtype(p.dtype());
        let mut values = g
            .values()
            .to_device(&candle_core::Device::Cpu)?
            .to_dtype(acc)?;
        if maximize {
            values = values.neg()?;
        }
        let values = values.contiguous()?;
        let rows = g.indices().iter().map(|&r| r as usize).collect();
        out.push(Some(Prepared { rows, values }));
    }
    Ok(out)
}

/// One step over every table: validate all gradients first ([`prepare`]), then for each table
/// with a gradient count the step and, when the gradient has rows, call
/// `update(table_index, table, prepared, state)`. A `None` gradient skips its table (no step
/// counted).
pub(crate) fn step_tables(
    params: &[Arc<Embedding>],
    states: &mut [ParamState],
    grads: &[Option<&SparseGrad>],
    maximize: bool,
    mut update: impl FnMut(usize, &Tensor, &Prepared, &mut ParamState) -> Result<()>,
) -> Result<()> {
    let prepared = prepare(params, grads, maximize)?;
    // Refuse the whole step before any table moves if one count would pass the limit.
    for (i, (st, pg)) in states.iter().zip(&prepared).enumerate() {
        if pg.is_some() && st.step >= MAX_STEP {
            return Err(Error::InvalidArgument(format!(
                "table {i} has taken the most steps an optimizer counts (2**53)"
            )));
        }
    }
    for (i, ((p, st), pg)) in params
        .iter()
        .zip(states.iter_mut())
        .zip(prepared)
        .enumerate()
    {
        let Some(pg) = pg else { continue };
        st.step += 1;
        if pg.rows.is_empty() || p.embedding_dim() == 0 {
            continue;
        }
        update(i, &p.weight(), &pg, st)?;
    }
    Ok(())
}

/// The current row of each state buffer of a table, for one call of a rule's `update_row`
/// (a `PerRow` buffer gives a one-element row).
pub struct SlotRows<'a, A> {
    /// The accumulator-type buffers, in the rule's `slots()` order.
    floats: &'a [RowsMut<A>],
    /// The `LastStep` buffers (one element per row).
    steps: &'a [RowsMut<u64>],
    row: usize,
}

impl<'a, A> SlotRows<'a, A> {
    /// The row of each of the `N` accumulator-type buffers, in the order of the rule's
    /// `slots()` (`N` must be their count: a mismatch is a bug in the rule and panics).
    pub fn take<const N: usize>(self) -> [&'a mut [A]; N] {
        assert_eq!(N, self.floats.len(), "optimizer slot count");
        // SAFETY: the slots are distinct buffers and `self` is consumed, so each slot's row is
        // handed out once; rows are unique per call (see `for_each_touched_row`).
        std::array::from_fn(|i| unsafe { self.floats[i].row(self.row) })
    }

    /// [`take`](Self::take), and the row's entry of the rule's one `LastStep` buffer.
    pub fn take_with_last_step<const N: usize>(self) -> ([&'a mut [A]; N], &'a mut u64) {
        assert_eq!(self.steps.len(), 1, "optimizer last-step slot count");
        // SAFETY: as in `take`: one distinct buffer, this row handed out once.
        let last = unsafe { &mut self.steps[0].row(self.row)[0] };
        (self.take::<N>(), last)
    }
}

/// Apply `rule(table_row, grad_row, state_rows)` to every row of a coalesced gradient, in
/// parallel, under the table's write lock (a concurrent lookup sees each row before or after
/// the step, never torn). Each slot's rows are `buf.len() / num_rows` wide (D for element-wise
/// state, 1 for row-wise). `round_key` is `Some` under stochastic rounding (see `rounding`).
/// Rows are independent, so the result does not depend on the thread count.
pub(crate) fn for_each_touched_row<T: Float, A: AccElem>(
    w: &Tensor,
    pg: &Prepared,
    slots: &mut [Slot],
    round_key: Option<u64>,
    rule: impl Fn(&mut WeightRow<'_, T>, &[A], SlotRows<'_, A>) + Sync,
) -> Result<()> {
    let (num_rows, dim) = w.dims2()?;
    let rows_of = |n: usize| n.checked_div(num_rows).unwrap_or(0);
    let mut floats: Vec<RowsMut<A>> = Vec::new();
    let mut steps: Vec<RowsMut<u64>> = Vec::new();
    for s in slots.iter_mut() {
        if s.layout == Layout::LastStep {
            let buf = s.buf.steps_mut();
            steps.push(RowsMut::new(buf, rows_of(buf.len())));
        } else {
            let buf = A::slice_mut(&mut s.buf);
            floats.push(RowsMut::new(buf, rows_of(buf.len())));
        }
    }
    let rows = &pg.rows;
    storage::read::<A, Result<()>>(&pg.values, |gs| {
        storage::write::<T, ()>(w, |ws| {
            let table = RowsMut::new(ws, dim);
            par_rows(rows.len(), dim, |k| {
                // The rows are scattered over a table far larger than the caches: ask for the
                // ones `DISTANCE` steps ahead now, as the gather does.
                if let Some(&ahead) = rows.get(k + DISTANCE) {
                    prefetch_bytes(table.row_ptr(ahead), table.row_bytes());
                    for s in &floats {
                        prefetch_bytes(s.row_ptr(ahead), s.row_bytes());
                    }
                }
                let r = rows[k];
                // SAFETY: a coalesced gradient's rows are unique, so row `r` of the table and
                // of each slot is touched by this `k` only.
                let mut wrow = WeightRow::new(unsafe { table.row(r) }, round_key, r);
                let state = SlotRows {
                    floats: &floats,
                    steps: &steps,
                    row: r,
                };
                rule(&mut wrow, &gs[k * dim..(k + 1) * dim], state);
            });
            Ok(())
        })
    })?
}

/// Run `f(k)` for every gradient row `k in 0..nnz`, in chunks on the caller and the pool
/// (`threads::run_chunks`; each row is independent, so the result does not depend on the
/// thread count).
fn par_rows(nnz: usize, dim: usize, f: impl Fn(usize) + Sync) {
    if nnz * dim < 1 << 14 {
        (0..nnz).for_each(f);
        return;
    }
    let chunk = nnz.div_ceil(threads::get_num_threads() * 8).max(8);
    threads::run_chunks(nnz.div_ceil(chunk), &|c| {
        (c * chunk..((c + 1) * chunk).min(nnz)).for_each(&f);
    });
}

//! How a sparse step visits rows, shared by every optimizer: check and convert the gradients
//! ([`prepare`], which also negates them under `maximize`), then for each table
//! ([`step_tables`]) run the optimizer's per-row rule over the gradient's unique rows in
//! parallel ([`for_each_touched_row`]). Each optimizer module only states its rule.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::rounding::WeightRow;
use super::state::Layout;
use super::state::{self, AccElem, ParamState, Slot, MAX_STEP};
use crate::dtype::Float;
use crate::embedding::Embedding;
use crate::kernels::cpu::prefetch::{prefetch_bytes, DISTANCE};
use crate::rows::RowsMut;
use crate::sparse::SparseGrad;
use crate::{alloc, storage, threads, Error, Result};

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
    mut update: impl FnMut(usize, &Embedding, &Prepared, &mut ParamState) -> Result<()>,
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
        update(i, p, &pg, st)?;
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
/// parallel, under the table's write lock (`TableRows::write`: an in-memory or a writable
/// memory-mapped table) (a concurrent lookup sees each row before or after
/// the step, never torn). Each slot's rows are `buf.len() / num_rows` wide (D for element-wise
/// state, 1 for row-wise). `round_key` is `Some` under stochastic rounding (see `rounding`).
/// Rows are independent, so the result does not depend on the thread count.
pub(crate) fn for_each_touched_row<T: Float, A: AccElem>(
    w: &Embedding,
    pg: &Prepared,
    slots: &mut [Slot],
    round_key: Option<u64>,
    rule: impl Fn(&mut WeightRow<'_, T>, &[A], SlotRows<'_, A>) + Sync,
) -> Result<()> {
    if !w.device().is_cpu() || staged_for_tests() {
        return staged(&w.weight(), pg, slots, round_key, rule);
    }
    let num_rows = w.num_embeddings();
    w.rows()
        .write::<T, ()>(|ws| walk(ws, num_rows, |_, r| r, pg, slots, round_key, &rule))
}

/// A table on another device (CUDA, Metal): its touched rows come to the host in one gather,
/// the same rule runs on them (state rows by table row, as on CPU), and they go back in one
/// scatter, an exact copy, so the step gives the CPU path's bits.
/// The state stays on the host. A concurrent lookup sees the rows before or after the
/// `scatter_set`, never torn.
fn staged<T: Float, A: AccElem>(
    w: &Tensor,
    pg: &Prepared,
    slots: &mut [Slot],
    round_key: Option<u64>,
    rule: impl Fn(&mut WeightRow<'_, T>, &[A], SlotRows<'_, A>) + Sync,
) -> Result<()> {
    let num_rows = w.dims2()?.0;
    let ids: Vec<i64> = alloc::try_collect(pg.rows.iter().map(|&r| r as i64))?;
    let rows = fetch_rows(w, &ids)?.to_device(&Device::Cpu)?.contiguous()?;
    storage::write::<T, ()>(&rows, |ws| {
        walk(ws, num_rows, |k, _| k, pg, slots, round_key, &rule)
    })?;
    store_rows(w, &ids, &rows.to_device(w.device())?)
}

/// The table rows `ids` (a gradient's: sorted, unique): our CUDA gather when the CUDA kernels
/// are on, else candle's `index_select`.
fn fetch_rows(w: &Tensor, ids: &[i64]) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if crate::kernels::cuda::active(w.device()) {
        return crate::kernels::cuda::gather(w, ids);
    }
    Ok(w.index_select(&Tensor::from_slice(ids, ids.len(), w.device())?, 0)?)
}

/// Write `rows` back at `ids` (sorted, unique), an exact copy: our CUDA row scatter when the
/// CUDA kernels are on, else candle's `scatter_set`.
fn store_rows(w: &Tensor, ids: &[i64], rows: &Tensor) -> Result<()> {
    #[cfg(feature = "cuda")]
    if crate::kernels::cuda::active(w.device()) {
        return crate::kernels::cuda::scatter_rows(w, ids, rows);
    }
    let idx = Tensor::from_slice(ids, (ids.len(), 1), w.device())?
        .broadcast_as(rows.dims())?
        .contiguous()?;
    Ok(w.scatter_set(&idx, rows, 0)?)
}

#[cfg(test)]
thread_local! {
    /// Tests run CPU tables through [`staged`] to compare it with the direct path.
    pub(crate) static FORCE_STAGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn staged_for_tests() -> bool {
    #[cfg(test)]
    return FORCE_STAGED.with(|f| f.get());
    #[cfg(not(test))]
    false
}

/// The parallel walk over a gradient's rows: gradient row `k` (table row `r = pg.rows[k]`)
/// updates row `weight_row(k, r)` of `ws` (rows of the table's width) and row `r` of each slot
/// (`num_rows` rows each).
#[allow(clippy::too_many_arguments)]
fn walk<T: Float, A: AccElem>(
    ws: &mut [T],
    num_rows: usize,
    weight_row: impl Fn(usize, usize) -> usize + Sync,
    pg: &Prepared,
    slots: &mut [Slot],
    round_key: Option<u64>,
    rule: &(impl Fn(&mut WeightRow<'_, T>, &[A], SlotRows<'_, A>) + Sync),
) -> Result<()> {
    let dim = pg.values.dims2()?.1;
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
    storage::read::<A, ()>(&pg.values, |gs| {
        let table = RowsMut::new(ws, dim);
        par_rows(rows.len(), dim, |k| {
            // The rows are scattered over a table far larger than the caches: ask for the
            // ones `DISTANCE` steps ahead now, as the gather does.
            if let Some(&ahead) = rows.get(k + DISTANCE) {
                prefetch_bytes(
                    table.row_ptr(weight_row(k + DISTANCE, ahead)),
                    table.row_bytes(),
                );
                for s in &floats {
                    prefetch_bytes(s.row_ptr(ahead), s.row_bytes());
                }
            }
            let r = rows[k];
            // SAFETY: a coalesced gradient's rows are unique, so row `r` of each slot (and the
            // weight row, `r` or `k`) is touched by this `k` only.
            let mut wrow = WeightRow::new(unsafe { table.row(weight_row(k, r)) }, round_key, r);
            let state = SlotRows {
                floats: &floats,
                steps: &steps,
                row: r,
            };
            rule(&mut wrow, &gs[k * dim..(k + 1) * dim], state);
        });
    })
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use candle_core::{DType, Device, Tensor};

    use super::FORCE_STAGED;
    use crate::optim::*;
    use crate::{Embedding, EmbeddingConfig, SparseGrad};

    fn values(t: &Tensor) -> Vec<f64> {
        let t = t.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
        t.to_vec1().unwrap()
    }

    /// Three steps of `config` on a fresh table, through the direct or the staged walk:
    /// (table, every state buffer).
    fn run<R: Rule>(config: R, dtype: DType, staged: bool) -> (Vec<f64>, Vec<Vec<f64>>) {
        let (rows, dim) = (40, 9);
        let emb = Embedding::new(
            rows,
            dim,
            EmbeddingConfig::default(),
            dtype,
            &Device::Cpu,
            Some(3),
        )
        .unwrap();
        let mut opt = Optimizer::new(vec![Arc::new(emb)], config).unwrap();
        FORCE_STAGED.with(|f| f.set(staged));
        for (s, ids) in [vec![0i64, 3, 39], vec![3, 4, 5, 6], vec![0, 17, 39]]
            .iter()
            .enumerate()
        {
            let v: Vec<f32> = (0..ids.len() * dim)
                .map(|i| ((i * 7 + s * 13) % 11) as f32 - 5.0)
                .collect();
            let g = Tensor::from_vec(v, (ids.len(), dim), &Device::Cpu).unwrap();
            let g = SparseGrad::new(ids.clone(), g, rows).unwrap();
            opt.step(&[Some(&g)]).unwrap();
        }
        FORCE_STAGED.with(|f| f.set(false));
        let table = values(&opt.params()[0].weight());
        let sd = opt.state_dict().unwrap();
        let bufs = sd.buffers[0].iter().map(|(_, t)| values(t)).collect();
        (table, bufs)
    }

    /// The host-staged walk that steps tables on other devices gives the direct CPU walk's
    /// bits, for every rule, with stochastic rounding on a bf16 table too.
    #[test]
    fn staged_steps_equal_direct_steps_bit_for_bit() {
        fn both<R: Rule>(config: R) {
            for dtype in [DType::F32, DType::F64, DType::BF16] {
                let direct = run(config, dtype, false);
                assert_eq!(direct, run(config, dtype, true), "{} {dtype:?}", R::KIND);
            }
        }
        let options = StepOptions {
            maximize: true,
            stochastic_rounding: true,
            seed: 7,
        };
        both(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            options,
            ..Default::default()
        });
        both(AdagradConfig {
            lr_decay: 0.1,
            weight_decay: 0.01,
            initial_accumulator_value: 0.5,
            options,
            ..Default::default()
        });
        both(RowWiseAdagradConfig {
            options,
            ..Default::default()
        });
        both(SparseAdamConfig {
            options,
            ..Default::default()
        });
        both(AdamWConfig {
            options,
            ..Default::default()
        });
    }
}

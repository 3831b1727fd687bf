//! HogBatch CBOW with negative sampling (`minibatch=True, sg=0`), the CBOW counterpart of
//! [`super::hogbatch`]'s skip-gram windows, beside the exact per-target path of
//! [`super::job`].
//!
//! A sentence's positions are taken [`CBOW_BATCH`] at a time. Target `b` of a batch (the word
//! `t_b` at its position, with its window `C_b`, shrunk as usual) has the hidden vector
//! `h_b = s_b * sum_{c in C_b} syn0[c]` with `s_b = 1 / |C_b|` (`cbow_mean`) or 1 (a sum);
//! targets without a context are left out. The batch draws `K` noise words once for all its
//! targets (kept when distinct and not a target). With `O = [distinct targets, noise words]`:
//!
//! - `X = [h_1 .. h_B]` (`B x D`), `Y = syn1neg[O]` (`|O| x D`), `F = X Y^T` (`B x |O|`);
//! - `G[b, o] = (y - sigma(F[b, o])) * alpha` with `y = 1` where `o` is `t_b`'s column and
//!   `y = 0` for the noise columns; `G[b, o] = 0` for another target's column (no example of
//!   `b`) and where `|F[b, o]| >= 6` (gensim's rule);
//! - every context row of target `b` gets `syn0[c] += lockf(c) * r_b * (G Y)[b]` with
//!   `r_b = 1` (`cbow_mean`) or `1 / |C_b|` (a sum, as gensim's `train_batch_cbow`), and
//!   `syn1neg[o] += (G^T X)[o]`, once per batch, all products on the rows as they were before
//!   the batch.
//!
//! As for skip-gram this is a different estimator from word2vec's (noise shared across the
//! batch, the batch's updates applied together), so the per-target path stays the default.

pub use super::hogbatch::CBOW_BATCH;
use super::hogbatch::{hook_tables, window_gradients, BatchScratch, Columns};
use super::job::{Scratch, Shared};
use super::kernels::{axpy, InputVectors, RowTable, SigmoidTables};
use crate::{Error, Result};

impl<I: InputVectors, T: RowTable> Shared<'_, I, T> {
    /// One CBOW batch: the targets at positions `i0..i1` of the sentence `lo..hi` of
    /// `s.idx`. Returns the loss.
    ///
    /// # Safety
    /// As [`Shared::job`].
    #[inline(always)]
    pub(super) unsafe fn cbow_batched(
        &self,
        s: &mut Scratch,
        (lo, hi): (usize, usize),
        (i0, i1): (usize, usize),
        alpha: f32,
        st: &mut u64,
    ) -> f64 {
        let window = self.params.window;
        let bs = &mut s.batch;
        bs.contexts.clear();
        bs.ends.clear();
        bs.outputs.clear();
        bs.truth.clear();
        for i in i0..i1 {
            let span = window - s.reduced[i];
            let (j0, j1) = (i.saturating_sub(span).max(lo), (i + span + 1).min(hi));
            let before = bs.contexts.len();
            bs.contexts
                .extend((j0..j1).filter(|&j| j != i).map(|j| s.idx[j]));
            if bs.contexts.len() > before {
                bs.ends.push(bs.contexts.len());
                bs.truth.push(column(&mut bs.outputs, s.idx[i]));
            }
        }
        if bs.ends.is_empty() {
            return 0.0;
        }
        let first_noise = bs.outputs.len();
        for _ in 0..self.ctx.negative {
            let n = self.ctx.draw(st);
            if !bs.outputs.contains(&n) {
                bs.outputs.push(n);
            }
        }
        let (tables, loss) = (self.ctx.tables, self.ctx.compute_loss);
        let d = s.buf.len();
        let how = (first_noise, self.params.cbow_mean, alpha, loss);
        cbow_update(self.input, &self.syn0, &self.syn1neg, tables, bs, d, how)
    }
}

/// The column of `word` in `outputs`, appended when new.
fn column(outputs: &mut Vec<u32>, word: u32) -> usize {
    outputs.iter().position(|&o| o == word).unwrap_or_else(|| {
        outputs.push(word);
        outputs.len() - 1
    })
}

/// The update of the CBOW batch in `bs` (`contexts`, `ends`, `outputs`, `truth` filled; the
/// noise words from column `first_noise` on): gather, gradients, scatter. Returns the loss.
///
/// # Safety
/// Rows in range; tables live (Hogwild races as the job's own updates).
#[inline(always)]
unsafe fn cbow_update<I: InputVectors, T: RowTable>(
    input: &I,
    syn0: &T,
    syn1neg: &T,
    tables: &SigmoidTables,
    bs: &mut BatchScratch,
    d: usize,
    (first_noise, cbow_mean, alpha, compute_loss): (usize, bool, f32, bool),
) -> f64 {
    let (b, o) = (bs.ends.len(), bs.outputs.len());
    bs.x.clear();
    bs.x.resize(b * d, 0.0);
    bs.inv.clear();
    let mut start = 0;
    for (h, &end) in bs.x.chunks_exact_mut(d).zip(&bs.ends) {
        let mut count = 0f32;
        for &c in &bs.contexts[start..end] {
            count += input.add_input_to(syn0, c, h);
        }
        let inv = if count > 0.5 { 1.0 / count } else { 1.0 };
        if cbow_mean {
            h.iter_mut().for_each(|v| *v *= inv);
        }
        bs.inv.push(inv);
        start = end;
    }
    bs.y.clear();
    for &n in &bs.outputs {
        bs.y.extend_from_slice(syn1neg.read(n));
    }
    let truth = &bs.truth;
    let cols = Columns {
        first_noise,
        truth: |row: usize| truth[row],
    };
    let (x, y, g) = (&bs.x, &bs.y, &mut bs.g);
    let (gx, gy) = (&mut bs.grad_x, &mut bs.grad_y);
    let loss = window_gradients(
        tables,
        (b, o, d),
        &cols,
        x,
        y,
        alpha,
        compute_loss,
        g,
        gx,
        gy,
    );
    let mut start = 0;
    for ((grad, &end), &inv) in bs.grad_x.chunks_exact_mut(d).zip(&bs.ends).zip(&bs.inv) {
        if !cbow_mean {
            grad.iter_mut().for_each(|v| *v *= inv);
        }
        for &c in &bs.contexts[start..end] {
            input.update(syn0, c, grad);
        }
        start = end;
    }
    for (grad, &n) in bs.grad_y.chunks_exact(d).zip(&bs.outputs) {
        axpy(1.0, grad, syn1neg.grad(n));
    }
    loss
}

/// One CBOW batch on plain tables (the test suite's hook): target `targets[b]` (a row of
/// `syn1neg`) with the context rows `contexts[b]` of `syn0` (at least one each), sharing the
/// noise words `noise` (rows of `syn1neg`; one already among the columns is skipped, as in
/// training); both tables `(rows, dim)` row-major, lock factors 1. Returns the loss.
pub fn cbow_on_tables(
    syn0: &mut [f32],
    syn1neg: &mut [f32],
    dim: usize,
    (contexts, targets, noise): (&[Vec<u32>], &[u32], &[u32]),
    (alpha, cbow_mean): (f32, bool),
) -> Result<f64> {
    if contexts.len() != targets.len() || contexts.iter().any(|c| c.is_empty()) {
        return Err(Error::invalid("need one non-empty context list per target"));
    }
    let flat: Vec<u32> = contexts.concat();
    let outputs: Vec<u32> = targets.iter().chain(noise).copied().collect();
    let (input, out) = hook_tables(syn0, syn1neg, dim, &flat, &outputs)?;
    let mut bs = BatchScratch::default();
    for (ctx, &t) in contexts.iter().zip(targets) {
        bs.contexts.extend_from_slice(ctx);
        bs.ends.push(bs.contexts.len());
        bs.truth.push(column(&mut bs.outputs, t));
    }
    let first_noise = bs.outputs.len();
    for &n in noise {
        if !bs.outputs.contains(&n) {
            bs.outputs.push(n);
        }
    }
    let tables = SigmoidTables::default();
    let how = (first_noise, cbow_mean, alpha, true);
    // SAFETY: every row was checked to be in its table; one thread.
    Ok(unsafe { cbow_update(&input, &input.table, &out, &tables, &mut bs, dim, how) })
}

//! HogBatch skip-gram with negative sampling (Ji et al., "Parallelizing Word2Vec in Shared and
//! Distributed Memory", 2016; Intel's pWord2Vec), beside the exact per-pair path of
//! [`super::kernels`].
//!
//! For the centre word `w` at position `i` with context words `c_1 .. c_B` (its window), the
//! per-pair path runs `B` examples, each with its own `K` noise words, one after the other.
//! HogBatch draws the `K` noise words once for the whole window (distinct, and distinct from
//! `w`: `O = 1 + K'` output rows, `K' <= K`) and makes the update three small matrix products
//! (the `gemm` crate, on the calling thread):
//!
//! - `X = syn0[c_1..c_B]` (`B x D`), `Y = syn1neg[w, n_1..n_K']` (`O x D`);
//! - `F = X Y^T` (`B x O`); `G[b, o] = (y_o - sigma(F[b, o])) * alpha` with `y_0 = 1` and
//!   `y_o = 0` for the noise words, `sigma` from gensim's table; `G[b, o] = 0` where
//!   `|F[b, o]| >= 6` (gensim's rule: no update outside the table);
//! - `syn0[c_b] += lockf(c_b) * (G Y)[b]` and `syn1neg[o] += (G^T X)[o]`, once per window,
//!   with every product taken on the rows as they were before the window's update.
//!
//! The loss adds `-log sigma(F[b, 0])` and `-log sigma(-F[b, o])` per entry inside the table.
//! This is a different estimator from word2vec's (noise shared across a window, the window's
//! updates applied together), so it is not the default: the per-pair path is gensim's
//! algorithm update for update, and its quality is the reference. CBOW's batches
//! ([`super::hogbatch_cbow`]) run on the same [`window_gradients`], with more than one true
//! word ([`Columns`]).

use super::kernels::{axpy, InputVectors, OutputRows, PlainRows, RowTable, SigmoidTables, MAX_EXP};
use crate::kernels::cpu::linalg::{gemm_with, Threads};
use crate::{Error, Result};

/// Targets per CBOW batch ([`super::hogbatch_cbow`]): large enough for the products to beat
/// per-target dot products, small enough that `K` shared noise words stay a fair sample for
/// every target. Here, beside the window code every trainer imports, so the job loop need not
/// import the CBOW batch code that imports it.
pub const CBOW_BATCH: usize = 8;

/// The buffers of one window's update.
#[derive(Default)]
pub struct BatchScratch {
    pub(super) contexts: Vec<u32>,
    pub(super) outputs: Vec<u32>,
    pub(super) x: Vec<f32>,
    pub(super) y: Vec<f32>,
    pub(super) g: Vec<f32>,
    pub(super) grad_x: Vec<f32>,
    pub(super) grad_y: Vec<f32>,
    /// CBOW: the end of each target's contexts in `contexts`.
    pub(super) ends: Vec<usize>,
    /// CBOW: each target's column in `outputs`.
    pub(super) truth: Vec<usize>,
    /// CBOW: each target's `1 / context rows`.
    pub(super) inv: Vec<f32>,
}

/// Which output column is which in a HogBatch update: columns `0..first_noise` are true
/// words, row `b`'s own at `truth(b)` (label 1; another row's true word is no example of row
/// `b`: its entry is 0), and columns `first_noise..` noise words (label 0 for every row).
/// Skip-gram: one true word, `first_noise = 1`, `truth(b) = 0`.
pub struct Columns<F: Fn(usize) -> usize> {
    /// The first noise column.
    pub first_noise: usize,
    /// The true word's column of row `b`.
    pub truth: F,
}

/// Skip-gram's columns: the centre word first, then the noise words.
pub fn centre_first() -> Columns<fn(usize) -> usize> {
    Columns {
        first_noise: 1,
        truth: |_| 0,
    }
}

/// The gradients of one HogBatch update (see the module docs): from `x` (`b x d`) and `y`
/// (`o x d`, laid out as `cols` says), fills `g` (`b x o`, the scaled errors), `grad_x = G Y`
/// (`b x d`) and `grad_y = G^T X` (`o x d`); returns the loss (0 unless `compute_loss`).
#[allow(clippy::too_many_arguments)]
pub fn window_gradients<F: Fn(usize) -> usize>(
    t: &SigmoidTables,
    (b, o, d): (usize, usize, usize),
    cols: &Columns<F>,
    x: &[f32],
    y: &[f32],
    alpha: f32,
    compute_loss: bool,
    g: &mut Vec<f32>,
    grad_x: &mut Vec<f32>,
    grad_y: &mut Vec<f32>,
) -> f64 {
    g.clear();
    g.resize(b * o, 0.0);
    grad_x.clear();
    grad_x.resize(b * d, 0.0);
    grad_y.clear();
    grad_y.resize(o * d, 0.0);
    // F = X Y^T: Y read transposed (element (k, n) at n * d + k).
    gemm_with(Threads::Caller, (b, o, d), g, x, (d, 1), y, (1, d));
    let mut loss = 0f64;
    for (k, f) in g.iter_mut().enumerate() {
        let (row, col) = (k / o.max(1), k % o.max(1));
        let label = if col < cols.first_noise {
            if col != (cols.truth)(row) {
                *f = 0.0;
                continue;
            }
            1.0
        } else {
            0.0
        };
        if *f <= -MAX_EXP || *f >= MAX_EXP {
            *f = 0.0;
            continue;
        }
        if compute_loss {
            loss -= t.log_sigmoid(if label > 0.5 { *f } else { -*f }) as f64;
        }
        *f = (label - t.sigmoid(*f)) * alpha;
    }
    // G Y (b x d) and G^T X (o x d; G read transposed).
    gemm_with(Threads::Caller, (b, d, o), grad_x, g, (o, 1), y, (d, 1));
    gemm_with(Threads::Caller, (o, d, b), grad_y, g, (1, o), x, (d, 1));
    loss
}

/// Lock factors of the test hooks' tables: 1 for every row.
static UNLOCKED: [f32; 1] = [1.0];

/// `syn0` and `syn1neg` (`(rows, dim)` row-major) as the trainer's tables for the test hooks,
/// lock factors 1, once every row of `inputs` is in `syn0` and every row of `outputs` (at
/// least one) in `syn1neg`.
pub(super) fn hook_tables(
    syn0: &mut [f32],
    syn1neg: &mut [f32],
    dim: usize,
    inputs: &[u32],
    outputs: &[u32],
) -> Result<(PlainRows, OutputRows)> {
    if dim == 0 || outputs.is_empty() {
        return Err(Error::invalid("need dim > 0 and at least one output row"));
    }
    let input = PlainRows {
        table: OutputRows::of(syn0, dim),
        lockf: UNLOCKED.as_ptr(),
        lockf_len: 1,
    };
    let out = OutputRows::of(syn1neg, dim);
    let bad = |ids: &[u32], n: usize| ids.iter().copied().find(|&r| r as usize >= n);
    if let Some(r) = bad(inputs, input.table.count).or(bad(outputs, out.count)) {
        return Err(Error::invalid(format!("row {r} is outside the tables")));
    }
    Ok((input, out))
}

/// One HogBatch window on plain tables (the test suite's hook): `contexts` index rows of
/// `syn0`, `outputs` (the true word first, then the noise words) rows of `syn1neg`, both
/// `(rows, dim)` row-major; lock factors 1. Returns the loss.
pub fn window_on_tables(
    syn0: &mut [f32],
    syn1neg: &mut [f32],
    dim: usize,
    contexts: &[u32],
    outputs: &[u32],
    alpha: f32,
) -> Result<f64> {
    let (input, out) = hook_tables(syn0, syn1neg, dim, contexts, outputs)?;
    let mut bs = BatchScratch::default();
    bs.contexts.extend_from_slice(contexts);
    bs.outputs.extend_from_slice(outputs);
    let tables = SigmoidTables::default();
    let mut buf = vec![0f32; dim];
    // SAFETY: every row was checked to be in its table; one thread.
    Ok(unsafe {
        window(
            &input,
            &input.table,
            &out,
            &tables,
            &mut bs,
            &mut buf,
            alpha,
            true,
        )
    })
}

/// The update of the window in `bs` (contexts and outputs filled): gather, gradients, scatter.
///
/// # Safety
/// Rows in range; tables live (Hogwild races as the job's own updates: `Shared::job` in `job.rs`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn window<I: InputVectors, T: RowTable>(
    input: &I,
    syn0: &T,
    syn1neg: &T,
    tables: &SigmoidTables,
    bs: &mut BatchScratch,
    buf: &mut [f32],
    alpha: f32,
    compute_loss: bool,
) -> f64 {
    let d = buf.len();
    let (b, o) = (bs.contexts.len(), bs.outputs.len());
    bs.x.clear();
    for &c in &bs.contexts {
        bs.x.extend_from_slice(input.input(syn0, c, buf));
    }
    bs.y.clear();
    for &n in &bs.outputs {
        bs.y.extend_from_slice(syn1neg.read(n));
    }
    let loss = window_gradients(
        tables,
        (b, o, d),
        &centre_first(),
        &bs.x,
        &bs.y,
        alpha,
        compute_loss,
        &mut bs.g,
        &mut bs.grad_x,
        &mut bs.grad_y,
    );
    for (k, &c) in bs.contexts.iter().enumerate() {
        input.update(syn0, c, &bs.grad_x[k * d..(k + 1) * d]);
    }
    for (k, &n) in bs.outputs.iter().enumerate() {
        axpy(1.0, &bs.grad_y[k * d..(k + 1) * d], syn1neg.grad(n));
    }
    loss
}

//! The per-example updates of word2vec, line by line gensim's `word2vec_inner.pyx`
//! (`w2v_fast_sentence_{sg,cbow}_{hs,neg}`), generic over how a word's input vector is made
//! ([`InputVectors`]: a row of `syn0` for word2vec, a bag of rows for fastText).
//!
//! With `l1` the input vector (skip-gram: the context word's; CBOW: `neu1`, the sum or mean of
//! the window's input vectors) and `l2` an output row (`syn1neg[target]` or `syn1[point]`),
//! each target with label `y` (1 for the true word / a Huffman code bit `1 - code`, 0 for a
//! noise word) does, when `|l1 . l2| < 6`:
//!
//! `g = (y - sigma(l1 . l2)) * alpha;  work += g * l2;  l2 += g * l1`
//!
//! with `sigma` read from gensim's 1000-entry table on `[-6, 6)`, and then `work` (divided by
//! the window size for a CBOW sum) is added to every input row, times its lock factor. The
//! loss (`compute_loss`) adds `-log sigma(+-l1 . l2)` from the log table, per target.
//!
//! Rows are reached through a [`RowTable`]: by default the shared tables themselves, read and
//! written without locks from every worker (Hogwild, as gensim and the C tool: the raw-pointer
//! tables below are shared on purpose); in deterministic mode a sub-block's private staged
//! copies (`super::staged`).

/// Points of the sigmoid table.
pub const EXP_TABLE_SIZE: usize = 1000;
/// The table covers `[-MAX_EXP, MAX_EXP)`; dot products outside are skipped.
pub const MAX_EXP: f32 = 6.0;
const LCG_MUL: u64 = 25_214_903_917;
/// gensim's 48-bit LCG modulus mask.
pub const LCG_MASK: u64 = (1 << 48) - 1;

/// gensim's `EXP_TABLE` (sigmoid) and `LOG_TABLE` (its log).
pub struct SigmoidTables {
    exp: Vec<f32>,
    log: Vec<f32>,
}

impl Default for SigmoidTables {
    fn default() -> Self {
        let exp: Vec<f32> = (0..EXP_TABLE_SIZE)
            .map(|i| {
                let x = (i as f32 / EXP_TABLE_SIZE as f32 * 2.0 - 1.0) * MAX_EXP;
                let e = (x as f64).exp() as f32;
                e / (e + 1.0)
            })
            .collect();
        let log = exp.iter().map(|&e| (e as f64).ln() as f32).collect();
        SigmoidTables { exp, log }
    }
}

impl SigmoidTables {
    /// The table slot of `f` in `(-MAX_EXP, MAX_EXP)`, computed in double as gensim's C does.
    #[inline(always)]
    fn slot(f: f32) -> usize {
        let i = ((f + MAX_EXP) as f64 * (EXP_TABLE_SIZE as f64 / MAX_EXP as f64 / 2.0)) as usize;
        i.min(EXP_TABLE_SIZE - 1)
    }

    /// `sigma(f)` from the table.
    #[inline(always)]
    pub fn sigmoid(&self, f: f32) -> f32 {
        self.exp[Self::slot(f)]
    }

    /// `log sigma(f)` from the table.
    #[inline(always)]
    pub fn log_sigmoid(&self, f: f32) -> f32 {
        self.log[Self::slot(f)]
    }
}

/// gensim's `random_int32`: the current draw, then one LCG step.
#[inline(always)]
pub fn lcg_next(state: &mut u64) -> u64 {
    let r = *state >> 16;
    *state = (state.wrapping_mul(LCG_MUL).wrapping_add(11)) & LCG_MASK;
    r
}

/// `a . b` with 16 independent partial sums (vectorizes; the order is fixed, so a given
/// length always sums the same way).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let full = n / 16 * 16;
    for (ca, cb) in a[..full].chunks_exact(16).zip(b[..full].chunks_exact(16)) {
        for k in 0..16 {
            acc[k] += ca[k] * cb[k];
        }
    }
    let mut tail = 0f32;
    for i in full..n {
        tail += a[i] * b[i];
    }
    let mut s = 0f32;
    for v in acc {
        s += v;
    }
    s + tail
}

/// `y += g * x`.
#[inline(always)]
pub fn axpy(g: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += g * *xi;
    }
}

/// Row access to a table: the shared table itself ([`OutputRows`], Hogwild) or a worker's
/// private staged view of it (`super::staged::StagedRows`, deterministic mode).
///
/// A row is *read* through [`RowTable::read`] and *updated* through [`RowTable::grad`]: in
/// place, both are the row itself; a staged view may read the table as of the start of the
/// minibatch and collect the updates in a buffer of its own.
///
/// # Safety
/// Both methods hand out rows with an unchecked lifetime: callers keep the table alive, pass
/// valid rows and use at most one row of a given view at a time (a staged view may move its
/// rows when it stages a new one).
pub unsafe trait RowTable {
    /// Row `r` as this view sees it, `dim` values.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn read<'a>(&self, r: u32) -> &'a [f32];

    /// Where the updates of row `r` go (`+=`), `dim` values.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn grad<'a>(&self, r: u32) -> &'a mut [f32];
}

/// How a word's input vector is formed from, and its gradient applied to, rows of the input
/// table (passed as `rows`: the table itself, or a staged view of it).
///
/// # Safety
/// Implementations name rows of the table [`InputVectors::table`] (every row id they use is
/// in range); callers must keep the table alive and, in Hogwild mode, accept racy reads and
/// writes of the same row.
pub unsafe trait InputVectors: Sync {
    /// Skip-gram direction: `false` (word2vec, gensim's `train_batch_sg`) makes each context
    /// word's vector the input and the centre word the target; `true` (fastText and gensim's
    /// `FastText`) makes the centre word's vector the input and each context word a target.
    const CENTRE_INPUT: bool = false;

    /// The input table whose rows the words name.
    fn table(&self) -> OutputRows;

    /// The input vector of `w`: a row of `rows`, or built into `buf` (length `dim`).
    ///
    /// # Safety
    /// `w` must be a valid word; see the trait.
    unsafe fn input<'a, T: RowTable>(&self, rows: &T, w: u32, buf: &'a mut [f32]) -> &'a [f32];

    /// `acc +=` the sum of `w`'s input rows; returns how many rows that is (CBOW averages over
    /// rows: 1 for word2vec, the bag size for fastText, as gensim's `fasttext_inner.pyx`).
    ///
    /// # Safety
    /// As [`InputVectors::input`].
    unsafe fn add_input_to<T: RowTable>(&self, rows: &T, w: u32, acc: &mut [f32]) -> f32;

    /// Apply the gradient `grad` (already times the learning rate) to `w`'s input rows.
    ///
    /// # Safety
    /// As [`InputVectors::input`].
    unsafe fn update<T: RowTable>(&self, rows: &T, w: u32, grad: &[f32]);
}

/// word2vec's input vectors: row `w` of `syn0`, updated times its lock factor
/// (`lockf[w % lockf.len()]`, gensim's `vectors_lockf`).
#[derive(Clone, Copy)]
pub struct PlainRows {
    /// `syn0`, `(V, dim)` row-major.
    pub table: OutputRows,
    /// Lock factors (length >= 1).
    pub lockf: *const f32,
    /// Length of `lockf`.
    pub lockf_len: usize,
}

// SAFETY: shared by the workers on purpose (Hogwild); the tables outlive the workers.
unsafe impl Send for PlainRows {}
unsafe impl Sync for PlainRows {}

unsafe impl InputVectors for PlainRows {
    fn table(&self) -> OutputRows {
        self.table
    }

    #[inline(always)]
    unsafe fn input<'a, T: RowTable>(&self, rows: &T, w: u32, _buf: &'a mut [f32]) -> &'a [f32] {
        rows.read(w)
    }

    #[inline(always)]
    unsafe fn add_input_to<T: RowTable>(&self, rows: &T, w: u32, acc: &mut [f32]) -> f32 {
        axpy(1.0, rows.read(w), acc);
        1.0
    }

    #[inline(always)]
    unsafe fn update<T: RowTable>(&self, rows: &T, w: u32, grad: &[f32]) {
        let f = *self.lockf.add(w as usize % self.lockf_len);
        axpy(f, grad, rows.grad(w));
    }
}

/// A table (`syn0`, `syn1neg` or `syn1`) shared by the workers, read and written in place.
#[derive(Clone, Copy)]
pub struct OutputRows {
    /// `(count, dim)` row-major.
    pub rows: *mut f32,
    /// Row length.
    pub dim: usize,
    /// Number of rows.
    pub count: usize,
}

// SAFETY: as PlainRows.
unsafe impl Send for OutputRows {}
unsafe impl Sync for OutputRows {}

impl OutputRows {
    /// The whole of `table`, `(table.len() / dim, dim)`.
    pub fn of(table: &mut [f32], dim: usize) -> Self {
        OutputRows {
            rows: table.as_mut_ptr(),
            dim,
            count: table.len().checked_div(dim).unwrap_or(0),
        }
    }
}

impl OutputRows {
    /// Row `r`, read and written in place.
    ///
    /// # Safety
    /// `r < count`, the table live; see [`RowTable`].
    #[inline(always)]
    pub unsafe fn row<'a>(&self, r: u32) -> &'a mut [f32] {
        std::slice::from_raw_parts_mut(self.rows.add(r as usize * self.dim), self.dim)
    }
}

unsafe impl RowTable for OutputRows {
    #[inline(always)]
    unsafe fn read<'a>(&self, r: u32) -> &'a [f32] {
        self.row(r)
    }

    #[inline(always)]
    unsafe fn grad<'a>(&self, r: u32) -> &'a mut [f32] {
        self.row(r)
    }
}

/// One target of a training example: `l2 = out[row]`, label `y`; returns the loss term.
///
/// # Safety
/// `row` must be a valid row of `out`.
#[inline(always)]
pub unsafe fn target<T: RowTable>(
    t: &SigmoidTables,
    l1: &[f32],
    out: &T,
    row: u32,
    label: f32,
    alpha: f32,
    work: &mut [f32],
) -> Option<f32> {
    let l2 = out.read(row);
    let f = dot(l1, l2);
    if f <= -MAX_EXP || f >= MAX_EXP {
        return None;
    }
    let g = (label - t.sigmoid(f)) * alpha;
    axpy(g, l2, work);
    // `l2` is not read past this point: in place, `grad` is the same row.
    axpy(g, l1, out.grad(row));
    // -log sigma(f) for a positive label, -log sigma(-f) for a negative one
    Some(-t.log_sigmoid(if label > 0.5 { f } else { -f }))
}

/// Everything the example functions read besides the rows.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// Sigmoid and log tables.
    pub tables: &'a SigmoidTables,
    /// Noise table (`cum_table`), empty without negative sampling.
    pub cum_table: &'a [u32],
    /// Noise words per target.
    pub negative: usize,
    /// Accumulate the loss.
    pub compute_loss: bool,
}

impl Ctx<'_> {
    /// `bisect_left(cum_table, (state >> 16) % cum_table[-1])`, then an LCG step.
    #[inline(always)]
    pub(super) fn draw(&self, state: &mut u64) -> u32 {
        let last = *self.cum_table.last().unwrap_or(&1) as u64;
        let x = ((*state >> 16) % last.max(1)) as u32;
        *state = (state.wrapping_mul(LCG_MUL).wrapping_add(11)) & LCG_MASK;
        self.cum_table.partition_point(|&c| c < x) as u32
    }

    /// Negative sampling for `word` from the input `l1`: the true word, then `negative` noise
    /// words (skipping draws equal to `word`). Returns the loss.
    ///
    /// # Safety
    /// Rows in range.
    #[inline(always)]
    pub unsafe fn negatives<T: RowTable>(
        &self,
        word: u32,
        l1: &[f32],
        out: &T,
        alpha: f32,
        work: &mut [f32],
        state: &mut u64,
    ) -> f64 {
        let mut loss = 0f64;
        for d in 0..=self.negative {
            let (row, label) = if d == 0 {
                (word, 1.0)
            } else {
                let t = self.draw(state);
                if t == word {
                    continue;
                }
                (t, 0.0)
            };
            if let Some(l) = target(self.tables, l1, out, row, label, alpha, work) {
                if self.compute_loss {
                    loss += l as f64;
                }
            }
        }
        loss
    }

    /// Hierarchical softmax along `word`'s Huffman path (`codes`, `points`). Returns the loss.
    ///
    /// # Safety
    /// Rows in range.
    #[inline(always)]
    pub unsafe fn softmax<T: RowTable>(
        &self,
        codes: &[u8],
        points: &[u32],
        l1: &[f32],
        out: &T,
        alpha: f32,
        work: &mut [f32],
    ) -> f64 {
        let mut loss = 0f64;
        for (&code, &point) in codes.iter().zip(points) {
            let label = 1.0 - code as f32;
            if let Some(l) = target(self.tables, l1, out, point, label, alpha, work) {
                if self.compute_loss {
                    loss += l as f64;
                }
            }
        }
        loss
    }
}

//! One training job (gensim's `train_batch_sg` / `train_batch_cbow`): the sentences of the job
//! are subsampled (a word `w` is dropped when `sample_int[w] < random_int32()`), each remaining
//! position draws its window (`window - b`, `b` uniform in `0..window`, when windows shrink),
//! and every position trains its examples with the updates of [`super::kernels`].
//!
//! The loop is compiled twice (AVX2+FMA and baseline) and picked at run time.

use super::hogbatch::BatchScratch;
use super::hogbatch::CBOW_BATCH;
use super::huffman::Huffman;
use super::kernels::{lcg_next, Ctx, InputVectors, OutputRows, RowTable, LCG_MASK};
use super::model::Params;
use crate::rng::Rng;

/// A job: stored sentences `sent_lo..sent_hi` of the prepared corpus.
#[derive(Debug, Clone)]
pub struct Job {
    /// First sentence.
    pub sent_lo: usize,
    /// One past the last sentence.
    pub sent_hi: usize,
    /// Examples in the epoch's earlier jobs.
    pub examples_before: u64,
    /// Raw words in the epoch's earlier jobs.
    pub raw_before: u64,
    /// Raw words (in or out of the vocabulary) of this job.
    pub raw_words: u64,
    /// Examples completed by this job.
    pub examples: u64,
}

impl Job {
    /// The whole job as one block.
    pub fn block(&self, p: &Prepared) -> Block {
        self.sub_block(p, 0, 1)
    }

    /// Sub-block `j` of `n`: the job's words (after vocabulary mapping) cut into `n` runs of
    /// near-equal length, `[lo + len * j / n, lo + len * (j + 1) / n)`. Windows stop at a
    /// sub-block's ends as at a sentence's.
    pub fn sub_block(&self, p: &Prepared, j: usize, n: usize) -> Block {
        let (lo, hi) = (p.offsets[self.sent_lo], p.offsets[self.sent_hi]);
        let len = hi - lo;
        let cut = |k: usize| lo + ((len as u128 * k as u128) / n.max(1) as u128) as usize;
        Block {
            sent_lo: self.sent_lo,
            sent_hi: self.sent_hi,
            ids_lo: cut(j),
            ids_hi: cut(j + 1),
        }
    }
}

/// The words one call of [`Shared::job`] trains: sentences `sent_lo..sent_hi`, clipped to the
/// positions `ids_lo..ids_hi` of [`Prepared::ids`].
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// First sentence.
    pub sent_lo: usize,
    /// One past the last sentence.
    pub sent_hi: usize,
    /// First position in `ids`.
    pub ids_lo: usize,
    /// One past the last position in `ids`.
    pub ids_hi: usize,
}

/// The corpus as vocabulary indices (words outside the vocabulary dropped: the window then
/// spans over them, as gensim), cut into jobs of at most `batch_words` raw words.
pub struct Prepared {
    /// Vocabulary indices of every sentence.
    pub ids: Vec<u32>,
    /// `sentences + 1` offsets into `ids`.
    pub offsets: Vec<usize>,
    /// The jobs of one epoch.
    pub jobs: Vec<Job>,
    /// Raw words of one epoch.
    pub raw_total: u64,
}

/// What the jobs of one epoch read: the tables (`T`: shared in place, or a worker's staged
/// view in deterministic mode) and the read-only settings.
pub struct Shared<'a, I: InputVectors, T: RowTable = OutputRows> {
    /// How words map to input rows.
    pub input: &'a I,
    /// The input table ([`InputVectors::table`], or a view of it).
    pub syn0: T,
    /// `syn1` (hierarchical softmax).
    pub syn1: T,
    /// `syn1neg` (negative sampling).
    pub syn1neg: T,
    /// Hyper-parameters.
    pub params: &'a Params,
    /// Huffman codes.
    pub huffman: &'a Huffman,
    /// Subsampling thresholds; `None` when nothing is subsampled.
    pub sample_int: Option<&'a [u32]>,
    /// Tables and settings of the updates.
    pub ctx: Ctx<'a>,
    /// Negative sampling by HogBatch windows / batches ([`super::hogbatch`],
    /// [`super::hogbatch_cbow`]).
    pub minibatch: bool,
}

/// A worker's scratch buffers.
pub struct Scratch {
    work: Vec<f32>,
    neu1: Vec<f32>,
    pub(super) buf: Vec<f32>,
    pub(super) idx: Vec<u32>,
    bounds: Vec<usize>,
    pub(super) reduced: Vec<usize>,
    pub(super) batch: BatchScratch,
}

impl Scratch {
    /// Buffers for vectors of `dim` values.
    pub fn new(dim: usize) -> Self {
        Scratch {
            work: vec![0.0; dim],
            neu1: vec![0.0; dim],
            buf: vec![0.0; dim],
            idx: Vec::new(),
            bounds: Vec::new(),
            reduced: Vec::new(),
            batch: BatchScratch::default(),
        }
    }
}

/// What a job did: words trained on and the loss it adds.
#[derive(Default, Clone, Copy)]
pub struct JobResult {
    /// Words left after subsampling.
    pub effective_words: u64,
    /// Sum of the loss terms (0 unless `compute_loss`).
    pub loss: f64,
}

impl<I: InputVectors, T: RowTable> Shared<'_, I, T> {
    /// Skip-gram: predict `word` (at `i`) from each context word (or, with
    /// [`InputVectors::CENTRE_INPUT`], each context word from `word`).
    #[inline(always)]
    unsafe fn sg(
        &self,
        s: &mut Scratch,
        i: usize,
        j0: usize,
        j1: usize,
        alpha: f32,
        st: &mut u64,
    ) -> f64 {
        let mut loss = 0.0;
        for j in j0..j1 {
            if j == i {
                continue;
            }
            let (ctx, word) = if I::CENTRE_INPUT {
                (s.idx[i], s.idx[j])
            } else {
                (s.idx[j], s.idx[i])
            };
            if self.params.hs {
                let (codes, points) = self.huffman.path(word);
                let l1 = self.input.input(&self.syn0, ctx, &mut s.buf);
                s.work.fill(0.0);
                loss += self
                    .ctx
                    .softmax(codes, points, l1, &self.syn1, alpha, &mut s.work);
                self.input.update(&self.syn0, ctx, &s.work);
            }
            if self.params.negative > 0 {
                let l1 = self.input.input(&self.syn0, ctx, &mut s.buf);
                s.work.fill(0.0);
                loss += self
                    .ctx
                    .negatives(word, l1, &self.syn1neg, alpha, &mut s.work, st);
                self.input.update(&self.syn0, ctx, &s.work);
            }
        }
        loss
    }

    /// CBOW: predict `word` (at `i`) from the sum or mean of its window (`neu1`).
    #[inline(always)]
    unsafe fn cbow_step(
        &self,
        s: &mut Scratch,
        i: usize,
        (j0, j1): (usize, usize),
        alpha: f32,
        st: &mut u64,
        hs: bool,
    ) -> f64 {
        s.neu1.fill(0.0);
        let mut count = 0f32;
        for m in j0..j1 {
            if m != i {
                count += self.input.add_input_to(&self.syn0, s.idx[m], &mut s.neu1);
            }
        }
        let inv = if count > 0.5 { 1.0 / count } else { 1.0 };
        if self.params.cbow_mean {
            s.neu1.iter_mut().for_each(|x| *x *= inv);
        }
        s.work.fill(0.0);
        let word = s.idx[i];
        let loss = if hs {
            let (codes, points) = self.huffman.path(word);
            self.ctx
                .softmax(codes, points, &s.neu1, &self.syn1, alpha, &mut s.work)
        } else {
            self.ctx
                .negatives(word, &s.neu1, &self.syn1neg, alpha, &mut s.work, st)
        };
        if !self.params.cbow_mean {
            s.work.iter_mut().for_each(|x| *x *= inv);
        }
        for m in j0..j1 {
            if m != i {
                self.input.update(&self.syn0, s.idx[m], &s.work);
            }
        }
        loss
    }

    /// Run one block (a job, or a sub-block of one).
    ///
    /// # Safety
    /// The tables must be live; with shared tables, concurrent blocks race on rows (Hogwild).
    #[inline(always)]
    pub unsafe fn job(
        &self,
        s: &mut Scratch,
        p: &Prepared,
        block: Block,
        alpha: f32,
        rng: &mut Rng,
    ) -> JobResult {
        let mut st = rng.next_u64() & LCG_MASK;
        s.idx.clear();
        s.bounds.clear();
        s.bounds.push(0);
        for sent in block.sent_lo..block.sent_hi {
            let lo = p.offsets[sent].max(block.ids_lo);
            let hi = p.offsets[sent + 1].min(block.ids_hi);
            for &w in p.ids.get(lo..hi).unwrap_or(&[]) {
                if let Some(sample) = self.sample_int {
                    if (sample[w as usize] as u64) < lcg_next(&mut st) {
                        continue;
                    }
                }
                s.idx.push(w);
            }
            if *s.bounds.last().unwrap_or(&0) != s.idx.len() {
                s.bounds.push(s.idx.len());
            }
        }
        let window = self.params.window;
        s.reduced.clear();
        for _ in 0..s.idx.len() {
            let b = if self.params.shrink_windows {
                rng.below(window as u64) as usize
            } else {
                0
            };
            s.reduced.push(b);
        }
        let mut loss = 0.0;
        for b in 1..s.bounds.len() {
            let (lo, hi) = (s.bounds[b - 1], s.bounds[b]);
            if self.minibatch && !self.params.sg {
                for i0 in (lo..hi).step_by(CBOW_BATCH) {
                    let i1 = (i0 + CBOW_BATCH).min(hi);
                    loss += self.cbow_batched(s, (lo, hi), (i0, i1), alpha, &mut st);
                }
                continue;
            }
            for i in lo..hi {
                let span = window - s.reduced[i];
                let j0 = i.saturating_sub(span).max(lo);
                let j1 = (i + span + 1).min(hi);
                if self.params.sg && self.minibatch {
                    loss += self.sg_batched(s, (i, j0, j1), alpha, &mut st);
                } else if self.params.sg {
                    loss += self.sg(s, i, j0, j1, alpha, &mut st);
                } else {
                    if self.params.hs {
                        loss += self.cbow_step(s, i, (j0, j1), alpha, &mut st, true);
                    }
                    if self.params.negative > 0 {
                        loss += self.cbow_step(s, i, (j0, j1), alpha, &mut st, false);
                    }
                }
            }
        }
        JobResult {
            effective_words: s.idx.len() as u64,
            loss,
        }
    }
}

/// True when this CPU has AVX2 and FMA.
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Run one block on the best loop this CPU has (the same loop compiled for AVX2+FMA and for
/// the baseline).
///
/// # Safety
/// As [`Shared::job`].
pub unsafe fn run_job<I: InputVectors, T: RowTable>(
    avx2: bool,
    sh: &Shared<'_, I, T>,
    s: &mut Scratch,
    work: (&Prepared, Block, f32, &mut Rng),
) -> JobResult {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        return job_avx2(sh, s, work);
    }
    let _ = avx2;
    let (p, block, alpha, rng) = work;
    sh.job(s, p, block, alpha, rng)
}

/// [`Shared::job`] compiled for AVX2+FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn job_avx2<I: InputVectors, T: RowTable>(
    sh: &Shared<'_, I, T>,
    s: &mut Scratch,
    (p, block, alpha, rng): (&Prepared, Block, f32, &mut Rng),
) -> JobResult {
    sh.job(s, p, block, alpha, rng)
}

impl<I: InputVectors, T: RowTable> Shared<'_, I, T> {
    /// One HogBatch window: centre `s.idx[i]`, context `s.idx[j0..j1]` minus `i`.
    ///
    /// # Safety
    /// As [`Shared::job`].
    #[inline(always)]
    pub(super) unsafe fn sg_batched(
        &self,
        s: &mut Scratch,
        (i, j0, j1): (usize, usize, usize),
        alpha: f32,
        st: &mut u64,
    ) -> f64 {
        let word = s.idx[i];
        let bs = &mut s.batch;
        bs.contexts.clear();
        bs.contexts
            .extend((j0..j1).filter(|&j| j != i).map(|j| s.idx[j]));
        if bs.contexts.is_empty() {
            return 0.0;
        }
        bs.outputs.clear();
        bs.outputs.push(word);
        for _ in 0..self.ctx.negative {
            let n = self.ctx.draw(st);
            if !bs.outputs.contains(&n) {
                bs.outputs.push(n);
            }
        }
        let (tables, loss) = (self.ctx.tables, self.ctx.compute_loss);
        super::hogbatch::window(
            self.input,
            &self.syn0,
            &self.syn1neg,
            tables,
            bs,
            &mut s.buf,
            alpha,
            loss,
        )
    }
}

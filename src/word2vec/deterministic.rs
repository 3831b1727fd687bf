//! Deterministic multi-threaded epochs (`deterministic=True`): the same tables, bit for bit,
//! for a seed whatever the number of workers.
//!
//! The epoch's jobs (`prepare` in `train.rs`, at most `batch_words` raw words each, cut the
//! same way for any worker count) are its *minibatches*, run one after the other. Minibatch
//! `k` of `m` words is cut into `n = clamp(ceil(m / 1000), 1, 16)` sub-blocks of near-equal
//! word counts ([`sub_blocks`], [`super::job::Job::sub_block`]): a function of the corpus, not
//! of the workers; every sub-block trains exactly as a Hogwild job would
//! (same per-example updates, [`super::kernels`]), but
//!
//! - on private staged rows ([`super::staged`]): it reads the tables as of the start of the
//!   minibatch plus its *own* updates (of the input and Huffman rows; negative sampling's
//!   output rows are read as of the start), never another sub-block's;
//! - with its random numbers from stream `(jobs_done + k) * SUB_BLOCKS + j` of the seed
//!   (sub-block `j`), and the learning rate of the minibatch,
//!   `alpha_k = max(end, start - (start - end) * (epoch + progress_k) / epochs)` with
//!   `progress_k` the fraction of the epoch before job `k` (as Hogwild's jobs);
//! - then, once every sub-block of the minibatch is done, its change to each row
//!   (`copy - row`) is added to the table in sub-block order `0, 1, ..., n - 1`; for the
//!   Huffman tree's rows (hierarchical softmax) each change is first scaled by
//!   `1 / sqrt(c_r)`, `c_r` the number of the minibatch's sub-blocks that touched row `r`:
//!   `row += sum_j delta_j / sqrt(c_r)`.
//!
//! Hierarchical softmax (issue 14: summing lost 0.07 to 0.14 of gensim's wordsim rho). The
//! tree's upper nodes are on the path of nearly every word: each sub-block updates them
//! thousands of times, its copy converging on its own towards the same point, so the *sum*
//! of `n` such changes overshoots about `n` times, while the *mean* (model averaging) divides
//! the step of the many lower nodes that each sub-block touches only a few times (whose
//! changes should add up). `1 / sqrt(c_r)` lies between the two (the size of a sum of `c_r`
//! independent changes); it was chosen by measurement (`test_deterministic.py`'s hs quality
//! test on lee, 4 sub-blocks: agreement with Hogwild 0.66 summed, 0.76 averaged, 0.88 with
//! it, against 0.92 Hogwild seed to seed), not derived. Staleness still grows with `n`, so
//! with hs a minibatch has at most [`HS_SUB_BLOCKS`] sub-blocks (at most 4 busy workers). A
//! row one sub-block touched keeps its change exactly (`x * (1 / sqrt(1))`); input rows and
//! negative sampling's output rows keep the plain sum.
//!
//! Workers take sub-blocks in any order and split the final additions by row, so nothing
//! depends on scheduling: per row, the same numbers are added in the same order.
//!
//! The trade-off is staleness: within a minibatch a sub-block does not see the other
//! sub-blocks' updates (at most `batch_words` words of them), where Hogwild sees whatever the
//! other threads have written so far. Frequent rows then take the sum of up to `n` changes
//! computed from the same starting point (hence at least [`MIN_SUB_BLOCK_WORDS`] words per
//! sub-block when the minibatch allows: a small minibatch is cut into fewer, larger
//! sub-blocks). Parallelism is capped at [`SUB_BLOCKS`] workers ([`HS_SUB_BLOCKS`] with hs); each worker keeps a row map
//! of 4 bytes per row of every table (fastText's input table has `nwords + bucket` rows), and
//! each sub-block a staged row for every row it touches ([`super::staged`]): a copy of each
//! input row and Huffman-tree row (the sub-block sees its own updates: the tree's upper nodes
//! are updated by every word), and only the accumulated change of each negative-sampling
//! output row, read as of the minibatch's start (most rows a sub-block touches are noise
//! words, each touched a few times: no copy-in and no subtraction keeps the deterministic
//! cost of CBOW, the cheapest mode per word, within 1.5x of Hogwild's). Results are identical across worker counts
//! on one machine and build (the float operations do not change), not across CPUs with
//! different vector units.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, RwLock};
use std::time::{Duration, Instant};

use super::epoch::{EpochPlan, EpochStats};
use super::job::{has_avx2, run_job, JobResult, Prepared, Scratch, Shared};
use super::kernels::InputVectors;
use super::staged::{RowDelta, SlotMap, StagedRows, Staging, Touches};
use crate::rng::Rng;
use crate::{Error, Result};

/// The most sub-blocks of a minibatch: the most workers a deterministic epoch keeps busy.
pub const SUB_BLOCKS: usize = 16;

/// Words (in the vocabulary, before subsampling) per sub-block, at least, when the minibatch
/// has them: fewer, larger sub-blocks for small minibatches keep the staleness down.
pub const MIN_SUB_BLOCK_WORDS: usize = 1000;

/// The most sub-blocks of a minibatch with hierarchical softmax (see the module docs).
pub const HS_SUB_BLOCKS: usize = 4;

/// Sub-blocks of a minibatch of `words` words: `clamp(ceil(words / MIN_SUB_BLOCK_WORDS), 1,
/// cap)`, `cap` = [`HS_SUB_BLOCKS`] with hierarchical softmax (`hs`), else [`SUB_BLOCKS`]: a
/// function of the corpus and the parameters alone (never of `workers`).
pub fn sub_blocks(words: usize, hs: bool) -> usize {
    let cap = if hs { HS_SUB_BLOCKS } else { SUB_BLOCKS };
    words.div_ceil(MIN_SUB_BLOCK_WORDS).clamp(1, cap)
}

/// What one sub-block did: its row changes per table and its job result.
struct BlockOut {
    syn0: RowDelta,
    syn1: RowDelta,
    syn1neg: RowDelta,
    result: JobResult,
}

impl BlockOut {
    /// Input rows and the Huffman tree's rows copied on first touch (a sub-block sees its own
    /// updates of the tree's upper nodes and of its words), negative sampling's output rows
    /// accumulated (most of the rows a sub-block touches: noise words, each a few times).
    fn new() -> Self {
        BlockOut {
            syn0: RowDelta::new(Staging::Copy),
            syn1: RowDelta::new(Staging::Copy),
            syn1neg: RowDelta::new(Staging::Accumulate),
            result: JobResult::default(),
        }
    }
}

/// A worker's scratch buffers and row maps (one per table).
struct WorkerState {
    scratch: Scratch,
    syn0: SlotMap,
    syn1: SlotMap,
    syn1neg: SlotMap,
    /// Sub-blocks per Huffman row in this worker's stripe (see the module docs).
    syn1_touches: Touches,
}

/// Run one epoch of `p`'s jobs deterministically on `sh`'s tables (see the module docs).
pub fn run_epoch<I: InputVectors>(
    sh: &Shared<'_, I>,
    p: &Prepared,
    plan: &EpochPlan,
    (seed, first_stream): (u64, u64),
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<EpochStats> {
    let workers = plan.workers.clamp(1, SUB_BLOCKS);
    let d = sh.params.vector_size;
    let mut states = Vec::new();
    for _ in 0..workers {
        states.push(WorkerState {
            scratch: Scratch::new(d),
            syn0: SlotMap::new(sh.syn0.count)?,
            syn1: SlotMap::new(sh.syn1.count)?,
            syn1neg: SlotMap::new(sh.syn1neg.count)?,
            syn1_touches: Touches::new(sh.syn1.count)?,
        });
    }
    let blocks: Vec<RwLock<BlockOut>> = (0..SUB_BLOCKS)
        .map(|_| RwLock::new(BlockOut::new()))
        .collect();
    let taken: Vec<AtomicUsize> = p.jobs.iter().map(|_| AtomicUsize::new(0)).collect();
    let barrier = Barrier::new(workers);
    let stop = AtomicBool::new(false);
    let avx2 = has_avx2();

    let work = |id: usize, st: &mut WorkerState, progress: &mut dyn FnMut(u64) -> bool| {
        let mut stats = EpochStats::default();
        let mut last = Instant::now();
        for (k, job) in p.jobs.iter().enumerate() {
            let alpha = plan.alpha(job.examples_before, job.raw_before);
            let stream = first_stream.wrapping_add(k as u64);
            let n = sub_blocks(
                p.offsets[job.sent_hi] - p.offsets[job.sent_lo],
                sh.params.hs,
            );
            loop {
                let j = taken[k].fetch_add(1, Ordering::Relaxed);
                if j >= n {
                    break;
                }
                let mut out = blocks[j].write().unwrap_or_else(|e| e.into_inner());
                let out = &mut *out;
                out.syn0.clear();
                out.syn1.clear();
                out.syn1neg.clear();
                let view = Shared {
                    input: sh.input,
                    syn0: StagedRows::new(sh.syn0, &mut st.syn0, &mut out.syn0),
                    syn1: StagedRows::new(sh.syn1, &mut st.syn1, &mut out.syn1),
                    syn1neg: StagedRows::new(sh.syn1neg, &mut st.syn1neg, &mut out.syn1neg),
                    params: sh.params,
                    huffman: sh.huffman,
                    sample_int: sh.sample_int,
                    ctx: sh.ctx,
                    minibatch: sh.minibatch,
                };
                let mut rng = Rng::new(
                    seed,
                    stream
                        .wrapping_mul(SUB_BLOCKS as u64)
                        .wrapping_add(j as u64),
                );
                let block = job.sub_block(p, j, n);
                // SAFETY: the tables outlive the scope and nobody writes them until every
                // sub-block of this minibatch has finished (the barrier below).
                unsafe {
                    out.result = run_job(avx2, &view, &mut st.scratch, (p, block, alpha, &mut rng));
                    out.syn0.finish(sh.syn0, &mut st.syn0);
                    out.syn1.finish(sh.syn1, &mut st.syn1);
                    out.syn1neg.finish(sh.syn1neg, &mut st.syn1neg);
                }
            }
            barrier.wait();
            let stripe = (id, workers);
            let count_tree_rows = |touches: &mut Touches, remove: bool| {
                for b in &blocks[..n] {
                    let out = b.read().unwrap_or_else(|e| e.into_inner());
                    touches.count(&out.syn1, stripe, remove);
                }
            };
            count_tree_rows(&mut st.syn1_touches, false);
            for b in &blocks[..n] {
                let out = b.read().unwrap_or_else(|e| e.into_inner());
                // SAFETY: worker `id` alone writes the rows `r % workers == id`.
                unsafe {
                    out.syn0.apply(sh.syn0, stripe, None);
                    out.syn1.apply(sh.syn1, stripe, Some(&st.syn1_touches));
                    out.syn1neg.apply(sh.syn1neg, stripe, None);
                }
                if id == 0 {
                    stats.effective_words += out.result.effective_words;
                    stats.loss += out.result.loss;
                }
            }
            count_tree_rows(&mut st.syn1_touches, true);
            if id == 0 {
                stats.raw_words += job.raw_words;
                stats.examples += job.examples;
                stats.jobs += 1;
                if last.elapsed() >= Duration::from_millis(100) {
                    last = Instant::now();
                    if !progress(stats.raw_words) {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
            // Everyone has applied its rows (and sees `stop`) before the blocks are reused.
            barrier.wait();
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        stats
    };

    let (first, rest) = states.split_at_mut(1);
    let stats = std::thread::scope(|scope| {
        for (i, st) in rest.iter_mut().enumerate() {
            let work = &work;
            scope.spawn(move || work(i + 1, st, &mut |_| true));
        }
        work(0, &mut first[0], progress)
    });
    if stop.load(Ordering::Relaxed) {
        return Err(Error::invalid("training interrupted"));
    }
    Ok(stats)
}

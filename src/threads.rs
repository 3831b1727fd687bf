//! The crate's own rayon pool, resizable at run time (`set_num_threads`), so that kernels never
//! depend on (or fight over) the global rayon pool that candle and the user may configure.

use std::sync::{Arc, OnceLock, RwLock};

use crate::{Error, Result};

fn pool_cell() -> &'static RwLock<Arc<rayon::ThreadPool>> {
    static POOL: OnceLock<RwLock<Arc<rayon::ThreadPool>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        RwLock::new(Arc::new(
            build(n).expect("building the default thread pool"),
        ))
    })
}

fn build(n: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("candle-embed-{i}"))
        .build()
        .map_err(|e| Error::invalid(format!("cannot start {n} threads: {e}")))
}

/// The pool every kernel runs on (cheap clone of an `Arc`).
pub fn pool() -> Arc<rayon::ThreadPool> {
    pool_cell()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Number of threads the kernels use.
pub fn get_num_threads() -> usize {
    pool().current_num_threads()
}

/// Resize the pool. Calls already running finish on the old pool.
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 || n > 1024 {
        return Err(Error::invalid(format!(
            "num_threads must be in 1..=1024, got {n}"
        )));
    }
    let new = Arc::new(build(n)?);
    *pool_cell().write().unwrap_or_else(|e| e.into_inner()) = new;
    Ok(())
}

/// Run `f` inside the crate's pool (rayon's parallel iterators inside `f` use it).
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

/// Split `0..n` into about `4 * threads` chunks of at least `min_chunk` items: enough chunks to
/// balance skewed work, few enough that per-chunk overhead stays negligible.
pub fn chunk_len(n: usize, min_chunk: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    n.div_ceil(threads * 4).max(min_chunk).max(1)
}

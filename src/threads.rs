//! The crate's own rayon pool, resizable at run time (`set_num_threads`), so that kernels never
//! depend on (or fight over) the global rayon pool that candle and the user may configure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

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

/// Run `f(c)` for every chunk `c in 0..chunks` on the calling thread and up to `threads - 1`
/// pool threads, all claiming chunks from one atomic counter, and return as soon as every chunk
/// is done.
///
/// Unlike a rayon scope, this never waits for a pool thread that has not started yet: on a
/// shared machine a sleeping worker can take milliseconds to be scheduled, and a scope would
/// block the caller until it had run (even with nothing left to do). Here a late helper finds
/// the counter exhausted and leaves without touching the caller's data. Each chunk runs exactly
/// once, so results do not depend on which thread ran what. A panic in `f` (on any thread) is
/// re-raised on the calling thread once every chunk has finished.
pub fn run_chunks(chunks: usize, f: &(dyn Fn(usize) + Sync)) {
    let helpers = get_num_threads().min(chunks).saturating_sub(1);
    if helpers == 0 {
        (0..chunks).for_each(f);
        return;
    }
    // SAFETY (lifetime erasure): `f` is only dereferenced between claiming a chunk
    // (`next < chunks`) and marking it done, and this function returns only after all `chunks`
    // are marked done; after that, every claim fails, so no helper dereferences `f` once it
    // may have gone away. A raw pointer, so nothing holds a dangling reference meanwhile.
    let f: *const (dyn Fn(usize) + Sync + 'static) =
        unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), _>(f as *const _) };
    let shared = Arc::new(Chunks {
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        chunks,
        f,
        panic: Mutex::new(None),
    });
    let pool = pool();
    for _ in 0..helpers {
        let s = Arc::clone(&shared);
        pool.spawn(move || s.drain());
    }
    shared.drain();
    let mut spins = 0u32;
    while shared.done.load(Ordering::Acquire) < chunks {
        // Only chunks already running on a helper remain: short, unless it was preempted.
        if spins < 1 << 12 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
    let panic = shared
        .panic
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
}

/// Split `out` into consecutive chunks of `chunk` elements (the last may be shorter) and run
/// `f(c, chunk_c)` for each, on the caller and the pool ([`run_chunks`]).
pub fn for_each_chunk_mut<T: Send>(
    out: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let (len, chunk) = (out.len(), chunk.max(1));
    let base = SendPtr(out.as_mut_ptr());
    run_chunks(len.div_ceil(chunk), &|c| {
        let (a, b) = (c * chunk, ((c + 1) * chunk).min(len));
        // SAFETY: `run_chunks` runs each chunk index once, so the ranges handed out are
        // disjoint, and all lie inside `out`, which outlives the call.
        let part = unsafe { std::slice::from_raw_parts_mut(base.get().add(a), b - a) };
        f(c, part);
    });
}

/// Chunks of `n` items for [`run_chunks`]: about 8 per thread (a late thread leaves little to
/// wait for), at least `min_chunk` items each.
pub fn chunk_for(n: usize, min_chunk: usize) -> usize {
    n.div_ceil(get_num_threads() * 8).max(min_chunk).max(1)
}

/// A raw pointer that may cross threads: the users above hand out disjoint ranges only.
struct SendPtr<T>(*mut T);
// SAFETY: see `for_each_chunk_mut`: every range derived from it goes to one thread.
unsafe impl<T: Send> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

struct Chunks {
    next: AtomicUsize,
    done: AtomicUsize,
    chunks: usize,
    f: *const (dyn Fn(usize) + Sync),
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

// SAFETY: `f` points to a `Sync` closure and is only called under the protocol of `run_chunks`.
unsafe impl Send for Chunks {}
unsafe impl Sync for Chunks {}

impl Chunks {
    fn drain(&self) {
        loop {
            let c = self.next.fetch_add(1, Ordering::Relaxed);
            if c >= self.chunks {
                return;
            }
            // SAFETY: chunk `c` is claimed and not yet done, so `run_chunks` is still waiting
            // and the closure is alive (see there).
            let f = unsafe { &*self.f };
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c))) {
                *self.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    #[test]
    fn run_chunks_runs_every_chunk_exactly_once() {
        for chunks in [0usize, 1, 2, 7, 1000] {
            let hits: Vec<AtomicUsize> = (0..chunks).map(|_| AtomicUsize::new(0)).collect();
            run_chunks(chunks, &|c| {
                hits[c].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn run_chunks_reraises_a_panic_on_the_caller_and_the_pool_survives() {
        let r = std::panic::catch_unwind(|| {
            run_chunks(64, &|c| {
                if c == 40 {
                    panic!("chunk 40");
                }
            })
        });
        assert!(r.is_err());
        let total = AtomicUsize::new(0);
        run_chunks(64, &|c| {
            total.fetch_add(c, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 63 * 64 / 2);
    }

    /// With every pool thread busy, the caller does all the work and returns: it does not wait
    /// for a helper to be scheduled (a rayon scope would block until the blockers ended).
    #[test]
    fn run_chunks_does_not_wait_for_busy_pool_threads() {
        let release = Arc::new(AtomicBool::new(false));
        let released_by_flag = Arc::new(AtomicUsize::new(0)); // sum of per-blocker outcomes
        let p = pool();
        for _ in 0..p.current_num_threads() {
            let (release, by_flag) = (Arc::clone(&release), Arc::clone(&released_by_flag));
            p.spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                while !release.load(Ordering::Acquire) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                // 1 = released by the flag, 2 = gave up at the deadline.
                let how = if release.load(Ordering::Acquire) {
                    1
                } else {
                    2
                };
                by_flag.fetch_add(how, Ordering::Release);
            });
        }
        let sum = AtomicUsize::new(0);
        run_chunks(100, &|c| {
            sum.fetch_add(c, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 99 * 100 / 2);
        // Returned while the blockers still held the pool: they end by the flag, not the deadline.
        release.store(true, Ordering::Release);
        let n = p.current_num_threads();
        let mut seen = 0;
        for _ in 0..30_000 {
            seen = released_by_flag.load(Ordering::Acquire);
            if seen >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(seen, n, "every blocker is released by the flag");
    }
}

//! The random-row gather ceiling: the tightest Rust loop that does what a lookup does (copy
//! `N` random rows of a `V x D` f32 table into a reused output, rows prefetched 16 ids ahead,
//! the ids split in equal halves over the threads), with no validation, no pool and no Python.
//! `benches/bench_speed.py` runs it beside the lookups and reports how far each is from it
//! (perf-baseline.md's "ref C" loop, in Rust). Only std: it measures the machine, not the crate.
//!
//! ```text
//! cargo run --release --example gather_ceiling -- [--v 1000000] [--n 16384]
//!     [--d 64 128 512] [--threads 1 2] [--calls 200] [--quick]
//! ```
//!
//! Prints one line per (D, threads): `ceiling v=.. d=.. n=.. threads=.. median_ms=.. min_ms=..
//! gbps=..` (GB/s counts the row reads and the output writes, `2 * N * D * 4` bytes per call).

use std::time::Instant;

const BATCHES: usize = 32;
const PREFETCH_AHEAD: usize = 16;

struct Args {
    v: usize,
    n: usize,
    dims: Vec<usize>,
    threads: Vec<usize>,
    calls: usize,
}

fn parse() -> Args {
    let mut a = Args {
        v: 1_000_000,
        n: 16384,
        dims: vec![64, 128, 512],
        threads: vec![1, 2],
        calls: 200,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let list = |i: &mut usize| -> Vec<usize> {
        let mut v = Vec::new();
        while *i + 1 < argv.len() && !argv[*i + 1].starts_with("--") {
            *i += 1;
            v.push(argv[*i].parse().expect("a number"));
        }
        v
    };
    while i < argv.len() {
        match argv[i].as_str() {
            "--v" => a.v = list(&mut i)[0],
            "--n" => a.n = list(&mut i)[0],
            "--d" => a.dims = list(&mut i),
            "--threads" => a.threads = list(&mut i),
            "--calls" => a.calls = list(&mut i)[0],
            "--quick" => {
                a.v = 20_000;
                a.n = 1024;
                a.calls = 5;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 1;
    }
    a
}

/// splitmix64: a fixed, dependency-free id stream.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline(always)]
fn prefetch(p: *const f32, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let mut off = 0;
        while off < bytes {
            // SAFETY: a prefetch is a hint and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>((p as *const i8).wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

fn gather(table: &[f32], d: usize, ids: &[u32], out: &mut [f32]) {
    for (k, (&id, dst)) in ids.iter().zip(out.chunks_exact_mut(d)).enumerate() {
        if let Some(&ahead) = ids.get(k + PREFETCH_AHEAD) {
            prefetch(table[ahead as usize * d..].as_ptr(), d * 4);
        }
        let a = id as usize * d;
        dst.copy_from_slice(&table[a..a + d]);
    }
}

/// `calls` timed calls (after two untimed ones) on `t` threads that stay up for all of them:
/// the caller and `t - 1` workers each copy their share of every call's ids, and meet at a
/// barrier before and after it (the cost a thread pool pays too, and no more).
fn timed_calls(
    table: &[f32],
    d: usize,
    batches: &[Vec<u32>],
    out: &mut [f32],
    t: usize,
    calls: usize,
) -> Vec<f64> {
    let n = batches[0].len();
    let per = n.div_ceil(t);
    let mut parts: Vec<&mut [f32]> = out.chunks_mut(per * d).collect();
    // fewer ids than threads: fewer parts, and only they meet
    let barrier = std::sync::Barrier::new(parts.len());
    let mine = parts.remove(0);
    let share = |w: usize, c: usize| {
        let ids = &batches[c % BATCHES];
        &ids[(w * per).min(n)..((w + 1) * per).min(n)]
    };
    std::thread::scope(|s| {
        for (w, part) in parts.into_iter().enumerate() {
            let (barrier, share) = (&barrier, &share);
            s.spawn(move || {
                for c in 0..calls + 2 {
                    barrier.wait();
                    gather(table, d, share(w + 1, c), part);
                    barrier.wait();
                }
            });
        }
        (0..calls + 2)
            .map(|c| {
                let t0 = Instant::now();
                barrier.wait();
                gather(table, d, share(0, c), mine);
                barrier.wait();
                t0.elapsed().as_secs_f64() * 1e3
            })
            .skip(2)
            .collect()
    })
}

fn main() {
    let a = parse();
    let mut rng = 0x5EED_u64;
    for &d in &a.dims {
        let table: Vec<f32> = (0..a.v * d).map(|i| i as f32).collect();
        let batches: Vec<Vec<u32>> = (0..BATCHES)
            .map(|_| {
                (0..a.n)
                    .map(|_| (next(&mut rng) % a.v as u64) as u32)
                    .collect()
            })
            .collect();
        let mut out = vec![0f32; a.n * d];
        for &t in &a.threads {
            let t = t.max(1);
            let mut ms = timed_calls(&table, d, &batches, &mut out, t, a.calls);
            assert_eq!(
                out[0],
                table[batches[(a.calls + 1) % BATCHES][0] as usize * d]
            );
            ms.sort_by(f64::total_cmp);
            let median = ms[ms.len() / 2];
            let gbps = 2.0 * (a.n * d * 4) as f64 / (median * 1e-3) / 1e9;
            println!(
                "ceiling v={} d={d} n={} threads={t} median_ms={median:.4} min_ms={:.4} gbps={gbps:.1}",
                a.v, a.n, ms[0]
            );
        }
    }
}

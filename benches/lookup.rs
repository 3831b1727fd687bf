//! Lookup: our fast path (`Embedding::lookup_into` into a reused buffer, `lookup_vec` into a
//! fresh one) against `candle_nn::Embedding::forward`, f32 table, 16384 ids (uniform and Zipf),
//! cycled through 8 batches so that one batch's rows are not simply left in the cache.
//!
//! ```text
//! cargo bench -p candle-embed --bench lookup                     # V=1M, D=128 (quick)
//! CANDLE_EMBED_BENCH_FULL=1 cargo bench -p candle-embed --bench lookup   # V {50k,1M} x D {64,128,512}
//! cargo bench -p candle-embed --bench lookup -- 'V=1M/D=512'    # criterion filter
//! CANDLE_EMBED_BENCH_THREADS=1 cargo bench ...                   # our pool's size (default: all)
//! ```

use candle_core::{Device, Module, Tensor};
use candle_embed::{threads, Embedding, EmbeddingConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

const N_IDS: usize = 16384;
const N_BATCHES: usize = 8;

#[path = "../tests/common/mod.rs"]
mod common;
use common::Mix;

/// `N_BATCHES` batches of ids in `0..v`: uniform, or Zipf(1.1) over ranks scattered over the
/// table by a fixed permutation (the hot rows are not adjacent).
fn batches(v: usize, zipf: bool, rng: &mut Mix) -> Vec<Vec<u32>> {
    if !zipf {
        return (0..N_BATCHES)
            .map(|_| (0..N_IDS).map(|_| (rng.next() % v as u64) as u32).collect())
            .collect();
    }
    let mut cdf: Vec<f64> = (1..=v).map(|k| (k as f64).powf(-1.1)).collect();
    let mut acc = 0.0;
    for c in cdf.iter_mut() {
        acc += *c;
        *c = acc;
    }
    let mut perm: Vec<u32> = (0..v as u32).collect();
    for i in (1..v).rev() {
        perm.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    (0..N_BATCHES)
        .map(|_| {
            (0..N_IDS)
                .map(|_| {
                    let r = cdf.partition_point(|&c| c <= rng.unit() * acc).min(v - 1);
                    perm[r]
                })
                .collect()
        })
        .collect()
}

fn bench_lookup(c: &mut Criterion) {
    let full = std::env::var_os("CANDLE_EMBED_BENCH_FULL").is_some();
    if let Some(t) = std::env::var("CANDLE_EMBED_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        threads::set_num_threads(t).expect("thread count");
    }
    let grid: Vec<(usize, usize)> = if full {
        [50_000, 1_000_000]
            .into_iter()
            .flat_map(|v| [64, 128, 512].map(|d| (v, d)))
            .collect()
    } else {
        vec![(1_000_000, 128)]
    };
    let mut rng = Mix(42);
    for (v, d) in grid {
        let table: Vec<f32> = (0..v * d).map(|_| rng.unit() as f32 - 0.5).collect();
        let weight = Tensor::from_vec(table, (v, d), &Device::Cpu).unwrap();
        let ours = Embedding::from_pretrained(weight.clone(), EmbeddingConfig::default()).unwrap();
        let candle = candle_nn::Embedding::new(weight, d);
        let vname = if v >= 1_000_000 {
            format!("{}M", v / 1_000_000)
        } else {
            format!("{}k", v / 1000)
        };
        for zipf in [false, true] {
            let ids = batches(v, zipf, &mut rng);
            let id_tensors: Vec<Tensor> = ids
                .iter()
                .map(|b| Tensor::from_slice(b, N_IDS, &Device::Cpu).unwrap())
                .collect();
            // The fast path must agree with candle before it is timed.
            let want = candle
                .forward(&id_tensors[0])
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(ours.lookup_vec::<u32, f32>(&ids[0]).unwrap(), want);

            let dist = if zipf { "zipf" } else { "uniform" };
            let mut g = c.benchmark_group(format!("lookup/V={vname}/D={d}/{dist}"));
            g.sample_size(20)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(if d >= 512 { 2 } else { 1 }))
                .throughput(Throughput::Bytes((2 * N_IDS * d * 4) as u64));
            let mut buf = vec![0f32; N_IDS * d];
            let mut k = 0;
            g.bench_function(
                BenchmarkId::from_parameter("ours lookup_into (reused out)"),
                |b| {
                    b.iter(|| {
                        k += 1;
                        ours.lookup_into(&ids[k % N_BATCHES], &mut buf).unwrap();
                    })
                },
            );
            g.bench_function(
                BenchmarkId::from_parameter("ours lookup_vec (fresh)"),
                |b| {
                    b.iter(|| {
                        k += 1;
                        ours.lookup_vec::<u32, f32>(&ids[k % N_BATCHES]).unwrap()
                    })
                },
            );
            g.bench_function(
                BenchmarkId::from_parameter("candle_nn Embedding::forward"),
                |b| {
                    b.iter(|| {
                        k += 1;
                        candle.forward(&id_tensors[k % N_BATCHES]).unwrap()
                    })
                },
            );
            g.finish();
        }
    }
}

criterion_group!(benches, bench_lookup);
criterion_main!(benches);

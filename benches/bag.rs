//! EmbeddingBag sum/mean: our kernel against composing candle ops (`index_select` + `sum(1)`),
//! B = 4096 bags x 32 ids, D = 128, f32, uniform ids, V = 1M (table far larger than the L3)
//! and V = 50k.

use candle_core::{DType, Device, Tensor};
use candle_embed::{BagMode, EmbeddingBag, EmbeddingBagConfig};
use criterion::{criterion_group, criterion_main, Criterion};

mod common;

const BAGS: usize = 4096;
const PER: usize = 32;
const DIM: usize = 128;

fn bench(c: &mut Criterion) {
    for v in [1_000_000usize, 50_000] {
        let w = Tensor::randn(0f32, 1.0, (v, DIM), &Device::Cpu).unwrap();
        let ids = common::uniform_ids(BAGS * PER, v, 42);
        let idx = Tensor::from_vec(ids.clone(), BAGS * PER, &Device::Cpu).unwrap();
        let mut out = vec![0f32; BAGS * DIM];
        for mode in [BagMode::Sum, BagMode::Mean] {
            let cfg = EmbeddingBagConfig {
                mode,
                ..Default::default()
            };
            let bag = EmbeddingBag::from_pretrained(w.clone(), cfg).unwrap();
            let name = format!("{mode:?} V={v} {BAGS}x{PER} D={DIM}");
            let mut g = c.benchmark_group(name);
            g.sample_size(20);
            g.bench_function("candle-embed EmbeddingBag", |b| {
                b.iter(|| {
                    bag.forward_into::<u32, u32, f32>(&ids, &[BAGS, PER], None, None, &mut out)
                        .unwrap()
                })
            });
            g.bench_function("candle index_select + sum(1)", |b| {
                b.iter(|| {
                    let rows = w.index_select(&idx, 0).unwrap().reshape((BAGS, PER, DIM));
                    let r = match mode {
                        BagMode::Mean => rows.unwrap().mean(1),
                        _ => rows.unwrap().sum(1),
                    };
                    r.unwrap().to_dtype(DType::F32).unwrap()
                })
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

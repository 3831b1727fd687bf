//! Sparse backward, scatter-add and sparse optimizer steps on a 1M x 128 f32 table with
//! 16,384 ids, against candle's own ops (its embedding backward is zeros(V, D) + index_add).

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_embed::optim::{
    Adagrad, AdagradConfig, RowWiseAdagrad, RowWiseAdagradConfig, Sgd, SgdConfig, SparseAdam,
    SparseAdamConfig, SparseOptimizer,
};
use candle_embed::sparse::index_add_into;
use candle_embed::{Embedding, EmbeddingConfig};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const V: usize = 1_000_000;
const D: usize = 128;
const N: usize = 16_384;

fn ids_and_grad() -> (Vec<i64>, Vec<f32>) {
    let mut s = 7u64;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    };
    let ids = (0..N).map(|_| (next() % V as u64) as i64).collect();
    let g = (0..N * D).map(|i| (i % 97) as f32 * 0.01).collect();
    (ids, g)
}

fn table() -> Arc<Embedding> {
    let w = Tensor::zeros((V, D), DType::F32, &Device::Cpu).unwrap();
    let w = (w + 0.5).unwrap();
    Arc::new(
        Embedding::from_pretrained(
            w,
            EmbeddingConfig {
                freeze: false,
                ..Default::default()
            },
        )
        .unwrap(),
    )
}

fn backward(c: &mut Criterion) {
    let (ids, g) = ids_and_grad();
    let emb = table();
    let mut grp = c.benchmark_group("backward_1Mx128_16384");
    grp.sample_size(10);
    grp.bench_function("candle_embed backward+coalesce", |b| {
        b.iter(|| black_box(emb.backward(&ids, &g).unwrap()))
    });
    let idx = Tensor::from_vec(
        ids.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        N,
        &Device::Cpu,
    )
    .unwrap();
    let gt = Tensor::from_slice(&g, (N, D), &Device::Cpu).unwrap();
    grp.bench_function("candle dense backward (zeros + index_add)", |b| {
        b.iter(|| {
            let z = Tensor::zeros((V, D), DType::F32, &Device::Cpu).unwrap();
            black_box(z.index_add(&idx, &gt, 0).unwrap())
        })
    });
    grp.finish();

    let mut grp = c.benchmark_group("index_add_1Mx128_16384");
    grp.sample_size(10);
    let mut buf = vec![0f32; V * D];
    grp.bench_function("candle_embed index_add_into (reused buffer)", |b| {
        b.iter(|| index_add_into(&mut buf, D, &ids, &g).unwrap())
    });
    let dst = Tensor::zeros((V, D), DType::F32, &Device::Cpu).unwrap();
    grp.bench_function("candle index_add (copies dst)", |b| {
        b.iter(|| black_box(dst.index_add(&idx, &gt, 0).unwrap()))
    });
    grp.finish();
}

fn steps(c: &mut Criterion) {
    let (ids, g) = ids_and_grad();
    let mut grp = c.benchmark_group("optimizer_step_1Mx128_16384");
    grp.sample_size(20);
    type Make = fn(Arc<Embedding>) -> Box<dyn SparseOptimizer>;
    let makers: [(&str, Make); 5] = [
        ("SGD", |t| Box::new(Sgd::new(vec![t], SgdConfig::default()).unwrap())),
        ("SGD momentum", |t| {
            Box::new(Sgd::new(vec![t], SgdConfig { momentum: 0.9, ..Default::default() }).unwrap())
        }),
        ("Adagrad", |t| Box::new(Adagrad::new(vec![t], AdagradConfig::default()).unwrap())),
        ("RowWiseAdagrad", |t| {
            Box::new(RowWiseAdagrad::new(vec![t], RowWiseAdagradConfig::default()).unwrap())
        }),
        ("SparseAdam", |t| {
            Box::new(SparseAdam::new(vec![t], SparseAdamConfig::default()).unwrap())
        }),
    ];
    for (name, make) in makers {
        let emb = table();
        let grad = emb.backward(&ids, &g).unwrap();
        let mut opt = make(emb.clone());
        grp.bench_function(name, |b| b.iter(|| opt.step(&[Some(&grad)]).unwrap()));
        drop(opt);
    }
    grp.finish();
}

criterion_group!(benches, backward, steps);
criterion_main!(benches);

//! Positional encodings: the fast CPU kernels against the portable (candle ops) paths.

use candle_core::{DType, Device, Tensor};
use candle_embed::positional::alibi::{alibi_bias, alibi_bias_portable};
use candle_embed::positional::relative::{BucketConfig, RelativePositionBias};
use candle_embed::positional::sinusoidal::{
    sinusoidal_table, sinusoidal_table_portable, SinusoidalConfig, SinusoidalLayout,
    SinusoidalPositionalEncoding,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn sinusoidal(c: &mut Criterion) {
    let mut g = c.benchmark_group("sinusoidal_table_8192x512");
    g.throughput(Throughput::Bytes((8192 * 512 * 4) as u64));
    g.sample_size(20);
    for layout in [SinusoidalLayout::Interleaved, SinusoidalLayout::Concat] {
        g.bench_function(BenchmarkId::new("fast", layout.name()), |b| {
            b.iter(|| sinusoidal_table::<f32>(8192, 512, 10000.0, layout).unwrap())
        });
    }
    g.bench_function("portable_candle", |b| {
        b.iter(|| {
            sinusoidal_table_portable(
                8192,
                512,
                10000.0,
                SinusoidalLayout::Interleaved,
                DType::F32,
                &Device::Cpu,
            )
            .unwrap()
        })
    });
    g.finish();

    let cfg = SinusoidalConfig {
        max_len: 2048,
        ..Default::default()
    };
    let pe = SinusoidalPositionalEncoding::new(512, cfg, DType::F32, &Device::Cpu).unwrap();
    let x = Tensor::randn(0f32, 1.0, (8, 2048, 512), &Device::Cpu).unwrap();
    let xv = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut out = vec![0f32; xv.len()];
    let mut g = c.benchmark_group("sinusoidal_add_8x2048x512");
    g.throughput(Throughput::Bytes((xv.len() * 8) as u64));
    g.sample_size(20);
    g.bench_function("fast", |b| {
        b.iter(|| pe.add_into(&xv, &[8, 2048, 512], 0, &mut out).unwrap())
    });
    g.bench_function("portable_candle", |b| b.iter(|| pe.forward(&x, 0).unwrap()));
    g.finish();
}

fn biases(c: &mut Criterion) {
    let mut g = c.benchmark_group("alibi_bias_16x1024x1024");
    g.throughput(Throughput::Bytes((16 * 1024 * 1024 * 4) as u64));
    g.sample_size(20);
    g.bench_function("fast", |b| {
        b.iter(|| alibi_bias::<f32>(16, 1024, 1024, 0).unwrap())
    });
    g.bench_function("portable_candle", |b| {
        b.iter(|| alibi_bias_portable(16, 1024, 1024, 0, DType::F32, &Device::Cpu).unwrap())
    });
    g.finish();

    let r = RelativePositionBias::new(
        16,
        BucketConfig::default(),
        DType::F32,
        &Device::Cpu,
        Some(0),
    )
    .unwrap();
    let mut g = c.benchmark_group("t5_bias_16x1024x1024");
    g.throughput(Throughput::Bytes((16 * 1024 * 1024 * 4) as u64));
    g.sample_size(20);
    g.bench_function("fast", |b| b.iter(|| r.bias::<f32>(1024, 1024, 0).unwrap()));
    g.bench_function("portable_candle", |b| {
        b.iter(|| r.bias_portable(1024, 1024, 0).unwrap())
    });
    g.finish();
}

criterion_group!(benches, sinusoidal, biases);
criterion_main!(benches);

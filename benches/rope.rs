//! RoPE on q of shape (B, H, T, D) f32: our one-pass kernel (into a fresh tensor, and into a
//! reused buffer) vs candle-nn's fused `rope` / `rope_i` vs the composed candle ops
//! (narrow/mul/cat). Tables are precomputed for every contender.
//! Shape from the environment: ROPE_SHAPE="8,32,2048,128" (default 2,32,1024,128: 32 MiB).

use candle_core::{DType, Device, Tensor};
use candle_embed::positional::rotary::{Positions, RopeLayout, RotaryConfig, RotaryEmbedding};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn shape() -> Vec<usize> {
    std::env::var("ROPE_SHAPE")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|v| v.trim().parse().expect("ROPE_SHAPE"))
                .collect()
        })
        .unwrap_or_else(|| vec![2, 32, 1024, 128])
}

fn bench(c: &mut Criterion) {
    let shape = shape();
    let n: usize = shape.iter().product();
    let (t, d) = (shape[2], shape[3]);
    let x = Tensor::randn(0f32, 1.0, shape.as_slice(), &Device::Cpu).unwrap();
    let xv: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
    let pos = Positions::Range { offset: 0 };
    for layout in [RopeLayout::Half, RopeLayout::Interleaved] {
        let name = match layout {
            RopeLayout::Half => "half",
            RopeLayout::Interleaved => "interleaved",
        };
        let r = RotaryEmbedding::new(
            d,
            RotaryConfig {
                layout,
                ..RotaryConfig::default()
            },
        )
        .unwrap();
        let (cos, sin) = r.cos_sin(&pos, t).unwrap();
        let cos = Tensor::from_vec(cos, (t, d / 2), &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let sin = Tensor::from_vec(sin, (t, d / 2), &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let mut g = c.benchmark_group(format!("rope_{name}_{shape:?}"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes((2 * n * 4) as u64));
        let mut out = vec![0f32; n];
        g.bench_function("ours_into_buffer", |b| {
            b.iter(|| r.apply_into(&xv, &shape, &pos, &mut out, false).unwrap())
        });
        g.bench_function("ours_tensor", |b| {
            b.iter(|| black_box(r.forward(&x, &pos).unwrap()))
        });
        g.bench_function("candle_fused", |b| {
            b.iter(|| {
                black_box(match layout {
                    RopeLayout::Half => candle_nn::rotary_emb::rope(&x, &cos, &sin).unwrap(),
                    RopeLayout::Interleaved => {
                        candle_nn::rotary_emb::rope_i(&x, &cos, &sin).unwrap()
                    }
                })
            })
        });
        g.bench_function("candle_composed", |b| {
            b.iter(|| black_box(r.forward_portable(&x, &pos).unwrap()))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

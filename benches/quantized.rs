//! Quantized bag sums against the float32 bag on the same ids (issue #15's goal: int8 at least
//! 2x faster than f32; the FBGEMM comparison is `bench_quantized.py`'s, which needs PyTorch):
//! B = 4096 bags x 32 ids, D = 128, uniform ids, V = 1M (the f32 table, 512 MB, is far larger
//! than the L3; the f16 one is 256 MB, the int8 one 136 MB, the int4 one 68 MB).

use candle_core::{DType, Device, Tensor};
use candle_embed::quantized::{Bits, QuantizedEmbeddingBag};
use candle_embed::{BagMode, EmbeddingBag, EmbeddingBagConfig};
use criterion::{criterion_group, criterion_main, Criterion};

mod common;

const BAGS: usize = 4096;
const PER: usize = 32;
const DIM: usize = 128;
const VOCAB: usize = 1_000_000;

fn bench(c: &mut Criterion) {
    let w = Tensor::randn(0f32, 1.0, (VOCAB, DIM), &Device::Cpu).unwrap();
    let ids = common::uniform_ids(BAGS * PER, VOCAB, 7);
    let mut out = vec![0f32; BAGS * DIM];
    let cfg = EmbeddingBagConfig {
        mode: BagMode::Sum,
        ..Default::default()
    };
    let bag = EmbeddingBag::from_pretrained(w.clone(), cfg.clone()).unwrap();
    let mut g = c.benchmark_group(format!("Sum V={VOCAB} {BAGS}x{PER} D={DIM}"));
    g.sample_size(20);
    g.bench_function("f32 EmbeddingBag", |b| {
        b.iter(|| {
            bag.forward_into::<u32, u32, f32>(&ids, &[BAGS, PER], None, None, &mut out)
                .unwrap()
        })
    });
    // The f16 table reads half f32's bytes: it should be no slower (f16 output, as PyTorch's).
    let bag16 = EmbeddingBag::from_pretrained(w.to_dtype(DType::F16).unwrap(), cfg).unwrap();
    let mut out16 = vec![half::f16::ZERO; BAGS * DIM];
    g.bench_function("f16 EmbeddingBag", |b| {
        b.iter(|| {
            bag16
                .forward_into::<u32, u32, half::f16>(&ids, &[BAGS, PER], None, None, &mut out16)
                .unwrap()
        })
    });
    for bits in [Bits::Eight, Bits::Four] {
        let q: QuantizedEmbeddingBag = bag.quantize(bits).unwrap();
        g.bench_function(format!("{bits:?} QuantizedEmbeddingBag"), |b| {
            b.iter(|| {
                q.forward_into::<u32, u32, f32>(&ids, &[BAGS, PER], None, None, &mut out)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

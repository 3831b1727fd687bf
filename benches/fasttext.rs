//! fastText word vectors: 10 000 unseen words (n-grams 3..6, bucket = 200 000, D = 100): hashing
//! into bags, then the bag means through our EmbeddingBag kernel against the portable path
//! (candle `index_select` + `index_add`).

use candle_core::{Device, Tensor};
use candle_embed::fasttext::{bag_means_into, bag_means_portable, Subwords};
use criterion::{criterion_group, criterion_main, Criterion};

const WORDS: usize = 10_000;
const NWORDS: usize = 50_000;
const BUCKET: usize = 200_000;
const DIM: usize = 100;

fn words() -> Vec<Vec<u8>> {
    let mut s = 42u64;
    (0..WORDS)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 4 + (s >> 60) as usize;
            (0..len)
                .map(|k| b'a' + ((s >> (k * 4)) % 26) as u8)
                .collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let table = Tensor::randn(0f32, 1.0, (NWORDS + BUCKET, DIM), &Device::Cpu).unwrap();
    let flat: Vec<f32> = table.flatten_all().unwrap().to_vec1().unwrap();
    let sub = Subwords::new(3, 6, BUCKET).unwrap();
    let words = words();
    let items = || words.iter().map(|w| (None, w.as_slice()));
    let bags = sub.bags(items(), NWORDS).unwrap();
    let mut out = vec![0f32; WORDS * DIM];
    let mut g = c.benchmark_group(format!(
        "fastText {WORDS} unseen words, bucket={BUCKET} D={DIM}"
    ));
    g.sample_size(20);
    g.bench_function("hash n-grams into bags", |b| {
        b.iter(|| sub.bags(items(), NWORDS).unwrap())
    });
    g.bench_function("candle-embed bag means (kernel)", |b| {
        b.iter(|| bag_means_into(&flat, DIM, &bags, &mut out).unwrap())
    });
    g.bench_function("portable bag means (candle ops)", |b| {
        b.iter(|| bag_means_portable(&table, &bags).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

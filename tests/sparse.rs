//! Sparse kernels: fast path == portable path (candle ops), thread-count determinism,
//! property tests on coalesce, optimizer invariants.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_embed::optim::{
    Adagrad, AdagradConfig, RowWiseAdagrad, RowWiseAdagradConfig, Sgd, SgdConfig, SparseAdam,
    SparseAdamConfig, SparseOptimizer,
};
use candle_embed::sparse::{
    coalesce_portable, coalesce_rows, index_add_portable, index_add_to, CoalesceOptions,
};
use candle_embed::{threads, Embedding, EmbeddingConfig, Error, SparseGrad};
use proptest::prelude::*;

mod common;
use common::Host;

fn lcg(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    }
}

fn data(n: usize, v: usize, d: usize, seed: u64) -> (Vec<i64>, Vec<f32>) {
    let mut r = lcg(seed);
    let ids = (0..n).map(|_| (r() % v as u64) as i64).collect();
    let vals = (0..n * d)
        .map(|_| (r() % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    (ids, vals)
}

fn fast_vs_portable(n: usize, v: usize, d: usize, opts: CoalesceOptions) {
    let (ids, vals) = data(n, v, d, n as u64 + 7);
    let (u, s) = coalesce_rows(&ids, &vals, d, v, opts).unwrap();
    let t = Tensor::from_slice(&vals, (n, d), &Device::Cpu).unwrap();
    let p = coalesce_portable(&ids, &t, v, opts).unwrap();
    assert_eq!(u, p.indices());
    let ps: Vec<f32> = p.values().vec1();
    // Same summation order (ascending positions, f32 accumulator): exact.
    assert_eq!(s, ps);
}

#[test]
fn coalesce_fast_equals_portable() {
    for &(n, v) in &[(0, 5), (1, 5), (100, 7), (20_000, 50_000), (50_000, 300)] {
        fast_vs_portable(n, v, 9, CoalesceOptions::default());
        fast_vs_portable(
            n,
            v,
            9,
            CoalesceOptions {
                skip: Some(3),
                scale_by_count: true,
            },
        );
    }
}

#[test]
fn coalesce_half_precision_fast_equals_portable() {
    let (ids, vals) = data(30_000, 1000, 8, 3);
    let h: Vec<half::bf16> = vals.iter().map(|&x| half::bf16::from_f32(x)).collect();
    let (u, s) = coalesce_rows(&ids, &h, 8, 1000, CoalesceOptions::default()).unwrap();
    let t = Tensor::from_slice(&h, (30_000, 8), &Device::Cpu).unwrap();
    let p = coalesce_portable(&ids, &t, 1000, CoalesceOptions::default()).unwrap();
    assert_eq!(u, p.indices());
    let ps: Vec<half::bf16> = p.values().vec1();
    assert_eq!(s, ps); // both accumulate in f32 in the same order, then round once
}

#[test]
fn index_add_fast_equals_candle_bitwise() {
    for &(n, v, d) in &[(10, 4, 3), (40_000, 2000, 16), (40_000, 100_000, 8)] {
        let (ids, src) = data(n, v, d, 11);
        let (_, dst) = data(v, 1, d, 12);
        let mut out = vec![0f32; dst.len()];
        index_add_to(&dst, d, &ids, &src, &mut out).unwrap();
        let dt = Tensor::from_slice(&dst, (v, d), &Device::Cpu).unwrap();
        let st = Tensor::from_slice(&src, (n, d), &Device::Cpu).unwrap();
        let p: Vec<f32> = index_add_portable(&dt, &ids, &st).unwrap().vec1();
        assert_eq!(out, p);
    }
}

#[test]
fn kernels_bit_identical_for_any_thread_count() {
    let (ids, vals) = data(60_000, 5000, 32, 5);
    let opts = CoalesceOptions {
        skip: None,
        scale_by_count: true,
    };
    let mut results = Vec::new();
    for t in [1, 2, 3, 8] {
        threads::set_num_threads(t).unwrap();
        let c = coalesce_rows(&ids, &vals, 32, 5000, opts).unwrap();
        let mut dst = vec![0.5f32; 5000 * 32];
        candle_embed::sparse::index_add_into(&mut dst, 32, &ids, &vals).unwrap();
        results.push((c, dst));
    }
    threads::set_num_threads(2).unwrap();
    for r in &results[1..] {
        assert_eq!(r.0 .0, results[0].0 .0);
        assert_eq!(r.0 .1, results[0].0 .1);
        assert_eq!(r.1, results[0].1);
    }
}

#[test]
fn errors_are_typed_and_nothing_changes() {
    let mut dst = vec![1f32; 12];
    let e = index_add_to(&dst.clone(), 3, &[0i64, 4], &[0f32; 6], &mut dst).unwrap_err();
    assert!(
        matches!(
            e,
            Error::IndexOutOfRange {
                index: 4,
                size: 4,
                ..
            }
        ),
        "{e}"
    );
    let e = index_add_to(&dst.clone(), 3, &[0i64], &[0f32; 6], &mut dst).unwrap_err();
    assert!(matches!(e, Error::Shape(_)));
    assert_eq!(dst, vec![1f32; 12]);
    let e = coalesce_rows(&[-1i32], &[0f32; 2], 2, 5, CoalesceOptions::default()).unwrap_err();
    assert!(matches!(e, Error::IndexOutOfRange { index: -1, .. }));
    let e = coalesce_rows(&[1i32], &[0f32; 3], 2, 5, CoalesceOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Shape(_)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn coalesce_is_sorted_unique_and_sums(ids in proptest::collection::vec(0u32..50, 0..300),
                                         d in 1usize..5) {
        let vals: Vec<f64> = (0..ids.len() * d).map(|i| (i % 17) as f64 - 8.0).collect();
        let (u, s) = coalesce_rows(&ids, &vals, d, 50, CoalesceOptions::default()).unwrap();
        prop_assert!(u.windows(2).all(|w| w[0] < w[1]));
        let mut dense = vec![0f64; 50 * d];
        for (p, &i) in ids.iter().enumerate() {
            for j in 0..d { dense[i as usize * d + j] += vals[p * d + j]; }
        }
        let mut want_u: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        want_u.sort_unstable(); want_u.dedup();
        prop_assert_eq!(&u, &want_u);
        for (k, &r) in u.iter().enumerate() {
            prop_assert_eq!(&s[k * d..(k + 1) * d], &dense[r as usize * d..(r as usize + 1) * d]);
        }
    }
}

fn table(v: usize, d: usize) -> Arc<Embedding> {
    Arc::new(
        Embedding::new(
            v,
            d,
            EmbeddingConfig::default(),
            DType::F32,
            &Device::Cpu,
            Some(1),
        )
        .unwrap(),
    )
}

type MakeOpt = Box<dyn Fn(Arc<Embedding>) -> Box<dyn SparseOptimizer>>;

#[test]
fn optimizers_touch_only_grad_rows_and_validate_first() {
    let makers: Vec<MakeOpt> = vec![
        Box::new(|t| {
            Box::new(
                Sgd::new(
                    vec![t],
                    SgdConfig {
                        momentum: 0.9,
                        weight_decay: 0.1,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
        Box::new(|t| Box::new(Adagrad::new(vec![t], AdagradConfig::default()).unwrap())),
        Box::new(|t| {
            Box::new(RowWiseAdagrad::new(vec![t], RowWiseAdagradConfig::default()).unwrap())
        }),
        Box::new(|t| Box::new(SparseAdam::new(vec![t], SparseAdamConfig::default()).unwrap())),
    ];
    for make in makers {
        let t = table(20, 4);
        let before: Vec<f32> = t.weight().vec1();
        let mut opt = make(t.clone());
        let g = SparseGrad::new(
            vec![2, 5],
            Tensor::ones((2, 4), DType::F32, &Device::Cpu).unwrap(),
            20,
        )
        .unwrap();
        opt.step(&[Some(&g)]).unwrap();
        let after: Vec<f32> = t.weight().vec1();
        for r in 0..20 {
            let same = before[r * 4..r * 4 + 4] == after[r * 4..r * 4 + 4];
            assert_eq!(same, r != 2 && r != 5, "row {r}");
        }
        let bad = SparseGrad::new(
            vec![1],
            Tensor::ones((1, 3), DType::F32, &Device::Cpu).unwrap(),
            20,
        )
        .unwrap();
        let sd = opt.state_dict().unwrap();
        assert!(matches!(
            opt.step(&[Some(&bad)]).unwrap_err(),
            Error::Shape(_)
        ));
        let after2: Vec<f32> = t.weight().vec1();
        assert_eq!(after, after2);
        assert_eq!(opt.state_dict().unwrap().steps, sd.steps);
    }
    let frozen = Arc::new(
        Embedding::from_pretrained(
            Tensor::ones((3, 2), DType::F32, &Device::Cpu).unwrap(),
            EmbeddingConfig {
                freeze: true,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    assert!(matches!(
        Sgd::new(vec![frozen], SgdConfig::default()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn backward_tensor_matches_portable() {
    let emb = Embedding::new(
        300,
        6,
        EmbeddingConfig {
            padding_idx: Some(4),
            scale_grad_by_freq: true,
            ..Default::default()
        },
        DType::F32,
        &Device::Cpu,
        Some(3),
    )
    .unwrap();
    let (ids, vals) = data(5000, 300, 6, 21);
    let g = Tensor::from_slice(&vals, (50, 100, 6), &Device::Cpu).unwrap();
    let fast = emb.backward_tensor(&ids, &g).unwrap();
    let port = emb
        .backward_portable(&ids, &g.reshape((5000, 6)).unwrap())
        .unwrap();
    assert_eq!(fast.indices(), port.indices());
    assert!(!fast.indices().contains(&4));
    let a: Vec<f32> = fast.values().vec1();
    let b: Vec<f32> = port.values().vec1();
    assert_eq!(a, b);
}

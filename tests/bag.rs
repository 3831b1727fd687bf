//! EmbeddingBag: fast kernel == portable path, reference sums, errors, determinism.

use candle_core::{Device, Tensor};
use candle_embed::{BagMode, EmbeddingBag, EmbeddingBagConfig, Error};

mod common;
use common::Host;

fn table(v: usize, d: usize) -> Tensor {
    let vals: Vec<f32> = (0..v * d)
        .map(|k| ((k * 7919 % 1009) as f32 - 504.0) / 97.0)
        .collect();
    Tensor::from_vec(vals, (v, d), &Device::Cpu).unwrap()
}

fn bag(mode: BagMode, padding: Option<i64>, w: Tensor) -> EmbeddingBag {
    let cfg = EmbeddingBagConfig {
        mode,
        padding_idx: padding,
        ..Default::default()
    };
    EmbeddingBag::from_pretrained(w, cfg).unwrap()
}

/// Deterministic pseudo-random ids and sorted offsets (some empty bags).
fn data(n: usize, v: usize, bags: usize) -> (Vec<i64>, Vec<i64>) {
    let mut s = 12345u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    let ids = (0..n).map(|_| (next() % v) as i64).collect();
    let mut off: Vec<i64> = (0..bags).map(|_| (next() % n) as i64).collect();
    off.sort_unstable();
    off[0] = 0;
    (ids, off)
}

#[test]
fn fast_equals_portable_every_mode() {
    let w = table(500, 150);
    let (ids, off) = data(4000, 500, 300);
    for mode in [BagMode::Sum, BagMode::Mean, BagMode::Max] {
        for pad in [None, Some(3)] {
            let b = bag(mode, pad, w.clone());
            let fast: Vec<f32> = b
                .forward_vec::<i64, i64, f32>(&ids, &[ids.len()], Some(&off), None)
                .unwrap();
            let port = b
                .forward_portable::<i64, i64, f32>(&ids, &[ids.len()], Some(&off), None)
                .unwrap()
                .vec1::<f32>();
            assert_eq!(fast.len(), 300 * 150);
            for (a, p) in fast.iter().zip(&port) {
                // Same summation order; mean multiplies by 1/count where candle divides.
                assert!(
                    (a - p).abs() <= 1e-5 * (1.0 + p.abs()),
                    "{mode:?}: {a} vs {p}"
                );
            }
            if mode != BagMode::Mean {
                assert_eq!(fast, port, "{mode:?} should be bit-identical");
            }
        }
    }
}

#[test]
fn sum_matches_f64_reference_with_weights() {
    let w = table(50, 9);
    let wv = w.to_vec2::<f32>().unwrap();
    let ids: Vec<u16> = vec![3, 4, 4, 10, 49, 0, 7];
    let off: Vec<u8> = vec![0, 2, 2, 7];
    let psw: Vec<f32> = vec![0.5, -1.0, 2.0, 0.25, 1.0, 3.0, -0.5];
    let cfg = EmbeddingBagConfig {
        mode: BagMode::Sum,
        include_last_offset: true,
        ..Default::default()
    };
    let b = EmbeddingBag::from_pretrained(w, cfg).unwrap();
    let y = b
        .forward_vec::<u16, u8, f32>(&ids, &[7], Some(&off), Some(&psw))
        .unwrap();
    let bounds = [(0, 2), (2, 2), (2, 7)];
    for (bi, &(lo, hi)) in bounds.iter().enumerate() {
        for j in 0..9 {
            let want: f64 = (lo..hi)
                .map(|k| psw[k] as f64 * wv[ids[k] as usize][j] as f64)
                .sum();
            assert!((y[bi * 9 + j] as f64 - want).abs() < 1e-5);
        }
    }
}

#[test]
fn errors_by_kind_and_nothing_modified() {
    let w = table(10, 4);
    let cfg = EmbeddingBagConfig {
        mode: BagMode::Sum,
        max_norm: Some(0.5),
        ..Default::default()
    };
    let b = EmbeddingBag::from_pretrained(w.copy().unwrap(), cfg).unwrap();
    let before = b.weight().to_vec2::<f32>().unwrap();
    let ids = [1i64, 2, 3];
    let f = |ids: &[i64], shape: &[usize], off: Option<&[i64]>| {
        b.forward_vec::<i64, i64, f32>(ids, shape, off, None)
            .unwrap_err()
    };
    assert!(matches!(
        f(&ids, &[3], Some(&[0, 2, 1])),
        Error::InvalidArgument(_)
    ));
    assert!(matches!(
        f(&ids, &[3], Some(&[1])),
        Error::InvalidArgument(_)
    ));
    assert!(matches!(
        f(&ids, &[3], Some(&[0, 4])),
        Error::InvalidArgument(_)
    ));
    assert!(matches!(f(&ids, &[3], None), Error::InvalidArgument(_)));
    assert!(matches!(
        f(&ids, &[1, 3], Some(&[0])),
        Error::InvalidArgument(_)
    ));
    assert!(matches!(f(&ids, &[1, 1, 3], None), Error::Shape(_)));
    assert!(matches!(
        f(&[1, 10, 2], &[3], Some(&[0])),
        Error::IndexOutOfRange { index: 10, .. }
    ));
    let mean = bag(BagMode::Mean, None, w);
    assert!(matches!(
        mean.forward_vec::<i64, i64, f32>(&ids, &[3], Some(&[0]), Some(&[1.0; 3]))
            .unwrap_err(),
        Error::InvalidArgument(_)
    ));
    assert_eq!(b.weight().to_vec2::<f32>().unwrap(), before);
}

#[test]
fn deterministic_across_thread_counts() {
    let w = table(2000, 64);
    let (ids, off) = data(50_000, 2000, 1000);
    let b = bag(BagMode::Sum, Some(5), w);
    let g: Vec<f32> = (0..1000 * 64).map(|k| (k % 13) as f32 - 6.0).collect();
    let mut runs = Vec::new();
    for n in [1, 2, 5] {
        candle_embed::threads::set_num_threads(n).unwrap();
        let y: Vec<f32> = b
            .forward_vec::<i64, i64, f32>(&ids, &[ids.len()], Some(&off), None)
            .unwrap();
        let sg = b
            .backward::<i64, i64, f32>(&ids, &[ids.len()], Some(&off), &g, None)
            .unwrap();
        runs.push((
            y,
            sg.indices().to_vec(),
            sg.values().to_vec2::<f32>().unwrap(),
        ));
    }
    for r in &runs[1..] {
        assert_eq!(r, &runs[0]);
    }
}

#[test]
fn backward_sum_is_dense_reference() {
    let w = table(8, 3);
    let b = bag(BagMode::Sum, Some(0), w);
    let ids: Vec<i32> = vec![1, 0, 1, 5, 7, 1];
    let g: Vec<f64> = vec![1.0, 2.0, 3.0, 10.0, 20.0, 30.0];
    let sg = b
        .backward::<i32, i32, f64>(&ids, &[2, 3], None, &g, None)
        .unwrap();
    assert_eq!(sg.indices(), &[1, 5, 7]);
    let v = sg.values().vec2::<f64>();
    assert_eq!(v[0], vec![2.0 + 10.0, 4.0 + 20.0, 6.0 + 30.0]);
    assert_eq!(v[1], vec![10.0, 20.0, 30.0]);
    assert_eq!(v[2], vec![10.0, 20.0, 30.0]);
}

#[test]
fn backward_max_routes_each_column_to_first_argmax() {
    let w = Tensor::from_vec(
        vec![1f32, 5.0, 1.0, 2.0, 3.0, 5.0, 0.0, 0.0],
        (4, 2),
        &Device::Cpu,
    )
    .unwrap();
    let b = bag(BagMode::Max, None, w);
    let ids = [1i64, 0, 2, 1];
    let sg = b
        .backward::<i64, i64, f32>(&ids, &[1, 4], None, &[10.0, 20.0], None)
        .unwrap();
    assert_eq!(sg.indices(), &[0, 1, 2]);
    let v = sg.values().to_vec2::<f32>().unwrap();
    assert_eq!(v, vec![vec![0.0, 20.0], vec![0.0, 0.0], vec![10.0, 0.0]]);
}

#[test]
fn per_sample_weight_gradient_is_row_dot_grad() {
    let w = table(6, 3);
    let wv = w.to_vec2::<f32>().unwrap();
    let b = bag(BagMode::Sum, Some(2), w);
    let ids = [1i64, 2, 5, 4];
    let g = [1.0f32, -2.0, 0.5, 3.0, 0.0, 1.0];
    let d = b
        .backward_per_sample_weights::<i64, i64, f32>(&ids, &[4], Some(&[0, 2]), &g)
        .unwrap();
    let dot = |r: usize, gb: &[f32]| -> f64 {
        wv[r]
            .iter()
            .zip(gb)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum()
    };
    assert_eq!(d[1], 0.0);
    assert!((d[0] - dot(1, &g[..3])).abs() < 1e-9);
    assert!((d[2] - dot(5, &g[3..])).abs() < 1e-9);
    assert!((d[3] - dot(4, &g[3..])).abs() < 1e-9);
}

//! Techniques: the fast paths (gemm attend, fused transformed gather, per-row dot products)
//! against their portable candle-op references, and the error variants.

use candle_core::{DType, Device, Tensor};
use candle_embed::techniques::attend::Targets;
use candle_embed::techniques::RowTransform;
use candle_embed::{Embedding, EmbeddingConfig, Error};

mod common;
use common::{max_abs_diff, Host};

fn table(v: usize, d: usize, dtype: DType) -> Embedding {
    Embedding::new(
        v,
        d,
        EmbeddingConfig::default(),
        dtype,
        &Device::Cpu,
        Some(7),
    )
    .unwrap()
}

fn xs(n: usize, d: usize) -> Vec<f32> {
    (0..n * d)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect()
}

#[test]
fn attend_fast_equals_portable() {
    let (v, d, n) = (700, 40, 90);
    let emb = table(v, d, DType::F32);
    let x = xs(n, d);
    let xt = Tensor::from_slice(&x, (n, d), &Device::Cpu).unwrap();
    let shared: Vec<u32> = (0..50).map(|i| (i * 131 % v) as u32).collect();
    let per_row: Vec<i64> = (0..n * 6).map(|i| (i * 17 % v) as i64).collect();
    let cases: [(Targets<'_, i64>, usize); 1] = [(Targets::All, v)];
    for (t, cols) in cases {
        let mut out = vec![0f32; n * cols];
        emb.attend_into(&x, n, t, &mut out).unwrap();
        let p = emb.attend_portable(&xt, t).unwrap();
        let p = p.vec1::<f32>();
        assert!(max_abs_diff(&out, &p) < 1e-4);
    }
    let mut out = vec![0f32; n * shared.len()];
    emb.attend_into(&x, n, Targets::Shared(&shared), &mut out)
        .unwrap();
    let p = emb.attend_portable(&xt, Targets::Shared(&shared)).unwrap();
    assert!(max_abs_diff(&out, &p.vec1()) < 1e-4);
    let mut out = vec![0f32; n * 6];
    emb.attend_into(&x, n, Targets::PerRow(&per_row, 6), &mut out)
        .unwrap();
    let p = emb
        .attend_portable(&xt, Targets::PerRow(&per_row, 6))
        .unwrap();
    assert!(max_abs_diff(&out, &p.vec1()) < 1e-4);
}

#[test]
fn attend_backward_fast_equals_portable() {
    let (v, d, n, k) = (300, 24, 33, 5);
    let emb = table(v, d, DType::F32);
    let x = xs(n, d);
    let xt = Tensor::from_slice(&x, (n, d), &Device::Cpu).unwrap();
    let ids: Vec<i32> = (0..n * k).map(|i| (i * 7 % 40) as i32).collect(); // many duplicates
    for (t, cols) in [
        (Targets::All, v),
        (Targets::Shared(&ids[..k * 3]), k * 3),
        (Targets::PerRow(&ids, k), k),
    ] {
        let g: Vec<f32> = (0..n * cols)
            .map(|i| ((i % 13) as f32 - 6.0) / 7.0)
            .collect();
        let gt = Tensor::from_slice(&g, (n, cols), &Device::Cpu).unwrap();
        let mut gx = vec![0f32; n * d];
        let gw = emb.attend_backward_into(&x, n, &g, t, &mut gx).unwrap();
        let (pgx, pgw) = emb.attend_backward_portable(&xt, &gt, t).unwrap();
        assert!(max_abs_diff(&gx, &pgx.vec1()) < 1e-3);
        assert_eq!(gw.indices(), pgw.indices());
        let a = gw.values().vec1::<f32>();
        let b = pgw.values().vec1::<f32>();
        assert!(max_abs_diff(&a, &b) < 1e-3);
        assert!(gw.indices().windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn attend_errors() {
    let emb = table(10, 4, DType::F64);
    let x = vec![0f64; 8];
    let mut out = vec![0f64; 20];
    let bad = [3i64, 10];
    assert!(matches!(
        emb.attend_into(&x, 2, Targets::Shared(&bad), &mut out[..4]),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        emb.attend_into(&x, 3, Targets::<i64>::All, &mut out),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        emb.attend_into(&x, 2, Targets::<i64>::All, &mut out[..19]),
        Err(Error::Shape(_))
    ));
    let ids = [1i64, 2, 3];
    assert!(matches!(
        emb.attend_into(&x, 2, Targets::PerRow(&ids, 2), &mut out[..4]),
        Err(Error::Shape(_))
    ));
}

#[test]
fn attend_bf16_table_uses_portable_path() {
    let emb = table(50, 8, DType::BF16);
    let x = xs(3, 8);
    let mut out = vec![0f32; 150];
    emb.attend_into(&x, 3, Targets::<i64>::All, &mut out)
        .unwrap();
    let w = emb.weight().vec2::<f32>();
    let want: f32 = (0..8).map(|j| x[8 + j] * w[17][j]).sum();
    assert!((out[50 + 17] - want).abs() < 1e-3);
}

#[test]
fn transformed_lookup_fast_equals_portable() {
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let emb = table(500, 33, dtype);
        let ids: Vec<u32> = (0..4000).map(|i| (i * 7919 % 500) as u32).collect();
        for t in [
            RowTransform::new(0.3, Some(5), false).unwrap(),
            RowTransform::new(0.0, None, true).unwrap(),
            RowTransform::new(0.6, Some(1), true).unwrap(),
        ] {
            let mut fast = vec![0f32; ids.len() * 33];
            emb.lookup_transformed_into(&ids, &mut fast, &t).unwrap();
            let p = emb
                .lookup_transformed_portable(&ids, &[ids.len()], &t)
                .unwrap()
                .vec1::<f32>();
            // The fast path rounds once to f32 (bf16 tables give f32 rows); the portable path
            // returns the table's dtype, so a bf16 row carries bf16 rounding (2^-8 relative).
            let tol = match dtype {
                DType::F32 | DType::F64 => 1e-6,
                DType::F16 => 1e-2,
                _ => 5e-2,
            };
            assert!(max_abs_diff(&fast, &p) <= tol, "{dtype:?} {t:?}");
        }
    }
}

#[test]
fn transforms_validate() {
    assert!(matches!(
        RowTransform::new(1.0, Some(0), false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        RowTransform::new(-0.5, Some(0), false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        RowTransform::for_backward(0.5, None, false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(RowTransform::new(0.0, None, false).unwrap().is_identity());
    let emb = table(10, 3, DType::F32);
    let t = RowTransform::new(0.0, None, true).unwrap();
    let mut out = vec![0f32; 6];
    assert!(matches!(
        emb.lookup_transformed_into(&[1i64, 10], &mut out, &t),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        emb.transform_grad(&[1i64], &[0f32; 2], &t),
        Err(Error::Shape(_))
    ));
}

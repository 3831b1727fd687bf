//! Positional encodings: fast paths against the portable (candle ops) paths, reference values
//! from reference/semantics.md §3, and every error variant.

use candle_core::{DType, Device, Tensor};
use candle_embed::positional::alibi::{alibi_bias, alibi_bias_portable, alibi_slopes};
use candle_embed::positional::combined::{
    position_ids_from_padding, TransformerEmbeddings, TransformerEmbeddingsConfig,
};
use candle_embed::positional::learned::LearnedPositionalEmbedding;
use candle_embed::positional::relative::{
    relative_position_bucket, BucketConfig, RelativePositionBias,
};
use candle_embed::positional::sinusoidal::{
    sinusoidal_table, sinusoidal_table_portable, SinusoidalConfig, SinusoidalLayout,
    SinusoidalPositionalEncoding,
};
use candle_embed::Error;

mod common;
use common::{max_abs_diff, Host};

#[test]
fn sinusoidal_fast_matches_portable_and_reference() {
    for layout in [SinusoidalLayout::Interleaved, SinusoidalLayout::Concat] {
        for (len, dim) in [(1, 2), (33, 6), (1000, 64)] {
            let fast = sinusoidal_table::<f64>(len, dim, 10000.0, layout).unwrap();
            let port =
                sinusoidal_table_portable(len, dim, 10000.0, layout, DType::F64, &Device::Cpu)
                    .unwrap()
                    .vec1::<f64>();
            assert!(max_abs_diff(&fast, &port) < 1e-12, "{layout:?} {len}x{dim}");
        }
    }
    let t = sinusoidal_table::<f64>(2, 4, 10000.0, SinusoidalLayout::Interleaved).unwrap();
    let want = [0.841471, 0.540302, 0.0099998, 0.99995];
    assert!(max_abs_diff(&t[4..], &want) < 1e-6);
}

/// tensor2tensor (M2M100): fast == portable for even, odd and tiny dims; the semantics.md
/// test vector; the odd dim's zero column.
#[test]
fn tensor2tensor_fast_matches_portable_and_reference() {
    let layout = SinusoidalLayout::Tensor2Tensor;
    for (len, dim) in [(1, 1), (7, 2), (7, 3), (33, 6), (40, 9), (1000, 64)] {
        let fast = sinusoidal_table::<f64>(len, dim, 10000.0, layout).unwrap();
        let port = sinusoidal_table_portable(len, dim, 10000.0, layout, DType::F64, &Device::Cpu)
            .unwrap()
            .vec1::<f64>();
        assert!(max_abs_diff(&fast, &port) < 1e-12, "{len}x{dim}");
        if dim % 2 == 1 {
            assert!(fast.chunks(dim).all(|row| row[dim - 1] == 0.0));
        }
    }
    let t = sinusoidal_table::<f64>(2, 4, 10000.0, layout).unwrap();
    assert!(max_abs_diff(&t[4..], &[0.841471, 1.0e-4, 0.540302, 0.99999999]) < 1e-6);
    assert!(matches!(
        sinusoidal_table::<f64>(2, 0, 10000.0, layout),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn sinusoidal_forward_paths_agree_and_errors() {
    let cfg = SinusoidalConfig {
        max_len: 16,
        ..Default::default()
    };
    let pe = SinusoidalPositionalEncoding::new(8, cfg, DType::F32, &Device::Cpu).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 5, 8), &Device::Cpu).unwrap();
    let xv = x.vec1::<f32>();
    let mut out = vec![0f32; xv.len()];
    pe.add_into(&xv, &[2, 5, 8], 3, &mut out).unwrap();
    let port = pe.forward(&x, 3).unwrap().vec1::<f32>();
    assert_eq!(out, port);
    assert!(matches!(
        pe.add_into(&xv, &[2, 5, 8], 12, &mut out),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        pe.add_into(&xv, &[2, 5, 8], -1, &mut out),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        pe.add_into(&xv, &[2, 8, 5], 0, &mut out),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        SinusoidalPositionalEncoding::new(7, cfg, DType::F32, &Device::Cpu),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        SinusoidalLayout::parse("x"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn learned_backward_sums_leading_dims() {
    let l = LearnedPositionalEmbedding::new(10, 3, DType::F64, &Device::Cpu, Some(1)).unwrap();
    let g: Vec<f64> = (0..2 * 4 * 3).map(|v| v as f64).collect();
    let sg = l.backward(&g, &[2, 4, 3], 5).unwrap();
    assert_eq!(sg.indices(), &[5, 6, 7, 8]);
    let v = sg.values().to_vec2::<f64>().unwrap();
    assert_eq!(v[0], vec![0.0 + 12.0, 1.0 + 13.0, 2.0 + 14.0]);
    assert!(matches!(
        l.backward(&g, &[2, 4, 3], 7),
        Err(Error::IndexOutOfRange { .. })
    ));
}

#[test]
fn alibi_slopes_and_paths() {
    let s8 = alibi_slopes(8).unwrap();
    assert_eq!(s8, (1..=8).map(|k| 0.5f64.powi(k)).collect::<Vec<_>>());
    let s12 = alibi_slopes(12).unwrap();
    assert_eq!(&s12[..8], &s8[..]);
    for (k, e) in [0.5, 1.5, 2.5, 3.5].iter().enumerate() {
        assert!((s12[8 + k] - 2f64.powf(-e)).abs() < 1e-15);
    }
    let fast = alibi_bias::<f32>(12, 7, 9, 2).unwrap();
    let port = alibi_bias_portable(12, 7, 9, 2, DType::F32, &Device::Cpu)
        .unwrap()
        .vec1::<f32>();
    assert_eq!(fast, port);
    assert!(matches!(alibi_slopes(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        alibi_bias::<f32>(4, 2, 2, -1),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn t5_bucket_reference_table() {
    let rel: Vec<i64> = vec![0, -1, 1, -8, -15, -32, -64, -127, -1000, 20, 200];
    let bi = relative_position_bucket(&rel, &BucketConfig::default()).unwrap();
    assert_eq!(bi, vec![0, 1, 17, 8, 9, 12, 14, 15, 15, 26, 31]);
    let uni_cfg = BucketConfig {
        bidirectional: false,
        ..Default::default()
    };
    let uni = relative_position_bucket(&rel, &uni_cfg).unwrap();
    assert_eq!(uni, vec![0, 1, 0, 8, 15, 21, 26, 31, 31, 0, 0]);
    let bad = BucketConfig {
        num_buckets: 2,
        ..Default::default()
    };
    assert!(matches!(
        relative_position_bucket(&rel, &bad),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn relative_bias_fast_matches_portable_and_backward() {
    let r = RelativePositionBias::new(
        3,
        BucketConfig::default(),
        DType::F32,
        &Device::Cpu,
        Some(4),
    )
    .unwrap();
    for (q, k, off) in [(5, 7, 0), (40, 3, 2), (1, 1, 0)] {
        let fast = r.bias::<f32>(q, k, off).unwrap();
        let port = r.bias_portable(q, k, off).unwrap().vec1::<f32>();
        assert_eq!(fast, port);
    }
    // backward of an all-ones grad counts cells per bucket
    let (q, k) = (4, 4);
    let g = vec![1f32; 3 * q * k];
    let sg = r.backward(&g, q, k, 0).unwrap();
    let dense = sg.to_dense().unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(dense[0], vec![4.0; 3]); // diagonal rel = 0
    assert_eq!(dense[17], vec![3.0; 3]); // rel = +1
    let total: f32 = dense.iter().map(|row| row[0]).sum();
    assert_eq!(total, 16.0);
    assert!(matches!(r.backward(&g[1..], q, k, 0), Err(Error::Shape(_))));
}

#[test]
fn transformer_embeddings_backward_matches_finite_differences() {
    let cfg = TransformerEmbeddingsConfig {
        max_positions: 8,
        layer_norm_eps: 1e-5,
        ..Default::default()
    };
    let te = TransformerEmbeddings::new(11, 5, cfg, DType::F64, &Device::Cpu, Some(3)).unwrap();
    let ids: Vec<i64> = vec![1, 4, 4, 9, 0, 2];
    let tts: Vec<i64> = vec![0, 0, 1, 1, 0, 1];
    let grad: Vec<f64> = (0..30)
        .map(|v| ((v * 7) % 11) as f64 / 11.0 - 0.4)
        .collect();
    let loss = |te: &TransformerEmbeddings| -> f64 {
        let y = te
            .forward::<i64, f64>(&ids, &[2, 3], Some(&tts), None)
            .unwrap();
        y.iter().zip(&grad).map(|(a, b)| a * b).sum()
    };
    loss(&te);
    let g = te.backward(&grad, &[2, 3, 5]).unwrap();
    let dense = g.token.to_dense().unwrap().to_vec2::<f64>().unwrap();
    let w = te.token().weight();
    let h = 1e-6;
    for (r, c) in [(4usize, 2usize), (9, 0), (1, 4)] {
        let mut wv = w.to_vec2::<f64>().unwrap();
        wv[r][c] += h;
        te.token()
            .set_weight(&Tensor::new(wv.clone(), &Device::Cpu).unwrap())
            .unwrap();
        let lp = loss(&te);
        wv[r][c] -= 2.0 * h;
        te.token()
            .set_weight(&Tensor::new(wv, &Device::Cpu).unwrap())
            .unwrap();
        let lm = loss(&te);
        te.token().set_weight(&w).unwrap();
        assert!(((lp - lm) / (2.0 * h) - dense[r][c]).abs() < 1e-6);
    }
    assert!(matches!(
        te.forward::<i64, f64>(&[11], &[1], None, None),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        te.backward(&grad, &[2, 3, 4]),
        Err(Error::Shape(_))
    ));
    let p = position_ids_from_padding(&[5i64, 1, 6, 7, 1, 1], 3, 1, 0).unwrap();
    assert_eq!(p, vec![2, 1, 3, 2, 1, 1]);
}

//! RotaryEmbedding: fast kernel == portable == candle-nn fused, candle autograd through the
//! CustomOp, scaling parsing and errors.

use candle_core::{DType, Device, Tensor, Var};
use candle_embed::positional::rotary::{
    Positions, RopeLayout, RopeScaling, RotaryConfig, RotaryEmbedding,
};
use candle_embed::Error;
use proptest::prelude::*;
use serde_json::json;

mod common;
use common::Host;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

fn rope(
    head_dim: usize,
    partial: f64,
    layout: RopeLayout,
    scaling: serde_json::Value,
) -> RotaryEmbedding {
    let cfg = RotaryConfig {
        partial_rotary_factor: partial,
        layout,
        ..RotaryConfig::default()
    }
    .with_rope_parameters(&scaling)
    .unwrap();
    RotaryEmbedding::new(head_dim, cfg).unwrap()
}

fn randn(shape: &[usize], dtype: DType) -> Tensor {
    Tensor::randn(0f32, 1.0, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

#[test]
fn fast_equals_portable_and_fused() {
    for layout in [RopeLayout::Half, RopeLayout::Interleaved] {
        for partial in [1.0, 0.5] {
            let r = rope(
                64,
                partial,
                layout,
                json!({"rope_type": "yarn", "factor": 4.0}),
            );
            for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
                let x = randn(&[2, 3, 37, 64], dtype);
                for pos in [
                    Positions::Range { offset: 0 },
                    Positions::Range { offset: 1000 },
                    Positions::Shared((0..37).map(|i| i * 3).collect()),
                    Positions::PerBatch {
                        batches: 2,
                        positions: (0..74).map(|i| (i * 7) % 500).collect(),
                    },
                ] {
                    let fast = r.forward(&x, &pos).unwrap();
                    let port = r.forward_portable(&x, &pos).unwrap();
                    let fused = r.forward_fused(&x, &pos).unwrap();
                    // f16/bf16: the kernel computes in f32, candle's ops in the 16-bit type.
                    let tol = match dtype {
                        DType::F64 => 1e-14,
                        DType::F32 => 1e-6,
                        DType::F16 => 1e-2,
                        _ => 6e-2,
                    };
                    assert!(
                        max_abs_diff(&fast, &port) <= tol,
                        "{layout:?} {dtype:?} {pos:?}"
                    );
                    assert!(
                        max_abs_diff(&fast, &fused) <= tol,
                        "{layout:?} {dtype:?} fused"
                    );
                    let b = r.backward(&x, &pos).unwrap();
                    let bp = r.backward_portable(&x, &pos).unwrap();
                    assert!(max_abs_diff(&b, &bp) <= tol);
                }
            }
        }
    }
}

#[test]
fn autograd_flows_through_the_custom_op() {
    for layout in [RopeLayout::Half, RopeLayout::Interleaved] {
        let r = rope(
            16,
            0.5,
            layout,
            json!({"rope_type": "linear", "factor": 2.0}),
        );
        let pos = Positions::Range { offset: 3 };
        let x = Var::from_tensor(&randn(&[2, 5, 16], DType::F64)).unwrap();
        let g = randn(&[2, 5, 16], DType::F64);
        let loss = (r.forward(x.as_tensor(), &pos).unwrap() * &g)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let gx = grads.get(x.as_tensor()).unwrap();
        // the explicit transposed rotation
        let want = r.backward(&g, &pos).unwrap();
        assert!(max_abs_diff(gx, &want) < 1e-14);
        // and the portable path's autograd (candle's own ops)
        let x2 = Var::from_tensor(x.as_tensor()).unwrap();
        let loss2 = (r.forward_portable(x2.as_tensor(), &pos).unwrap() * &g)
            .unwrap()
            .sum_all()
            .unwrap();
        let g2 = loss2.backward().unwrap();
        assert!(max_abs_diff(g2.get(x2.as_tensor()).unwrap(), gx) < 1e-14);
        // finite differences on a few coordinates
        let xv: Vec<f64> = x.as_tensor().vec1();
        let gxv: Vec<f64> = gx.vec1();
        let f = |v: &[f64]| -> f64 {
            let t = Tensor::from_slice(v, (2, 5, 16), &Device::Cpu).unwrap();
            (r.forward(&t, &pos).unwrap() * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        for k in [0usize, 3, 7, 8, 15, 40, 159] {
            let (mut p, mut m) = (xv.clone(), xv.clone());
            p[k] += 1e-6;
            m[k] -= 1e-6;
            let num = (f(&p) - f(&m)) / 2e-6;
            assert!((num - gxv[k]).abs() < 1e-6, "k={k}: {num} vs {}", gxv[k]);
        }
    }
}

#[test]
fn backward_of_forward_is_attention_scaling_squared() {
    let r = rope(
        32,
        1.0,
        RopeLayout::Interleaved,
        json!({"rope_type": "yarn", "factor": 8.0}),
    );
    let s2 = r.attention_scaling().powi(2);
    assert!(s2 > 1.0);
    let x = randn(&[3, 2, 19, 32], DType::F64);
    let pos = Positions::Range { offset: 11 };
    let back = r.backward(&r.forward(&x, &pos).unwrap(), &pos).unwrap();
    assert!(max_abs_diff(&back, &(x * s2).unwrap()) < 1e-12);
}

#[test]
fn scaling_parse_errors() {
    let bad = |v: serde_json::Value| {
        RopeScaling::Default.clone() == RopeScaling::Default
            && RotaryConfig::default().with_rope_parameters(&v).is_err()
    };
    assert!(bad(json!({"rope_type": "nope"})));
    assert!(matches!(
        RotaryConfig::default().with_rope_parameters(&json!({"rope_type": "linear"})),
        Err(Error::InvalidArgument(m)) if m.contains("factor")
    ));
    assert!(matches!(
        RotaryConfig::default().with_rope_parameters(&json!({"type": "linear", "factor": "x"})),
        Err(Error::DType(_))
    ));
    assert!(matches!(
        RotaryConfig::default().with_rope_parameters(&json!([1, 2])),
        Err(Error::DType(_))
    ));
    let cfg = RotaryConfig::default()
        .with_rope_parameters(&json!({"rope_type": "longrope", "short_factor": [1.0, 1.0],
            "long_factor": [1.0, 1.0]}))
        .unwrap();
    assert!(matches!(
        RotaryEmbedding::new(64, cfg),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        RotaryEmbedding::new(63, RotaryConfig::default()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn shape_and_position_errors() {
    let r = rope(16, 1.0, RopeLayout::Half, json!(null));
    let x = randn(&[2, 5, 16], DType::F32);
    let e = |x: &Tensor, p: Positions| r.forward(x, &p).unwrap_err();
    assert!(matches!(
        e(
            &randn(&[2, 5, 8], DType::F32),
            Positions::Range { offset: 0 }
        ),
        Error::Shape(_)
    ));
    assert!(matches!(
        e(&x, Positions::Shared(vec![0, 1])),
        Error::Shape(_)
    ));
    assert!(matches!(
        e(
            &x,
            Positions::PerBatch {
                batches: 3,
                positions: vec![0; 15]
            }
        ),
        Error::Shape(_)
    ));
    assert!(matches!(
        e(
            &x.to_dtype(DType::U32).unwrap(),
            Positions::Range { offset: 0 }
        ),
        Error::DType(_)
    ));
    assert!(matches!(
        Positions::offset(-1),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        Positions::from_ids(&[0i64, -3], &[2]),
        Err(Error::IndexOutOfRange { index: -3, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn prop_fast_equals_portable(
        half in 1usize..20, extra in 0usize..3, t in 1usize..40, lead in 1usize..5,
        offset in 0usize..5000, interleaved in any::<bool>(),
    ) {
        let d = 2 * half + 2 * extra;
        let layout = if interleaved { RopeLayout::Interleaved } else { RopeLayout::Half };
        let partial = (2 * half) as f64 / d as f64;
        let r = rope(d, partial, layout, json!(null));
        prop_assume!(r.rotary_dim() == 2 * half);
        let x = randn(&[lead, t, d], DType::F64);
        let pos = Positions::Range { offset };
        let fast = r.forward(&x, &pos).unwrap();
        let port = r.forward_portable(&x, &pos).unwrap();
        prop_assert!(max_abs_diff(&fast, &port) < 1e-13);
    }
}

/// Gemma 4's proportional RoPE: the kernel rotates the whole head, the zero frequencies of the
/// tail leave their pairs bit-identical, and fast == portable == fused.
#[test]
fn proportional_rotates_whole_head_with_identity_tail() {
    for layout in [RopeLayout::Half, RopeLayout::Interleaved] {
        let r = rope(
            32,
            0.25,
            layout,
            json!({"rope_type": "proportional", "factor": 2.0}),
        );
        assert_eq!(r.rotary_dim(), 32);
        let live = r.inv_freq().iter().filter(|&&f| f != 0.0).count();
        assert_eq!(live, 4);
        let x = randn(&[2, 3, 9, 32], DType::F64);
        let pos = Positions::Range { offset: 500 };
        let fast = r.forward(&x, &pos).unwrap();
        assert!(max_abs_diff(&fast, &r.forward_portable(&x, &pos).unwrap()) < 1e-13);
        assert!(max_abs_diff(&fast, &r.forward_fused(&x, &pos).unwrap()) < 1e-13);
        let (xv, yv): (Vec<f64>, Vec<f64>) = (
            x.flatten_all().unwrap().vec1(),
            fast.flatten_all().unwrap().vec1(),
        );
        let passes = |c: usize| match layout {
            RopeLayout::Half => (c % 16) >= live,
            RopeLayout::Interleaved => c >= 2 * live,
        };
        for (k, (a, b)) in xv.iter().zip(&yv).enumerate() {
            if passes(k % 32) {
                assert_eq!(a, b, "column {} must pass through", k % 32);
            }
        }
    }
}

/// The stateful dynamic mode moves its state as transformers' `dynamic_frequency_update`:
/// grow, keep, reset below `max_position_embeddings`; a stateless one follows each call.
#[test]
fn stateful_dynamic_follows_transformers_update() {
    let cfg = RotaryConfig {
        max_position_embeddings: 64,
        stateful_dynamic: true,
        ..RotaryConfig::default()
    }
    .with_rope_parameters(&json!({"rope_type": "dynamic", "factor": 2.0}))
    .unwrap();
    let stateless = RotaryEmbedding::new(
        16,
        RotaryConfig {
            stateful_dynamic: false,
            ..cfg.clone()
        },
    )
    .unwrap();
    let r = RotaryEmbedding::new(16, cfg).unwrap();
    let call = |n: usize| {
        let x = randn(&[1, n, 16], DType::F64);
        r.forward(&x, &Positions::Range { offset: 0 }).unwrap();
        r.max_seq_len_cached()
    };
    let kept = |n: usize| stateless.frequencies(n).0;
    for (n, longest) in [
        (10, 64),
        (200, 200),
        (100, 200),
        (300, 300),
        (64, 300),
        (63, 64),
    ] {
        assert_eq!(call(n), longest, "after a call of {n}");
        // the update is idempotent: asking again with the same length keeps the state
        assert_eq!(r.frequencies(n).0, kept(longest));
    }
}

//! Optimizers: stochastic rounding is exactly unbiased (every random pattern enumerated), the
//! generic shell's config checks, and AdamW's per-row step state.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_embed::optim::rounding::{bf16_stochastic, f16_stochastic};
use candle_embed::optim::{AdamW, AdamWConfig, Optimizer, SgdConfig, SparseOptimizer, StepOptions};
use candle_embed::{Embedding, EmbeddingConfig, Error, SparseGrad};
use half::{bf16, f16};

/// The neighbours `(lo, hi)` of `x` among the values of a 16-bit float type, `|lo| <= |x| <
/// |hi|` (or `lo == x == hi` when `x` is representable): the type's own nearest conversion
/// (`half`), then one step on the bit pattern toward or away from zero.
macro_rules! neighbours {
    ($name:ident, $H:ty) => {
        fn $name(x: f32) -> (f64, f64) {
            let xv = x as f64;
            let n = <$H>::from_f64(xv);
            let step = |away: bool| {
                let b = n.to_bits();
                <$H>::from_bits(if away { b + 1 } else { b - 1 }).to_f64()
            };
            match n.to_f64() {
                v if v == xv => (v, v),
                v if v.abs() < xv.abs() => (v, step(true)),
                v => (step(false), v),
            }
        }
    };
}
neighbours!(bf16_neighbours, bf16);
neighbours!(f16_neighbours, f16);

/// Values across binades, signs, subnormal ranges and grid points.
fn samples() -> Vec<f32> {
    let mut out = vec![
        1.0, -1.0, 1.5, 3.0e-3, -7.25e-5, 6.0e-8, 2.0e-9, 65_000.0, 1.0e30,
    ];
    let mut s = 0x1234_5678_u32;
    for _ in 0..24 {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let mantissa = 1.0 + (s >> 9) as f32 / (1u32 << 23) as f32;
        let exponent = (s % 40) as i32 - 26;
        let sign = if s & 1 == 0 { 1.0 } else { -1.0 };
        out.push(sign * mantissa * 2f32.powi(exponent));
    }
    out
}

/// Round `x` with every pattern of the top `bits` random bits; return (mean, outcomes seen).
fn enumerate(x: f32, bits: u32, round: impl Fn(f32, u32) -> f64) -> (f64, Vec<f64>) {
    let mut sum = 0.0;
    let mut seen = Vec::new();
    for r in 0..(1u32 << bits) {
        let y = round(x, r << (32 - bits));
        sum += y;
        if !seen.contains(&y) {
            seen.push(y);
        }
    }
    (sum / (1u64 << bits) as f64, seen)
}

#[test]
fn bf16_stochastic_rounding_is_exactly_unbiased() {
    for x in samples() {
        let (lo, hi) = bf16_neighbours(x);
        let (mean, seen) = enumerate(x, 16, |x, r| bf16_stochastic(x, r).to_f64());
        assert!(
            seen.iter().all(|&y| y == lo || y == hi),
            "{x}: {seen:?} vs {lo} {hi}"
        );
        // The mean of 2^16 equally likely outcomes is x itself (no rounding error in f64).
        assert_eq!(mean, x as f64, "{x}");
    }
}

#[test]
fn f16_stochastic_rounding_is_unbiased() {
    for x in samples() {
        let (lo, hi) = f16_neighbours(x);
        let (mean, seen) = enumerate(x, 23, |x, r| f16_stochastic(x, r).to_f64());
        if (x as f64).abs() > 65504.0 {
            // Beyond f16's range: the largest value or infinity.
            assert!(
                seen.iter().all(|y| y.abs() == 65504.0 || y.is_infinite()),
                "{x}"
            );
            continue;
        }
        assert!(
            seen.iter().all(|&y| y == lo || y == hi),
            "{x}: {seen:?} vs {lo} {hi}"
        );
        if (x as f64).abs() >= 2f64.powi(-24) {
            assert_eq!(mean, x as f64, "{x}");
        } else {
            // Below f16's smallest step the decision uses all 32 random bits; 23 of them are
            // enumerated here, so the mean is x up to one 2^-23 of the step.
            assert!(
                (mean - x as f64).abs() <= 2f64.powi(-24 - 23),
                "{x}: {mean}"
            );
        }
    }
}

#[test]
fn stochastic_rounding_passes_non_finite_values() {
    for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for r in [0, u32::MAX, 0x8000_0000] {
            let (b, h) = (bf16_stochastic(x, r), f16_stochastic(x, r));
            assert_eq!(b.is_nan(), x.is_nan());
            assert_eq!(h.is_nan(), x.is_nan());
            if !x.is_nan() {
                assert_eq!(b.to_f32(), x);
                assert_eq!(h.to_f32(), x);
            }
        }
    }
}

fn table(rows: usize, dim: usize, dtype: DType) -> Arc<Embedding> {
    Arc::new(
        Embedding::new(
            rows,
            dim,
            EmbeddingConfig::default(),
            dtype,
            &Device::Cpu,
            Some(1),
        )
        .unwrap(),
    )
}

fn grad(rows: &[i64], dim: usize, table_rows: usize) -> SparseGrad {
    let v = Tensor::ones((rows.len(), dim), DType::F32, &Device::Cpu).unwrap();
    SparseGrad::new(rows.to_vec(), v, table_rows).unwrap()
}

#[test]
fn set_config_checks_and_keeps_the_state_layout() {
    let mut opt = Optimizer::new(vec![table(8, 4, DType::F32)], SgdConfig::default()).unwrap();
    let good = SgdConfig {
        lr: 0.5,
        ..Default::default()
    };
    opt.set_config(good).unwrap();
    assert_eq!(opt.config().lr, 0.5);
    // Gaining a momentum buffer would change the state layout; a bad value is refused.
    for bad in [
        SgdConfig {
            momentum: 0.9,
            ..Default::default()
        },
        SgdConfig {
            lr: f64::NAN,
            ..Default::default()
        },
        SgdConfig {
            nesterov: true,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            opt.set_config(bad),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(opt.config(), &good);
    }
}

#[test]
fn adamw_state_records_the_last_step_of_each_row() {
    let t = table(6, 3, DType::F64);
    let mut opt: AdamW = Optimizer::new(
        vec![t],
        AdamWConfig {
            options: StepOptions {
                maximize: true,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    opt.step(&[Some(&grad(&[1, 4], 3, 6))]).unwrap();
    opt.step(&[Some(&grad(&[4], 3, 6))]).unwrap();
    let sd = opt.state_dict().unwrap();
    assert_eq!(sd.kind, "AdamW");
    assert_eq!(sd.steps, vec![2]);
    let last = sd.buffers[0]
        .iter()
        .find(|(n, _)| n == "last_step")
        .unwrap();
    assert_eq!(last.1.dtype(), DType::I64);
    assert_eq!(last.1.to_vec1::<i64>().unwrap(), vec![0, 1, 0, 0, 2, 0]);
    opt.load_state_dict(&sd).unwrap();
}

/// `sd` with buffer `name` of table 0 replaced by `t`.
fn with_buffer(
    sd: &candle_embed::optim::StateDict,
    name: &str,
    t: Tensor,
) -> candle_embed::optim::StateDict {
    let mut sd = sd.clone();
    for (n, v) in sd.buffers[0].iter_mut() {
        if n == name {
            *v = t.clone();
        }
    }
    sd
}

#[test]
fn load_state_dict_refuses_state_that_would_give_nan_or_wrap() {
    let t = table(5, 2, DType::F32);
    let mut opt: AdamW = Optimizer::new(vec![t], AdamWConfig::default()).unwrap();
    opt.step(&[Some(&grad(&[1, 3], 2, 5))]).unwrap();
    let good = opt.state_dict().unwrap();
    let f32s = |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &Device::Cpu).unwrap();
    let i64s = |v: &[i64]| Tensor::from_slice(v, 5, &Device::Cpu).unwrap();
    let mut nan = vec![0f32; 10];
    nan[3] = f32::NAN;
    let mut negative = vec![0f32; 10];
    negative[7] = -1e-3;
    let bad = [
        with_buffer(&good, "exp_avg", f32s(&nan, &[5, 2])),
        with_buffer(&good, "exp_avg_sq", f32s(&negative, &[5, 2])),
        with_buffer(&good, "exp_avg_sq", f32s(&[0.0; 8], &[4, 2])),
        with_buffer(&good, "last_step", i64s(&[0, 1, 0, -1, 0])),
        with_buffer(&good, "last_step", i64s(&[0, 2, 0, 1, 0])),
        with_buffer(&good, "last_step", f32s(&[0.0; 5], &[5])),
        candle_embed::optim::StateDict {
            steps: vec![u64::MAX],
            ..good.clone()
        },
        candle_embed::optim::StateDict {
            kind: "SGD".into(),
            ..good.clone()
        },
    ];
    for sd in &bad {
        let err = opt.load_state_dict(sd).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidArgument(_) | Error::Shape(_) | Error::DType(_)
            ),
            "{err:?}"
        );
        let now = opt.state_dict().unwrap();
        assert_eq!(now.steps, good.steps);
        for ((n, a), (_, b)) in now.buffers[0].iter().zip(&good.buffers[0]) {
            let (a, b) = (
                a.to_dtype(DType::F64).unwrap(),
                b.to_dtype(DType::F64).unwrap(),
            );
            let same = a.flatten_all().unwrap().to_vec1::<f64>().unwrap()
                == b.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            assert!(same, "buffer {n} changed");
        }
    }
    opt.load_state_dict(&good).unwrap();
}

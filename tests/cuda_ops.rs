//! The ops on a CUDA table with our kernels switched on, against the same ops' portable
//! candle-op paths on the same device and against the CPU: lookup (exact), backward,
//! `index_add`, EmbeddingBag forward/backward, RoPE forward/backward (autograd included), and
//! optimizer steps (the host-staged walk: bit-identical to CPU). Built with the `cuda` feature;
//! each test returns early ("skipped") when no CUDA device opens. The switch is only ever
//! turned on here, so tests running in parallel never see it flip.
#![cfg(feature = "cuda")]

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use candle_embed::kernels::cuda;
use candle_embed::kernels::index_add_tensor;
use candle_embed::optim::{Optimizer, SparseAdamConfig, SparseOptimizer};
use candle_embed::positional::rotary::{Positions, RopeLayout, RotaryConfig, RotaryEmbedding};
use candle_embed::sparse::index_add_portable;
use candle_embed::{
    BagMode, Embedding, EmbeddingBag, EmbeddingBagConfig, EmbeddingConfig, Error, SparseGrad,
};

fn gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => {
            cuda::set_enabled(true);
            Some(d)
        }
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}

fn host(t: &Tensor) -> Vec<f64> {
    let t = t
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "at {i}: {x} vs {y}");
    }
}

fn table(rows: usize, dim: usize, dtype: DType, dev: &Device) -> Tensor {
    let v: Vec<f32> = (0..rows * dim)
        .map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5)
        .collect();
    Tensor::from_vec(v, (rows, dim), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_device(dev)
        .unwrap()
}

fn ids(n: usize, rows: usize) -> Vec<i64> {
    (0..n as i64).map(|i| i * 37 % rows as i64).collect()
}

#[test]
fn lookup_and_backward_match_the_portable_path() {
    let Some(dev) = gpu() else { return };
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let w = table(300, 33, dtype, &dev);
        let cfg = EmbeddingConfig {
            padding_idx: Some(5),
            scale_grad_by_freq: true,
            ..Default::default()
        };
        let emb = Embedding::from_pretrained(w, cfg).unwrap();
        let ids = ids(2000, 300);
        let fast = emb.lookup_device(&ids, &[40, 50]).unwrap();
        assert_eq!(fast.dims(), &[40, 50, 33]);
        assert_eq!(
            host(&fast),
            host(&emb.lookup_portable(&ids, &[40, 50]).unwrap())
        );
        // An out-of-range id is an IndexError and the next call works.
        assert!(matches!(
            emb.lookup_device(&[0i64, 300], &[2]),
            Err(Error::IndexOutOfRange { .. })
        ));
        let grad = table(2000, 33, dtype, &dev);
        let fast = emb.backward_tensor(&ids, &grad).unwrap();
        let slow = emb.backward_portable(&ids, &grad).unwrap();
        assert_eq!(fast.indices(), slow.indices());
        let tol = if matches!(dtype, DType::F16 | DType::BF16) {
            1e-2
        } else {
            1e-5
        };
        close(&host(fast.values()), &host(slow.values()), tol);
    }
}

#[test]
fn index_add_matches_candle_and_the_cpu() {
    let Some(dev) = gpu() else { return };
    let (dst, src) = (
        table(64, 20, DType::F32, &dev),
        table(700, 20, DType::F32, &dev),
    );
    let ids = ids(700, 64);
    let fast = index_add_tensor(&dst, &ids, &src).unwrap();
    close(
        &host(&fast),
        &host(&index_add_portable(&dst, &ids, &src).unwrap()),
        1e-5,
    );
    let cpu = |t: &Tensor| t.to_device(&Device::Cpu).unwrap();
    let on_cpu = index_add_tensor(&cpu(&dst), &ids, &cpu(&src)).unwrap();
    close(&host(&fast), &host(&on_cpu), 1e-5);
}

#[test]
fn bag_forward_and_backward_match_the_portable_path() {
    let Some(dev) = gpu() else { return };
    let ids: Vec<i64> = vec![1, 5, 5, 0, 39, 3, 3, 3, 7, 0, 12];
    let offsets: Vec<i64> = vec![0, 3, 3, 5, 10];
    let weights: Vec<f32> = (0..ids.len()).map(|i| 0.25 * i as f32 - 1.0).collect();
    for mode in [BagMode::Sum, BagMode::Mean, BagMode::Max] {
        let cfg = EmbeddingBagConfig {
            mode,
            padding_idx: Some(3),
            ..Default::default()
        };
        let bag =
            EmbeddingBag::from_pretrained(table(40, 24, DType::F32, &dev), cfg.clone()).unwrap();
        let w = (mode == BagMode::Sum).then_some(&weights[..]);
        let fast: Vec<f32> = bag
            .forward_vec(&ids, &[ids.len()], Some(&offsets), w)
            .unwrap();
        let slow = bag
            .forward_portable(&ids, &[ids.len()], Some(&offsets), w)
            .unwrap();
        let fast: Vec<f64> = fast.iter().map(|&x| x as f64).collect();
        close(&fast, &host(&slow), 1e-5);
        let g: Vec<f32> = (0..5 * 24).map(|i| (i % 7) as f32 - 3.0).collect();
        let sg = bag
            .backward(&ids, &[ids.len()], Some(&offsets), &g, w)
            .unwrap();
        // The reference: the same backward on a CPU copy of the bag.
        let cpu_bag =
            EmbeddingBag::from_pretrained(bag.weight().to_device(&Device::Cpu).unwrap(), cfg)
                .unwrap();
        let want = cpu_bag
            .backward(&ids, &[ids.len()], Some(&offsets), &g, w)
            .unwrap();
        assert_eq!(sg.indices(), want.indices());
        close(&host(sg.values()), &host(want.values()), 1e-5);
    }
}

#[test]
fn rope_matches_the_portable_path_and_carries_its_gradient() {
    let Some(dev) = gpu() else { return };
    for layout in [RopeLayout::Half, RopeLayout::Interleaved] {
        let cfg = RotaryConfig {
            layout,
            partial_rotary_factor: 0.5,
            ..Default::default()
        };
        let rope = RotaryEmbedding::new(32, cfg).unwrap();
        let x = table(2 * 3 * 7, 32, DType::F32, &dev)
            .reshape((2, 3, 7, 32))
            .unwrap();
        let per_batch = Positions::PerBatch {
            batches: 2,
            positions: (0..14).map(|p| p * 3 % 11).collect(),
        };
        for positions in [Positions::Range { offset: 4 }, per_batch] {
            let fast = rope.forward(&x, &positions).unwrap();
            let slow = rope.forward_portable(&x, &positions).unwrap();
            close(&host(&fast), &host(&slow), 1e-5);
            let back = rope.backward(&fast, &positions).unwrap();
            close(&host(&back), &host(&x), 1e-5);
            // Autograd through the CUDA op: d(sum(y * c))/dx = R^T c.
            let v = Var::from_tensor(&x).unwrap();
            let c = table(2 * 3 * 7, 32, DType::F32, &dev)
                .reshape((2, 3, 7, 32))
                .unwrap();
            let y = rope.forward(v.as_tensor(), &positions).unwrap();
            let grads = (y * &c).unwrap().sum_all().unwrap().backward().unwrap();
            let gx = grads.get(v.as_tensor()).unwrap();
            let want = rope.backward_portable(&c, &positions).unwrap();
            close(&host(gx), &host(&want), 1e-5);
        }
    }
}

#[test]
fn optimizer_steps_on_a_cuda_table_equal_the_cpu_bit_for_bit() {
    let Some(dev) = gpu() else { return };
    let run = |device: &Device| {
        let emb = Embedding::from_pretrained(
            table(50, 16, DType::BF16, device),
            EmbeddingConfig {
                freeze: false,
                ..Default::default()
            },
        )
        .unwrap();
        let mut cfg = SparseAdamConfig::default();
        cfg.options.stochastic_rounding = true;
        let mut opt = Optimizer::new(vec![Arc::new(emb)], cfg).unwrap();
        for s in 0..3 {
            let rows: Vec<i64> = vec![s, 7, 20 + s, 49];
            let g = table(4, 16, DType::F32, &Device::Cpu);
            let g = SparseGrad::new(rows, g, 50).unwrap();
            opt.step(&[Some(&g)]).unwrap();
        }
        host(&opt.params()[0].weight())
    };
    assert_eq!(run(&dev), run(&Device::Cpu));
}

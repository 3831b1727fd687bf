//! GPU kernels against CPU references (float64 formulas written here). Built only with the
//! `cuda` feature; each test returns early (printing "skipped") when no CUDA device opens, so
//! `cargo test --features cuda` passes on a machine without a GPU and checks on one with it.
#![cfg(feature = "cuda")]

use candle_core::{DType, Device, Tensor};
use candle_embed::bag::Bags;
use candle_embed::kernels::cuda;
use candle_embed::kernels::segments::SegmentPlan;
use candle_embed::{BagMode, EmbeddingBag, EmbeddingBagConfig};
use candle_embed::{Error, SparseGrad};

fn gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(v: &[f64], shape: (usize, usize), dtype: DType, dev: &Device) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_device(dev)
        .unwrap()
}

fn host(t: &Tensor) -> Vec<f64> {
    t.to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "at {i}: {x} vs {y}");
    }
}

const DTYPES: [(DType, f64); 4] = [
    (DType::F32, 1e-5),
    (DType::F64, 1e-12),
    (DType::F16, 2e-2),
    (DType::BF16, 2e-2),
];

#[test]
fn gather_is_an_exact_copy_and_rejects_bad_ids() {
    let Some(dev) = gpu() else { return };
    let (rows, dim) = (1000, 37);
    let w = values(rows * dim, 1);
    let ids: Vec<i32> = (0..5000).map(|i| i * 7919 % rows as i32).collect();
    let ids_u32: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    for (dt, _) in DTYPES {
        let t = tensor(&w, (rows, dim), dt, &dev);
        let got = host(&cuda::gather(&t, &ids).unwrap());
        let idx = Tensor::new(&ids_u32[..], &dev).unwrap();
        let want = host(&t.index_select(&idx, 0).unwrap());
        assert_eq!(got, want, "{dt:?}");
    }
    let t = tensor(&w, (rows, dim), DType::F32, &dev);
    let err = cuda::gather(&t, &[0i64, rows as i64]).unwrap_err();
    assert!(matches!(err, Error::IndexOutOfRange { index: 1000, .. }));
    // The context still works after the rejected call.
    let row2 = host(&cuda::gather(&t, &[2u8]).unwrap());
    close(&row2, &w[2 * dim..3 * dim], 1e-6);
}

fn reference_backward(
    ids: &[i64],
    grad: &[f64],
    dim: usize,
    pad: Option<i64>,
    by_freq: bool,
) -> (Vec<i64>, Vec<f64>) {
    let mut rows: Vec<i64> = ids.iter().copied().filter(|&i| Some(i) != pad).collect();
    rows.sort();
    rows.dedup();
    let mut out = vec![0.0; rows.len() * dim];
    for (k, &r) in rows.iter().enumerate() {
        let n = ids.iter().filter(|&&i| i == r).count() as f64;
        for (j, &i) in ids.iter().enumerate() {
            if i == r {
                let s = if by_freq { 1.0 / n } else { 1.0 };
                for c in 0..dim {
                    out[k * dim + c] += grad[j * dim + c] * s;
                }
            }
        }
    }
    (rows, out)
}

#[test]
fn embedding_backward_and_coalesce_match_reference() {
    let Some(dev) = gpu() else { return };
    let (rows, dim, n) = (300, 65, 4000);
    let ids: Vec<i64> = values(n, 2)
        .iter()
        .map(|v| ((v + 1.0) * 0.5 * rows as f64) as i64 % rows as i64)
        .collect();
    let g = values(n * dim, 3);
    for (dt, tol) in DTYPES {
        let gt = tensor(&g, (n, dim), dt, &dev);
        let g_cast = host(&gt);
        for (pad, by_freq) in [(None, false), (Some(ids[0]), true)] {
            let padu = pad.map(|p| p as usize);
            let sg = cuda::embedding_backward(&ids, &gt, rows, padu, by_freq).unwrap();
            let (want_rows, want) = reference_backward(&ids, &g_cast, dim, pad, by_freq);
            assert_eq!(sg.indices(), &want_rows[..]);
            close(&host(sg.values()), &want, tol * 10.0);
            // Deterministic: a second run is bit-identical.
            let again = cuda::embedding_backward(&ids, &gt, rows, padu, by_freq).unwrap();
            assert_eq!(host(again.values()), host(sg.values()));
        }
        let c = cuda::coalesce(&ids, &gt, rows).unwrap();
        let (want_rows, want) = reference_backward(&ids, &g_cast, dim, None, false);
        assert_eq!(c.indices(), &want_rows[..]);
        close(&host(c.values()), &want, tol * 10.0);
    }
    let gt = tensor(&g, (n, dim), DType::F32, &dev);
    assert!(matches!(
        cuda::coalesce(&[-1i64], &gt.narrow(0, 0, 1).unwrap(), rows),
        Err(Error::IndexOutOfRange { index: -1, .. })
    ));
}

#[test]
fn index_add_matches_reference_and_leaves_dst() {
    let Some(dev) = gpu() else { return };
    let (rows, dim, n) = (64, 130, 1000);
    let ids: Vec<u32> = (0..n as u32).map(|i| (i * 31) % rows as u32).collect();
    let dst = tensor(&values(rows * dim, 4), (rows, dim), DType::F32, &dev);
    let src = tensor(&values(n * dim, 5), (n, dim), DType::F32, &dev);
    let before = host(&dst);
    let out = cuda::index_add(&dst, &ids, &src).unwrap();
    let mut want = before.clone();
    let sh = host(&src);
    for (j, &i) in ids.iter().enumerate() {
        for c in 0..dim {
            want[i as usize * dim + c] += sh[j * dim + c];
        }
    }
    close(&host(&out), &want, 1e-5);
    assert_eq!(host(&dst), before);
    // Bad id: error, destination untouched.
    let mut bad = ids.clone();
    bad[7] = rows as u32;
    assert!(matches!(
        cuda::index_add_(&dst, &bad, &src),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert_eq!(host(&dst), before);
}

fn bag_members(ids: &[i64], offsets: &[i64], b: usize, pad: Option<usize>) -> Vec<usize> {
    (offsets[b] as usize..offsets[b + 1] as usize)
        .filter(|&j| Some(ids[j] as usize) != pad)
        .collect()
}

#[test]
fn bag_forward_and_backward_match_reference() {
    let Some(dev) = gpu() else { return };
    let (rows, dim, nb) = (40, 24, 4);
    let w = values(rows * dim, 6);
    let ids: Vec<i64> = vec![1, 5, 5, 0, 39, 3, 3, 3, 7, 0];
    let offsets: Vec<i64> = vec![0, 3, 3, 5, 10]; // bag 1 is empty
    let psw = values(ids.len(), 7);
    let pad = Some(3usize);
    for (dt, tol) in DTYPES {
        let t = tensor(&w, (rows, dim), dt, &dev);
        let wc = host(&t);
        for (mode, weighted) in [
            (BagMode::Sum, false),
            (BagMode::Sum, true),
            (BagMode::Mean, false),
            (BagMode::Max, false),
        ] {
            let pw = weighted.then_some(&psw[..]);
            // The bags come from the crate's one offsets check, as in the ops.
            let cfg = EmbeddingBagConfig {
                mode,
                padding_idx: pad.map(|p| p as i64),
                include_last_offset: true,
                ..Default::default()
            };
            let module = EmbeddingBag::from_pretrained(t.clone(), cfg).unwrap();
            let bags = module.bags(&ids, &[ids.len()], Some(&offsets[..])).unwrap();
            let got = host(&cuda::bag_forward(&t, &bags, pw, mode, pad).unwrap());
            let mut want = vec![0.0; nb * dim];
            for b in 0..nb {
                let members = bag_members(&ids, &offsets, b, pad);
                for c in 0..dim {
                    let vals: Vec<f64> = members
                        .iter()
                        .map(|&j| wc[ids[j] as usize * dim + c] * pw.map_or(1.0, |p| p[j]))
                        .collect();
                    want[b * dim + c] = match mode {
                        _ if vals.is_empty() => 0.0,
                        BagMode::Sum => vals.iter().sum(),
                        BagMode::Mean => vals.iter().sum::<f64>() / vals.len() as f64,
                        BagMode::Max => vals.iter().cloned().fold(f64::MIN, f64::max),
                    };
                }
            }
            close(&got, &want, tol * 10.0);
            if mode == BagMode::Max {
                continue;
            }
            let gt = tensor(&values(nb * dim, 8), (nb, dim), dt, &dev);
            let goc = host(&gt);
            let sg = cuda::bag_backward(&gt, &bags, pw, mode, pad, rows).unwrap();
            let mut dense = vec![0.0; rows * dim];
            for b in 0..nb {
                let members = bag_members(&ids, &offsets, b, pad);
                for &j in &members {
                    let s = match mode {
                        BagMode::Mean => 1.0 / members.len() as f64,
                        _ => pw.map_or(1.0, |p| p[j]),
                    };
                    for c in 0..dim {
                        dense[ids[j] as usize * dim + c] += goc[b * dim + c] * s;
                    }
                }
            }
            close(&host(&sg.to_dense().unwrap()), &dense, tol * 10.0);
            assert!(!sg.indices().contains(&3));
        }
    }
    let t = tensor(&w, (rows, dim), DType::F32, &dev);
    let bad_id = Bags {
        ids: &[0i64, 40][..],
        bounds: vec![0, 2],
    };
    assert!(matches!(
        cuda::bag_forward(&t, &bad_id, None, BagMode::Sum, None),
        Err(Error::IndexOutOfRange { index: 40, .. })
    ));
    // Bounds that were not made by the offsets check are refused before any launch.
    for bounds in [vec![0, 3], vec![2, 1, 2], vec![]] {
        let bags = Bags {
            ids: &[0i64, 1][..],
            bounds,
        };
        assert!(matches!(
            cuda::bag_forward(&t, &bags, None, BagMode::Sum, None),
            Err(Error::InvalidArgument(_))
        ));
    }
}

fn grad_on(dev: &Device, rows: usize, dim: usize, idx: &[i64], dt: DType) -> SparseGrad {
    let v = values(idx.len() * dim, 10);
    SparseGrad::new(idx.to_vec(), tensor(&v, (idx.len(), dim), dt, dev), rows).unwrap()
}

#[test]
fn optimizer_steps_match_reference() {
    let Some(dev) = gpu() else { return };
    let (rows, dim) = (20, 33);
    let idx = [1i64, 4, 5, 19];
    let touched = |r: usize| idx.iter().position(|&i| i as usize == r);
    let w0 = values(rows * dim, 9);
    for (dt, tol) in DTYPES {
        let g = grad_on(&dev, rows, dim, &idx, dt);
        let gh = host(g.values());
        let fresh = || tensor(&w0, (rows, dim), dt, &dev);

        // SGD with momentum and weight decay, two steps from a zero buffer.
        let w = fresh();
        let buf = Tensor::zeros((rows, dim), dt, &dev).unwrap();
        let (lr, mom, wd) = (0.1, 0.9, 0.01);
        let mut wr = host(&w);
        let mut br = vec![0.0; rows * dim];
        for _ in 0..2 {
            cuda::sgd_step(&w, Some(&buf), &g, lr, mom, wd).unwrap();
            for r in 0..rows {
                let Some(k) = touched(r) else { continue };
                for c in 0..dim {
                    let e = r * dim + c;
                    let gg = gh[k * dim + c] + wd * wr[e];
                    br[e] = mom * br[e] + gg;
                    wr[e] -= lr * br[e];
                }
            }
        }
        close(&host(&w), &wr, tol * 10.0);

        // Adagrad, one step from a zero state.
        let w = fresh();
        let st = Tensor::zeros((rows, dim), dt, &dev).unwrap();
        cuda::adagrad_step(&w, &st, &g, 0.5, 1e-10).unwrap();
        let mut wr = host(&fresh());
        for r in 0..rows {
            let Some(k) = touched(r) else { continue };
            for c in 0..dim {
                let gg = gh[k * dim + c];
                wr[r * dim + c] -= 0.5 * gg / (gg.abs() + 1e-10);
            }
        }
        close(&host(&w), &wr, tol * 10.0);

        // Row-wise Adagrad.
        let w = fresh();
        let st = Tensor::zeros(rows, dt, &dev).unwrap();
        cuda::rowwise_adagrad_step(&w, &st, &g, 0.5, 1e-10).unwrap();
        let mut wr = host(&fresh());
        let mut sr = vec![0.0; rows];
        for r in 0..rows {
            let Some(k) = touched(r) else { continue };
            sr[r] = (0..dim).map(|c| gh[k * dim + c].powi(2)).sum::<f64>() / dim as f64;
            for c in 0..dim {
                wr[r * dim + c] -= 0.5 * gh[k * dim + c] / (sr[r].sqrt() + 1e-10);
            }
        }
        close(&host(&w), &wr, tol * 10.0);
        close(&host(&st), &sr, tol * 10.0);

        // SparseAdam, steps 1 and 2.
        let w = fresh();
        let m = Tensor::zeros((rows, dim), dt, &dev).unwrap();
        let v = Tensor::zeros((rows, dim), dt, &dev).unwrap();
        let (lr, b1, b2, eps) = (0.01, 0.9, 0.999, 1e-8);
        let mut wr = host(&fresh());
        let (mut mr, mut vr) = (vec![0.0; rows * dim], vec![0.0; rows * dim]);
        for t in 1..=2u64 {
            cuda::sparse_adam_step(&w, &m, &v, &g, lr, (b1, b2), eps, t).unwrap();
            let ss = lr * (1.0 - b2.powi(t as i32)).sqrt() / (1.0 - b1.powi(t as i32));
            for r in 0..rows {
                let Some(k) = touched(r) else { continue };
                for c in 0..dim {
                    let (e, gg) = (r * dim + c, gh[k * dim + c]);
                    mr[e] += (1.0 - b1) * (gg - mr[e]);
                    vr[e] += (1.0 - b2) * (gg * gg - vr[e]);
                    wr[e] -= ss * mr[e] / (vr[e].sqrt() + eps);
                }
            }
        }
        close(&host(&w), &wr, tol * 10.0);
        close(&host(&m), &mr, tol * 10.0);
    }
}

#[test]
fn rope_forward_backward_match_reference() {
    let Some(dev) = gpu() else { return };
    let (b, h, t, hd) = (2, 3, 5, 16);
    let x = values(b * h * t * hd, 11);
    for rot in [16usize, 8] {
        let half = rot / 2;
        let mut cos = vec![0.0; t * half];
        let mut sin = vec![0.0; t * half];
        for p in 0..t {
            for i in 0..half {
                let th = p as f64 * 10000f64.powf(-((2 * i) as f64) / rot as f64);
                cos[p * half + i] = th.cos();
                sin[p * half + i] = th.sin();
            }
        }
        for interleaved in [false, true] {
            for (dt, tol) in DTYPES {
                let acc = if dt == DType::F64 {
                    DType::F64
                } else {
                    DType::F32
                };
                let xt = Tensor::from_vec(x.clone(), (b, h, t, hd), &Device::Cpu)
                    .unwrap()
                    .to_dtype(dt)
                    .unwrap()
                    .to_device(&dev)
                    .unwrap();
                let xc = host(&xt);
                let ct = tensor(&cos, (t, half), acc, &dev);
                let st = tensor(&sin, (t, half), acc, &dev);
                for backward in [false, true] {
                    let got = host(&cuda::rope(&xt, &ct, &st, interleaved, backward).unwrap());
                    let sg = if backward { -1.0 } else { 1.0 };
                    let mut want = xc.clone();
                    for row in 0..b * h * t {
                        let p = row % t;
                        for i in 0..half {
                            let (ia, ib) = if interleaved {
                                (2 * i, 2 * i + 1)
                            } else {
                                (i, i + half)
                            };
                            let (a, bb) = (xc[row * hd + ia], xc[row * hd + ib]);
                            let (c, s) = (cos[p * half + i], sg * sin[p * half + i]);
                            want[row * hd + ia] = a * c - bb * s;
                            want[row * hd + ib] = bb * c + a * s;
                        }
                    }
                    close(&got, &want, tol * 10.0);
                }
            }
        }
    }
}

#[test]
fn prepared_gather_and_segments_rerun_bit_identically_and_check_their_inputs() {
    let Some(dev) = gpu() else { return };
    let (rows, dim, n) = (500, 19, 3000);
    let table = tensor(&values(rows * dim, 12), (rows, dim), DType::F32, &dev);
    let ids: Vec<i64> = (0..n as i64).map(|i| i * 7 % rows as i64).collect();
    let g = cuda::Gather::new(&table, &ids).unwrap();
    let (a, b) = (host(&g.run().unwrap()), host(&g.run().unwrap()));
    assert_eq!(a, b);
    assert_eq!(a, host(&cuda::gather(&table, &ids).unwrap()));
    assert!(matches!(
        cuda::Gather::new(&table, &[rows as i64]),
        Err(Error::IndexOutOfRange { .. })
    ));

    let src = tensor(&values(n * dim, 13), (n, dim), DType::F32, &dev);
    let plan = SegmentPlan::new(&ids, rows, None).unwrap();
    let segs = cuda::Segments::new(&src, &plan, &plan.order, None).unwrap();
    let first = host(&segs.reduce(&src).unwrap());
    assert_eq!(first, host(&segs.reduce(&src).unwrap()));
    // Inputs that do not fit the plan are refused before any launch.
    let short = src.narrow(0, 0, n - 1).unwrap();
    assert!(matches!(segs.reduce(&short), Err(Error::Shape(_))));
    let mut bad_rows = plan.order.clone();
    bad_rows[0] = n as u32;
    assert!(matches!(
        cuda::Segments::new(&src, &plan, &bad_rows, None),
        Err(Error::Shape(_))
    ));
    let small = Tensor::zeros(
        (plan.rows[plan.rows.len() - 1] as usize, dim),
        DType::F32,
        &dev,
    )
    .unwrap();
    assert!(matches!(segs.add_into(&src, &small), Err(Error::Shape(_))));
    // ... and the device still works.
    assert_eq!(first, host(&segs.reduce(&src).unwrap()));
}

#[test]
fn rejected_calls_leave_the_context_usable_for_every_op() {
    let Some(dev) = gpu() else { return };
    let (rows, dim) = (30, 8);
    let table = tensor(&values(rows * dim, 14), (rows, dim), DType::F32, &dev);
    let src = tensor(&values(2 * dim, 15), (2, dim), DType::F32, &dev);
    let bad = [1i64, rows as i64];
    let good = [1i64, 2];
    let expect_index = |r: candle_embed::Result<()>| {
        assert!(matches!(r, Err(Error::IndexOutOfRange { .. })), "{r:?}")
    };
    expect_index(cuda::embedding_backward(&bad, &src, rows, None, false).map(drop));
    expect_index(cuda::index_add(&table, &bad, &src).map(drop));
    let bad_bags = Bags {
        ids: &bad[..],
        bounds: vec![0, 2],
    };
    expect_index(cuda::bag_forward(&table, &bad_bags, None, BagMode::Sum, None).map(drop));
    let one_bag = src.narrow(0, 0, 1).unwrap();
    expect_index(cuda::bag_backward(&one_bag, &bad_bags, None, BagMode::Sum, None, rows).map(drop));
    // Each op still runs, and agrees with the reference, after the rejected calls.
    let g = cuda::embedding_backward(&good, &src, rows, None, false).unwrap();
    assert_eq!(g.indices(), &[1, 2]);
    close(&host(g.values()), &host(&src), 0.0);
    let good_bags = Bags {
        ids: &good[..],
        bounds: vec![0, 2],
    };
    let bag = host(&cuda::bag_forward(&table, &good_bags, None, BagMode::Sum, None).unwrap());
    let t = host(&table);
    let want: Vec<f64> = (0..dim).map(|c| t[dim + c] + t[2 * dim + c]).collect();
    close(&bag, &want, 1e-6);
}

#[test]
fn scatter_rows_writes_exactly_the_given_rows_and_checks_its_ids() {
    let Some(dev) = gpu() else { return };
    let (rows, dim) = (40, 13);
    for (dt, _) in DTYPES {
        let table = tensor(&values(rows * dim, 16), (rows, dim), dt, &dev);
        let before = host(&table);
        let ids = [0i64, 7, 8, 39];
        let new = tensor(&values(ids.len() * dim, 17), (ids.len(), dim), dt, &dev);
        cuda::scatter_rows(&table, &ids, &new).unwrap();
        let (after, nh) = (host(&table), host(&new));
        for r in 0..rows {
            let got = &after[r * dim..(r + 1) * dim];
            match ids.iter().position(|&i| i as usize == r) {
                Some(k) => assert_eq!(got, &nh[k * dim..(k + 1) * dim], "{dt:?} row {r}"),
                None => assert_eq!(got, &before[r * dim..(r + 1) * dim], "{dt:?} row {r}"),
            }
        }
        // Out of range, repeated or unsorted ids: refused before the launch, table unchanged.
        for bad in [[0i64, 7, 8, 40], [0, 7, 7, 8], [7, 0, 8, 39]] {
            assert!(cuda::scatter_rows(&table, &bad, &new).is_err());
        }
        assert_eq!(host(&table), after);
    }
}

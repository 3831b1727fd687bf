//! Kernel-level GPU benchmark of candle-embed's CUDA kernels against candle's own ops and a
//! device-to-device copy of the same bytes, on one device in one run (the Rust half of the GPU
//! bundle; bench_gpu.py there times PyTorch's peers). Not a criterion bench: it runs once, on
//! whatever GPU is there, and writes JSON.
//!
//!     cargo bench --features cuda --bench gpu_kernels
//!     CANDLE_EMBED_BENCH_JSON=out.json CANDLE_EMBED_BENCH_QUICK=1 target/release/deps/gpu_kernels-*
//!
//! Method: every case is timed in interleaved rounds (each label once per round, in turn).
//! "kernel" labels launch only (inputs and plans already on the device) and are timed with CUDA
//! events on candle's stream; "call" labels are the public functions as a user calls them (host
//! validation, sort and upload included), timed with a wall clock between stream
//! synchronisations. Each timed batch follows one untimed call. Reported: median and minimum
//! seconds per call over the rounds, and derived ratios.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::cuda_backend::cudarc::driver::sys::CUevent_flags;
use candle_core::{DType, Device, Tensor};
use candle_embed::bag::Bags;
use candle_embed::kernels::cuda::{self, Gather, Segments};
use candle_embed::kernels::segments::SegmentPlan;
use candle_embed::{BagMode, SparseGrad};
use serde_json::{json, Value};

type Res<T> = Result<T, Box<dyn std::error::Error>>;
type Case<'a> = Box<dyn FnMut() -> Res<()> + 'a>;

struct Timer {
    stream: std::sync::Arc<candle_core::cuda_backend::cudarc::driver::CudaStream>,
    rounds: usize,
    iters: usize,
}

impl Timer {
    fn once(&self, f: &mut Case<'_>, kernel: bool) -> Res<f64> {
        f()?;
        self.stream.synchronize()?;
        if kernel {
            let flags = Some(CUevent_flags::CU_EVENT_DEFAULT);
            let start = self.stream.record_event(flags)?;
            for _ in 0..self.iters {
                f()?;
            }
            let end = self.stream.record_event(flags)?;
            return Ok(f64::from(start.elapsed_ms(&end)?) / 1e3 / self.iters as f64);
        }
        let t = Instant::now();
        for _ in 0..self.iters {
            f()?;
        }
        self.stream.synchronize()?;
        Ok(t.elapsed().as_secs_f64() / self.iters as f64)
    }

    /// Interleaved rounds over `(label, is_kernel, call)`; a failing label is reported, not fatal.
    fn run(&self, mut cases: Vec<(&str, bool, Case<'_>)>) -> BTreeMap<String, Value> {
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
        let mut errors: BTreeMap<String, Value> = BTreeMap::new();
        for _ in 0..self.rounds {
            for (k, (label, kernel, f)) in cases.iter_mut().enumerate() {
                if errors.contains_key(*label) {
                    continue;
                }
                match self.once(f, *kernel) {
                    Ok(t) => times[k].push(t),
                    Err(e) => {
                        errors.insert(label.to_string(), json!(e.to_string()));
                    }
                }
            }
        }
        let mut out = BTreeMap::new();
        for ((label, kernel, _), mut ts) in cases.into_iter().zip(times) {
            if ts.is_empty() {
                continue;
            }
            ts.sort_by(f64::total_cmp);
            let how = if kernel { "cuda events" } else { "wall clock" };
            out.insert(
                label.to_string(),
                json!({"median_s": ts[ts.len() / 2], "min_s": ts[0], "rounds": ts.len(), "timer": how}),
            );
        }
        if !errors.is_empty() {
            out.insert("errors".into(), json!(errors));
        }
        out
    }
}

/// A call's result with its value dropped (the bench keeps only the time).
fn done<T, E: Into<Box<dyn std::error::Error>>>(r: Result<T, E>) -> Res<()> {
    r.map(drop).map_err(Into::into)
}

fn median(case: &BTreeMap<String, Value>, label: &str) -> Option<f64> {
    case.get(label)?.get("median_s")?.as_f64()
}

/// `numerator / denominator` of two labels' medians, stored under `name`.
fn ratio(case: &mut BTreeMap<String, Value>, name: &str, num: &str, den: &str) {
    if let (Some(a), Some(b)) = (median(case, num), median(case, den)) {
        case.insert(name.into(), json!(a / b));
    }
}

fn random_ids(n: usize, rows: usize, seed: u64) -> Vec<u32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % rows as u64) as u32
        })
        .collect()
}

fn main() -> Res<()> {
    let quick = std::env::var_os("CANDLE_EMBED_BENCH_QUICK").is_some();
    let dev = match Device::new_cuda(0) {
        Ok(d) => d,
        Err(e) => {
            println!("skipped: no CUDA device ({e})");
            return write(&json!({"skipped": format!("no CUDA device: {e}")}));
        }
    };
    let Device::Cuda(cuda_dev) = &dev else {
        unreachable!()
    };
    let stream = cuda_dev.cuda_stream();
    let ctx = stream.context().clone();
    // 512 MB table and 128 MB of gathered rows: well past the H200's 60 MB L2.
    let (rows, dim, n) = if quick {
        (4096, 64, 8192)
    } else {
        (1 << 20, 128, 1 << 18)
    };
    let timer = Timer {
        stream: stream.clone(),
        rounds: if quick { 1 } else { 7 },
        iters: if quick { 2 } else { 20 },
    };
    let table = Tensor::randn(0f32, 1.0, (rows, dim), &dev)?;
    let ids = random_ids(n, rows, 1);
    let ids_dev = Tensor::new(ids.as_slice(), &dev)?;
    let src = Tensor::randn(0f32, 1.0, (n, dim), &dev)?;
    let mut cases = BTreeMap::new();
    let bytes = (n * dim * 4) as f64;

    // Lookup: our gather kernel vs candle's index_select vs a device-to-device copy.
    let gather = Gather::new(&table, &ids)?;
    let copy_src = stream.alloc_zeros::<f32>(n * dim)?;
    let mut copy_dst = stream.alloc_zeros::<f32>(n * dim)?;
    let mut c = timer.run(vec![
        ("ours_kernel", true, Box::new(|| done(gather.run()))),
        (
            "ours_call",
            false,
            Box::new(|| done(cuda::gather(&table, &ids))),
        ),
        (
            "candle_index_select",
            true,
            Box::new(|| done(table.index_select(&ids_dev, 0))),
        ),
        (
            "copy_same_bytes",
            true,
            Box::new(|| done(stream.memcpy_dtod(&copy_src, &mut copy_dst))),
        ),
    ]);
    ratio(
        &mut c,
        "kernel_vs_copy_bandwidth",
        "copy_same_bytes",
        "ours_kernel",
    );
    ratio(
        &mut c,
        "speedup_vs_candle",
        "candle_index_select",
        "ours_kernel",
    );
    if let Some(t) = median(&c, "ours_kernel") {
        c.insert("kernel_gb_per_s".into(), json!(2.0 * bytes / t / 1e9));
    }
    cases.insert("lookup", c);

    // Sparse backward: sort + segment reduce vs candle's dense route (zeros + index_add).
    let plan = SegmentPlan::new(&ids, rows, None)?;
    let segs = Segments::new(&src, &plan, &plan.order, None)?;
    let mut c = timer.run(vec![
        ("ours_kernel", true, Box::new(|| done(segs.reduce(&src)))),
        (
            "ours_call",
            false,
            Box::new(|| done(cuda::embedding_backward(&ids, &src, rows, None, false))),
        ),
        (
            "candle_dense_index_add",
            false,
            Box::new(|| {
                done(Tensor::zeros((rows, dim), DType::F32, &dev)?.index_add(&ids_dev, &src, 0))
            }),
        ),
    ]);
    ratio(
        &mut c,
        "speedup_vs_candle",
        "candle_dense_index_add",
        "ours_call",
    );
    c.insert("distinct_rows".into(), json!(plan.num_segments()));
    cases.insert("backward_coalesce", c);

    // Scatter-add into a table: ours (copy + sorted segment add) vs candle's index_add.
    let mut c = timer.run(vec![
        (
            "ours_kernel_in_place",
            true,
            Box::new(|| done(segs.add_into(&src, &table))),
        ),
        (
            "ours_call",
            false,
            Box::new(|| done(cuda::index_add(&table, &ids, &src))),
        ),
        (
            "candle_index_add",
            false,
            Box::new(|| done(table.index_add(&ids_dev, &src, 0))),
        ),
    ]);
    ratio(&mut c, "speedup_vs_candle", "candle_index_add", "ours_call");
    cases.insert("scatter_add", c);

    // EmbeddingBag (sum) forward, and SparseAdam on the rows of a coalesced gradient.
    let nbags = n / 16;
    let bounds: Vec<usize> = (0..=nbags).map(|b| b * 16).collect();
    let bags = Bags {
        ids: &ids[..],
        bounds,
    };
    let grad = SparseGrad::from_coalesced_unchecked(plan.rows.clone(), segs.reduce(&src)?, rows);
    let (m, v) = (table.zeros_like()?, table.zeros_like()?);
    let mut step = 0u64;
    let c = timer.run(vec![
        (
            "ours_bag_sum_call",
            false,
            Box::new(|| done(cuda::bag_forward(&table, &bags, None, BagMode::Sum, None))),
        ),
        (
            "ours_sparse_adam_call",
            false,
            Box::new(|| {
                step += 1;
                done(cuda::sparse_adam_step(
                    &table,
                    &m,
                    &v,
                    &grad,
                    1e-3,
                    (0.9, 0.999),
                    1e-8,
                    step,
                ))
            }),
        ),
    ]);
    cases.insert("bag_and_sparse_adam", c);

    // RoPE forward (half layout): ours vs candle-nn's fused rope vs the rotate-half candle ops.
    let (b, h, t, hd) = if quick {
        (1, 2, 16, 64)
    } else {
        (8, 32, 1024, 128)
    };
    let x = Tensor::randn(0f32, 1.0, (b, h, t, hd), &dev)?;
    let cos = Tensor::randn(0f32, 1.0, (t, hd / 2), &dev)?;
    let sin = Tensor::randn(0f32, 1.0, (t, hd / 2), &dev)?;
    let rotate_half = || -> Res<Tensor> {
        let (x1, x2) = (x.narrow(3, 0, hd / 2)?, x.narrow(3, hd / 2, hd / 2)?);
        let (c2, s2) = (
            Tensor::cat(&[&cos, &cos], 1)?,
            Tensor::cat(&[&sin, &sin], 1)?,
        );
        let rot = Tensor::cat(&[&x2.neg()?, &x1], 3)?;
        Ok((x.broadcast_mul(&c2)? + rot.broadcast_mul(&s2)?)?)
    };
    let mut c = timer.run(vec![
        (
            "ours_kernel",
            true,
            Box::new(|| done(cuda::rope(&x, &cos, &sin, false, false))),
        ),
        (
            "candle_nn_fused_rope",
            true,
            Box::new(|| done(candle_nn::rotary_emb::rope(&x, &cos, &sin))),
        ),
        (
            "candle_rotate_half_ops",
            true,
            Box::new(|| done(rotate_half())),
        ),
    ]);
    ratio(
        &mut c,
        "speedup_vs_candle_ops",
        "candle_rotate_half_ops",
        "ours_kernel",
    );
    ratio(
        &mut c,
        "speedup_vs_candle_fused",
        "candle_nn_fused_rope",
        "ours_kernel",
    );
    cases.insert("rope_forward", c);

    let meta = json!({
        "gpu": ctx.name()?,
        "compute_capability": format!("{:?}", ctx.compute_capability()?),
        "quick": quick,
        "rounds": timer.rounds,
        "iters_per_round": timer.iters,
        "sizes": {"rows": rows, "dim": dim, "n": n, "rope": [b, h, t, hd]},
        "method": "interleaved rounds; kernel labels: CUDA events on candle's stream, inputs on \
                   the device; call labels: the public function, wall clock between syncs",
    });
    write(&json!({"meta": meta, "cases": cases}))
}

fn write(v: &Value) -> Res<()> {
    let text = serde_json::to_string_pretty(v)?;
    match std::env::var_os("CANDLE_EMBED_BENCH_JSON") {
        Some(p) => std::fs::write(p, &text)?,
        None => println!("{text}"),
    }
    println!("{}", serde_json::to_string(&v["cases"])?);
    Ok(())
}

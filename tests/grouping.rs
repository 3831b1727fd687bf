//! Every caller of the grouping primitive (`sparse::coalesce`) against a float64 reference
//! written here from the formula, never from the code under test: the bag backward (sum, mean,
//! max, weights, padding), weight tying's backward (shared and per-row candidates), `max_norm`'s
//! unique rows, and the GPU segment plans; on small random inputs (serial paths) and on a large
//! one (parallel paths, 1 and 4 threads alike).

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use candle_embed::kernels::segments::SegmentPlan;
use candle_embed::techniques::attend::Targets;
use candle_embed::{
    threads, BagMode, Embedding, EmbeddingBag, EmbeddingBagConfig, EmbeddingConfig, SparseGrad,
};
use proptest::prelude::*;

mod common;
use common::Host;

/// Rows of `(id -> f64 gradient row)`, ids ascending: a reference coalesced gradient.
type Reference = BTreeMap<i64, Vec<f64>>;

fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|k| (((k as u64 * 2654435761 + seed * 97) % 2001) as f64 - 1000.0) / 311.0)
        .collect()
}

fn table(v: usize, d: usize, dtype: DType, seed: u64) -> Tensor {
    Tensor::from_vec(values(v * d, seed), (v, d), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// The gradient's rows as f64, checked against `want` (same ids; values within `tol`, relative).
fn assert_matches(got: &SparseGrad, want: &Reference, tol: f64) {
    let ids: Vec<i64> = want.keys().copied().collect();
    assert_eq!(got.indices(), ids.as_slice());
    let vals: Vec<f64> = got.values().vec1();
    let d = got.dim();
    for (k, row) in want.values().enumerate() {
        for (c, &w) in row.iter().enumerate() {
            let g = vals[k * d + c];
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "row {} col {c}: {g} vs {w}",
                ids[k]
            );
        }
    }
}

/// Bags from sorted random offsets (some empty).
fn offsets(n: usize, bags: usize, seed: u64) -> Vec<i64> {
    let mut o: Vec<i64> = (0..bags)
        .map(|b| ((b as u64 * 7919 + seed * 31) % (n as u64 + 1)) as i64)
        .collect();
    o.sort_unstable();
    if let Some(f) = o.first_mut() {
        *f = 0;
    }
    o
}

/// `dW[i] = sum_{k: ids[k] = i, not padding} s_k g[bag(k)]` (sum: `s_k = w_k`, mean:
/// `1/count(bag)`); max: each column's gradient to its first argmax position.
fn bag_reference(
    (w, d): (&[f64], usize),
    ids: &[i64],
    bounds: &[usize],
    g: &[f64],
    mode: BagMode,
    pad: Option<i64>,
    weights: Option<&[f64]>,
) -> Reference {
    let mut out = Reference::new();
    for (b, win) in bounds.windows(2).enumerate() {
        let kept: Vec<usize> = (win[0]..win[1]).filter(|&k| Some(ids[k]) != pad).collect();
        for &k in &kept {
            out.entry(ids[k]).or_insert_with(|| vec![0.0; d]);
        }
        for c in 0..d {
            match mode {
                BagMode::Max => {
                    let best = kept.iter().copied().reduce(|a, k| {
                        if w[ids[k] as usize * d + c] > w[ids[a] as usize * d + c] {
                            k
                        } else {
                            a
                        }
                    });
                    if let Some(k) = best {
                        out.get_mut(&ids[k]).unwrap()[c] += g[b * d + c];
                    }
                }
                _ => {
                    for &k in &kept {
                        let s = match mode {
                            BagMode::Mean => 1.0 / kept.len() as f64,
                            _ => weights.map_or(1.0, |ws| ws[k]),
                        };
                        out.get_mut(&ids[k]).unwrap()[c] += s * g[b * d + c];
                    }
                }
            }
        }
    }
    out
}

fn check_bag(v: usize, d: usize, ids: &[i64], nbags: usize, mode: BagMode, pad: Option<i64>) {
    let w = table(v, d, DType::F64, 5);
    let wv: Vec<f64> = w.vec1();
    let off = offsets(ids.len(), nbags, ids.len() as u64);
    let mut bounds: Vec<usize> = off.iter().map(|&o| o as usize).collect();
    bounds.push(ids.len());
    let g = values(nbags * d, 9);
    let psw = (mode == BagMode::Sum).then(|| values(ids.len(), 13));
    let cfg = EmbeddingBagConfig {
        mode,
        padding_idx: pad,
        ..Default::default()
    };
    let bag = EmbeddingBag::from_pretrained(w, cfg).unwrap();
    let want = bag_reference((&wv, d), ids, &bounds, &g, mode, pad, psw.as_deref());
    let got = bag
        .backward::<i64, i64, f64>(ids, &[ids.len()], Some(&off), &g, psw.as_deref())
        .unwrap();
    assert_matches(&got, &want, 1e-12);
}

/// Weight tying: `logits[b, j] = x[b] . W[ids(b, j)]`; `dW[i] = sum_{(b, j) -> i} g[b, j] x[b]`,
/// `dx[b] = sum_j g[b, j] W[ids(b, j)]`; `ids(b, j)` is `shared[j]` or `per_row[b * k + j]`.
fn check_attend(v: usize, d: usize, n: usize, k: usize, per_row: bool, ids: &[u32]) {
    let emb =
        Embedding::from_pretrained(table(v, d, DType::F64, 3), EmbeddingConfig::default()).unwrap();
    let w: Vec<f64> = emb.weight().vec1();
    let x = values(n * d, 21);
    let g = values(n * k, 23);
    let id = |b: usize, j: usize| (if per_row { ids[b * k + j] } else { ids[j] }) as usize;
    let mut want = Reference::new();
    let mut want_dx = vec![0.0f64; n * d];
    for b in 0..n {
        for j in 0..k {
            let r = want.entry(id(b, j) as i64).or_insert_with(|| vec![0.0; d]);
            for c in 0..d {
                r[c] += g[b * k + j] * x[b * d + c];
                want_dx[b * d + c] += g[b * k + j] * w[id(b, j) * d + c];
            }
        }
    }
    let targets = if per_row {
        Targets::PerRow(ids, k)
    } else {
        Targets::Shared(ids)
    };
    let mut dx = vec![0.0f64; n * d];
    let got = emb
        .attend_backward_into(&x, n, &g, targets, &mut dx)
        .unwrap();
    assert_matches(&got, &want, 1e-12);
    for (a, b) in dx.iter().zip(&want_dx) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
    }
    // The portable path groups the same way.
    let xt = Tensor::from_vec(x.clone(), (n, d), &Device::Cpu).unwrap();
    let gt = Tensor::from_vec(g.clone(), (n, k), &Device::Cpu).unwrap();
    let (_, port) = emb.attend_backward_portable(&xt, &gt, targets).unwrap();
    assert_matches(&port, &want, 1e-12);
}

/// `max_norm`: every distinct looked-up row whose 2-norm exceeds `m` is scaled by
/// `m / (norm + 1e-7)`, once, whatever its multiplicity; other rows stay.
fn check_max_norm(v: usize, d: usize, ids: &[u32], m: f64) {
    let w0 = table(v, d, DType::F64, 7);
    let mut want: Vec<f64> = w0.vec1();
    let mut seen = vec![false; v];
    for &i in ids {
        let i = i as usize;
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let row = &mut want[i * d..(i + 1) * d];
        let norm = row.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > m {
            row.iter_mut().for_each(|a| *a *= m / (norm + 1e-7));
        }
    }
    let cfg = EmbeddingConfig {
        max_norm: Some(m),
        ..Default::default()
    };
    let emb = Embedding::from_pretrained(w0.copy().unwrap(), cfg).unwrap();
    let _: Vec<f64> = emb.lookup_vec(ids).unwrap();
    let got: Vec<f64> = emb.weight().vec1();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-14 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

/// Segment plans: positions grouped by id, ascending within a group, padding dropped.
fn check_segments(ids: &[u16], v: usize, skip: Option<usize>) {
    let mut want: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (p, &i) in ids.iter().enumerate() {
        if Some(i as usize) != skip {
            want.entry(i as i64).or_default().push(p as u32);
        }
    }
    let plan = SegmentPlan::new(ids, v, skip).unwrap();
    assert_eq!(plan.rows, want.keys().copied().collect::<Vec<_>>());
    let order: Vec<u32> = want.values().flatten().copied().collect();
    assert_eq!(plan.order, order);
    let mut offsets = vec![0u32];
    for g in want.values() {
        offsets.push(offsets.last().unwrap() + g.len() as u32);
    }
    assert_eq!(plan.offsets, offsets);
}

fn mode_of(m: u8) -> BagMode {
    [BagMode::Sum, BagMode::Mean, BagMode::Max][m as usize % 3]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn bag_backward_equals_f64_reference(
        v in 1usize..30, d in 1usize..7, ids in proptest::collection::vec(0i64..30, 0..120),
        nbags in 1usize..12, m in 0u8..3, pad in proptest::option::of(0i64..30),
    ) {
        let ids: Vec<i64> = ids.into_iter().map(|i| i % v as i64).collect();
        let pad = pad.map(|p| p % v as i64);
        check_bag(v, d, &ids, nbags, mode_of(m), pad);
    }

    #[test]
    fn attend_backward_equals_f64_reference(
        v in 1usize..25, d in 1usize..6, n in 1usize..8, k in 1usize..6, per_row: bool,
        ids in proptest::collection::vec(0u32..25, 40),
    ) {
        let ids: Vec<u32> = ids.into_iter().map(|i| i % v as u32).collect();
        let ids = if per_row { &ids[..n * k] } else { &ids[..k] };
        check_attend(v, d, n, k, per_row, ids);
    }

    #[test]
    fn max_norm_renormalises_each_unique_row_once(
        v in 1usize..40, d in 1usize..6, ids in proptest::collection::vec(0u32..40, 0..100),
        m in 0.1f64..4.0,
    ) {
        let ids: Vec<u32> = ids.into_iter().map(|i| i % v as u32).collect();
        check_max_norm(v, d, &ids, m);
    }

    #[test]
    fn segment_plan_equals_naive_grouping(
        ids in proptest::collection::vec(0u16..50, 0..300), skip in proptest::option::of(0usize..50),
    ) {
        check_segments(&ids, 50, skip);
    }
}

/// Past the kernels' serial thresholds, on 1 and 4 threads: the same references hold.
#[test]
fn large_inputs_take_the_parallel_paths_and_match_the_references() {
    let (v, n) = (3000usize, 60_000usize);
    let ids: Vec<i64> = (0..n as i64)
        .map(|k| (k * 7919 + k / 3) % v as i64)
        .collect();
    let ids_u32: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    let ids_u16: Vec<u16> = ids.iter().map(|&i| i as u16).collect();
    for t in [1usize, 4] {
        threads::set_num_threads(t).unwrap();
        for m in 0..3 {
            check_bag(v, 8, &ids, 2500, mode_of(m), Some(3));
        }
        check_attend(v, 16, 300, 200, true, &ids_u32[..60_000]);
        check_attend(v, 16, 300, 4000, false, &ids_u32[..4000]);
        check_max_norm(v, 8, &ids_u32, 1.0);
        check_segments(&ids_u16, v, Some(5));
    }
}

//! Similarity kernels: fast path == candle reference (norms, cosine, 3CosMul) within float
//! tolerance, top-k == a full sort of the same scores exactly (ties by row, NaN last,
//! exclusions, ranges), bit-identical for any thread count, every error variant.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_embed::dtype::Float;
use candle_embed::similarity::{
    row_norms, row_norms_portable, scores, scores_portable, top_k, top_k_sorted, Query, Scorer,
    Table,
};
use candle_embed::{threads, Error};
use common::{Host, Mix};
use proptest::prelude::*;

fn random(n: usize, seed: u64) -> Vec<f64> {
    let mut r = Mix(seed);
    (0..n).map(|_| r.unit() * 2.0 - 1.0).collect()
}

fn table<T: Float>(vals: &[f64]) -> Vec<T> {
    vals.iter().map(|&v| T::of_f64(v)).collect()
}

fn tensor<T: Float>(vals: &[T], n: usize, d: usize) -> Tensor {
    Tensor::from_slice(vals, (n, d), &Device::Cpu).unwrap()
}

/// Fast scores of `rows` vs the candle reference, for one scorer and range.
fn check_scores<T: Float>(n: usize, dim: usize, q: usize, scorer: Scorer, tol: f64) {
    let rows: Vec<T> = table(&random(n * dim, 1));
    let norms = row_norms(&rows, n, dim).unwrap();
    let qv: Vec<T::Acc> = random(q * dim, 2)
        .iter()
        .map(|&v| T::acc_from_f64(v))
        .collect();
    let t = Table::new(&rows, dim, &norms).unwrap();
    for range in [0..n, 3..n - 5, 7..7, n / 3..n / 2] {
        let query = Query {
            vectors: &qv,
            count: q,
            range: range.clone(),
            scorer,
        };
        let fast: Vec<f64> = scores(&t, &query)
            .unwrap()
            .iter()
            .map(|&v| T::acc_to_f64(v))
            .collect();
        let wide = |v: &[T::Acc]| v.iter().map(|&x| T::acc_to_f64(x)).collect::<Vec<f64>>();
        let norms_t = Tensor::from_slice(&wide(&norms), n, &Device::Cpu).unwrap();
        let q_t = Tensor::from_slice(&wide(&qv), (q, dim), &Device::Cpu).unwrap();
        let reference = scores_portable(&tensor(&rows, n, dim), &norms_t, &q_t, range, scorer)
            .unwrap()
            .vec1::<f64>();
        assert_eq!(fast.len(), reference.len());
        for (a, b) in fast.iter().zip(&reference) {
            assert!(
                (a - b).abs() <= tol * (1.0 + b.abs()),
                "{a} vs {b} ({scorer:?})"
            );
        }
    }
}

#[test]
fn norms_match_the_reference_for_every_dtype() {
    fn one<T: Float>(tol: f64) {
        let (n, dim) = (1000, 37);
        let rows: Vec<T> = table(&random(n * dim, 3));
        let fast = row_norms(&rows, n, dim).unwrap();
        let reference = row_norms_portable(&tensor(&rows, n, dim))
            .unwrap()
            .vec1::<f64>();
        for (a, b) in fast.iter().zip(&reference) {
            assert!((T::acc_to_f64(*a) - b).abs() <= tol * b, "{:?}", T::DT);
        }
    }
    one::<f32>(1e-7);
    one::<f64>(1e-15);
    one::<half::f16>(1e-7);
    one::<half::bf16>(1e-7);
    assert!(matches!(
        row_norms(&[1.0f32; 5], 2, 3),
        Err(Error::Shape(_))
    ));
    assert_eq!(row_norms::<f32>(&[], 4, 0).unwrap(), vec![0.0; 4]);
}

#[test]
fn cosine_scores_match_the_reference() {
    // 3000 rows of 300: several tiles; 1, 3 and 70 queries: one and two query blocks
    for q in [1, 3, 70] {
        check_scores::<f32>(3000, 300, q, Scorer::Cosine, 1e-5);
    }
    check_scores::<f64>(2100, 65, 5, Scorer::Cosine, 1e-12);
    check_scores::<half::f16>(2100, 65, 2, Scorer::Cosine, 1e-5);
    check_scores::<half::bf16>(2100, 65, 2, Scorer::Cosine, 1e-5);
}

#[test]
fn cosmul_scores_match_the_reference() {
    for (q, positive) in [(1, 1), (3, 2), (70, 40)] {
        check_scores::<f32>(2500, 100, q, Scorer::CosMul { positive }, 1e-4);
    }
    check_scores::<f64>(1500, 33, 3, Scorer::CosMul { positive: 1 }, 1e-12);
    check_scores::<half::bf16>(1500, 33, 3, Scorer::CosMul { positive: 2 }, 1e-4);
}

/// The fast top-k is the sorted order of the fast scores, exactly.
fn check_top_k(rows: &[f32], n: usize, dim: usize, q: usize, k: usize, exclude: &[Vec<usize>]) {
    let norms = row_norms(rows, n, dim).unwrap();
    let t = Table::new(rows, dim, &norms).unwrap();
    let qv: Vec<f32> = table(&random(q * dim, 9));
    // The whole table, and an inner range (empty, but still a valid range, for n < 4).
    let inner = 2.min(n)..n.saturating_sub(1).clamp(2.min(n), n);
    for range in [0..n, inner] {
        let query = Query {
            vectors: &qv,
            count: q,
            range: range.clone(),
            scorer: Scorer::Cosine,
        };
        let all = scores(&t, &query).unwrap();
        let span = range.end - range.start;
        let got = top_k(&t, &query, k, exclude).unwrap();
        assert_eq!(got.len(), q);
        for (o, top) in got.iter().enumerate() {
            let ex = exclude.get(o).map_or(&[][..], |e| e.as_slice());
            let want = top_k_sorted(&all[o * span..(o + 1) * span], range.start, k, ex);
            assert_eq!(top.len(), want.len());
            for (a, b) in top.iter().zip(&want) {
                assert_eq!(a.0, b.0);
                assert_eq!(a.1.to_bits(), b.1.to_bits());
            }
        }
    }
}

#[test]
fn top_k_is_the_sorted_order_with_ties_nan_and_exclusions() {
    let (n, dim) = (2500, 16);
    let mut rows: Vec<f32> = table(&random(n * dim, 5));
    // duplicated rows tie exactly; zero rows score NaN (0 / 0)
    for r in (0..n).step_by(7) {
        let src: Vec<f32> = rows[..dim].to_vec();
        rows[r * dim..(r + 1) * dim].copy_from_slice(&src);
    }
    for r in (3..n).step_by(11) {
        rows[r * dim..(r + 1) * dim].fill(0.0);
    }
    let ex = vec![vec![0, 7, 7, 14, 2499], vec![], vec![1]];
    for k in [0, 1, 5, 100, n + 10] {
        check_top_k(&rows, n, dim, 3, k, &ex);
        check_top_k(&rows, n, dim, 3, k, &[]);
    }
    // every tie and NaN in order: a table of one repeated row and zero rows
    let mut same = vec![0.5f32; 40 * 4];
    same[8..12].fill(0.0);
    let norms = row_norms(&same, 40, 4).unwrap();
    let t = Table::new(&same, 4, &norms).unwrap();
    let q = [1.0f32, 0.0, 0.0, 0.0];
    let query = Query {
        vectors: &q,
        count: 1,
        range: 0..40,
        scorer: Scorer::Cosine,
    };
    let top = top_k(&t, &query, 40, &[vec![5]]).unwrap().remove(0);
    let order: Vec<usize> = top.iter().map(|p| p.0).collect();
    let want: Vec<usize> = (0..40).filter(|&r| r != 5 && r != 2).chain([2]).collect();
    assert_eq!(order, want);
    assert!(top.last().unwrap().1.is_nan());
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    let (n, dim, q) = (5000, 50, 5);
    let rows: Vec<f32> = table(&random(n * dim, 11));
    let qv: Vec<f32> = table(&random(q * dim, 12));
    let run = || {
        let norms = row_norms(&rows, n, dim).unwrap();
        let t = Table::new(&rows, dim, &norms).unwrap();
        let mut out = Vec::new();
        for scorer in [Scorer::Cosine, Scorer::CosMul { positive: 3 }] {
            let query = Query {
                vectors: &qv,
                count: q,
                range: 0..n,
                scorer,
            };
            out.push(scores(&t, &query).unwrap());
            let tops = top_k(&t, &query, 17, &[]).unwrap();
            out.extend(
                tops.iter()
                    .map(|t| t.iter().map(|p| p.1).collect::<Vec<_>>()),
            );
        }
        (norms, out)
    };
    let before = threads::get_num_threads();
    threads::set_num_threads(1).unwrap();
    let one = run();
    threads::set_num_threads(3).unwrap();
    let three = run();
    threads::set_num_threads(before).unwrap();
    assert_eq!(one, three);
}

#[test]
fn errors_name_the_bad_input() {
    let rows = [1.0f32; 12];
    let norms = [1.0f32; 3];
    assert!(matches!(Table::new(&rows, 5, &norms), Err(Error::Shape(_))));
    let t = Table::new(&rows, 4, &norms).unwrap();
    let q = [1.0f32; 8];
    let query = |count, range, scorer| Query {
        vectors: &q,
        count,
        range,
        scorer,
    };
    let bad_len = query(3, 0..3, Scorer::Cosine);
    assert!(matches!(scores(&t, &bad_len), Err(Error::Shape(_))));
    #[allow(clippy::reversed_empty_ranges)]
    for range in [0..4, 2..1] {
        let e = top_k(&t, &query(2, range, Scorer::Cosine), 1, &[]).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    for positive in [0, 3] {
        let e = scores(&t, &query(2, 0..3, Scorer::CosMul { positive })).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    let e = top_k(&t, &query(2, 0..3, Scorer::Cosine), 1, &[vec![]]).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let norms_t = Tensor::new(&[1.0f32; 3], &Device::Cpu).unwrap();
    let rows_t = Tensor::new(&[[1.0f32; 4]; 3], &Device::Cpu).unwrap();
    let q_t = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    let e = scores_portable(&rows_t, &norms_t, &q_t, 0..4, Scorer::Cosine).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any small table (with repeated values, so ties are common), any k and exclusions.
    #[test]
    fn top_k_matches_a_full_sort(
        n in 1usize..300, dim in 1usize..6, q in 1usize..4, k in 0usize..40,
        levels in 1u64..4, seed in 0u64..1000, ex in proptest::collection::vec(0usize..300, 0..6),
    ) {
        let mut r = Mix(seed);
        let rows: Vec<f32> = (0..n * dim).map(|_| (r.next() % (levels + 1)) as f32 - 1.0).collect();
        let exclude: Vec<Vec<usize>> = (0..q).map(|_| ex.clone()).collect();
        check_top_k(&rows, n, dim, q, k, &exclude);
    }
}

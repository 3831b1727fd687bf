//! Quantized tables: fast quantizer == FBGEMM's scalar reference (bytes), fast kernel ==
//! portable candle path (a few ulps), every output type from one f32 value, the independent
//! dequantization formula, attend and the similarity scan against float64, errors.

use candle_embed::bag::BagMode;
use candle_embed::quantized::{
    Bits, QuantizedEmbedding, QuantizedEmbeddingBag, QuantizedRows, QuantizedTable,
};
use candle_embed::similarity::{scores, top_k, Query, Scorer};
use candle_embed::{Embedding, EmbeddingConfig, Error};

mod common;
use common::{Host, Mix};

fn values(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut g = Mix(seed);
    (0..rows * dim)
        .map(|k| ((g.unit() - 0.5) * 6.0) as f32 * if k % 17 == 0 { 40.0 } else { 1.0 })
        .collect()
}

/// Element `j` of row `r`, dequantized from the bytes by the format's definition.
fn by_definition(packed: &[u8], dim: usize, bits: Bits, r: usize, j: usize) -> f64 {
    let width = match bits {
        Bits::Eight => dim + 8,
        Bits::Four => dim / 2 + 4,
    };
    let row = &packed[r * width..(r + 1) * width];
    let (code, scale, bias) = match bits {
        Bits::Eight => (
            row[j],
            f32::from_le_bytes(row[dim..dim + 4].try_into().unwrap()),
            f32::from_le_bytes(row[dim + 4..dim + 8].try_into().unwrap()),
        ),
        Bits::Four => (
            (row[j / 2] >> (4 * (j % 2))) & 15,
            half::f16::from_le_bytes(row[dim / 2..dim / 2 + 2].try_into().unwrap()).to_f32(),
            half::f16::from_le_bytes(row[dim / 2 + 2..dim / 2 + 4].try_into().unwrap()).to_f32(),
        ),
    };
    f64::from(scale).mul_add(f64::from(code), f64::from(bias))
}

#[test]
fn fast_quantizer_equals_reference_for_every_width_and_input_type() {
    for bits in [Bits::Eight, Bits::Four] {
        for dim in [2usize, 8, 30, 64, 130] {
            let v = values(70, dim, dim as u64);
            let fast = QuantizedTable::quantize(&v, 70, dim, bits).unwrap();
            let reference = QuantizedTable::quantize_reference(&v, 70, dim, bits).unwrap();
            assert_eq!(fast.to_packed().unwrap(), reference.to_packed().unwrap());
            // f16 input quantizes as its exact f32 values
            let h: Vec<half::f16> = v.iter().map(|&x| half::f16::from_f32(x)).collect();
            let hf: Vec<f32> = h.iter().map(|x| x.to_f32()).collect();
            assert_eq!(
                QuantizedTable::quantize(&h, 70, dim, bits)
                    .unwrap()
                    .to_packed()
                    .unwrap(),
                QuantizedTable::quantize(&hf, 70, dim, bits)
                    .unwrap()
                    .to_packed()
                    .unwrap()
            );
        }
    }
}

#[test]
fn lookups_are_the_formula_rounded_once_into_every_output_type() {
    for bits in [Bits::Eight, Bits::Four] {
        let (rows, dim) = (40, 18);
        let q = QuantizedEmbedding::new(
            QuantizedTable::quantize(&values(rows, dim, 3), rows, dim, bits).unwrap(),
            None,
        )
        .unwrap();
        let packed = q.table().to_packed().unwrap();
        let ids: Vec<u32> = (0..rows as u32).rev().chain([5, 5, 0]).collect();
        let y32 = q.lookup_vec::<u32, f32>(&ids).unwrap();
        let y16 = q.lookup_vec::<u32, half::f16>(&ids).unwrap();
        let yb16 = q.lookup_vec::<u32, half::bf16>(&ids).unwrap();
        let y64 = q.lookup_vec::<u32, f64>(&ids).unwrap();
        for (k, &id) in ids.iter().enumerate() {
            for j in 0..dim {
                let exact = by_definition(&packed, dim, bits, id as usize, j);
                let v = y32[k * dim + j];
                // correctly rounded: within half an ulp of the exact value (one rounding)
                let ulp = f64::from(f32::from_bits(v.abs().to_bits() + 1) - v.abs());
                assert!((f64::from(v) - exact).abs() <= ulp / 2.0, "{v} vs {exact}");
                assert_eq!(y16[k * dim + j], half::f16::from_f32(v));
                assert_eq!(yb16[k * dim + j], half::bf16::from_f32(v));
                assert_eq!(y64[k * dim + j], f64::from(v));
            }
        }
        let portable = q.lookup_portable(&ids, &[ids.len()]).unwrap().vec1::<f32>();
        for (a, b) in y32.iter().zip(&portable) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}

#[test]
fn bags_fast_equal_portable_for_every_mode() {
    let (rows, dim) = (50, 20);
    let v = values(rows, dim, 9);
    let mut g = Mix(4);
    let ids: Vec<i64> = (0..120).map(|_| (g.next() % rows as u64) as i64).collect();
    let offsets = [0i64, 0, 7, 60, 61, 120];
    let weights: Vec<f32> = (0..120).map(|k| (k as f32 - 60.0) / 30.0).collect();
    for bits in [Bits::Eight, Bits::Four] {
        for mode in [BagMode::Sum, BagMode::Mean, BagMode::Max] {
            let table = QuantizedTable::quantize(&v, rows, dim, bits).unwrap();
            let q = QuantizedEmbeddingBag::new(table, mode, Some(3), false).unwrap();
            let w = (mode == BagMode::Sum).then_some(weights.as_slice());
            let fast = q
                .forward_vec::<i64, i64, f32>(&ids, &[120], Some(&offsets), w)
                .unwrap();
            let portable = q
                .forward_portable(&ids, &[120], Some(&offsets), w)
                .unwrap()
                .vec1::<f32>();
            for (a, b) in fast.iter().zip(&portable) {
                assert!(
                    (a - b).abs() <= 2e-4 * b.abs().max(10.0),
                    "{mode:?}: {a} vs {b}"
                );
            }
            assert!(fast[..dim].iter().all(|&x| x == 0.0), "empty bag");
        }
    }
}

#[test]
fn attend_equals_float64_scores_of_the_dequantized_rows() {
    for bits in [Bits::Eight, Bits::Four] {
        let (rows, dim, n) = (300, 34, 3);
        let table = QuantizedTable::quantize(&values(rows, dim, 1), rows, dim, bits).unwrap();
        let deq = table.dequantize().unwrap();
        let x = values(n, dim, 2);
        let got = table.attend(&x, n).unwrap();
        let norms = table.row_norms().unwrap();
        for i in 0..n {
            for r in 0..rows {
                let row = &deq[r * dim..(r + 1) * dim];
                let want: f64 = (0..dim)
                    .map(|j| f64::from(x[i * dim + j]) * f64::from(row[j]))
                    .sum();
                let scale: f64 = (0..dim)
                    .map(|j| (f64::from(x[i * dim + j]) * f64::from(row[j])).abs())
                    .sum();
                assert!((f64::from(got[i * rows + r]) - want).abs() <= 1e-5 * scale.max(1.0));
                let norm: f64 = row
                    .iter()
                    .map(|&e| f64::from(e).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!((f64::from(norms[r]) - norm).abs() <= 1e-5 * norm.max(1.0));
            }
        }
    }
}

/// The scan over quantized rows (KeyedVectors' int8 `most_similar`): cosine and 3CosMul scores
/// equal float64 arithmetic on the dequantized rows within float32's rounding of the terms,
/// and top-k is the float64 top-k whenever the float64 gap at the boundary exceeds that error.
#[test]
fn similarity_scan_equals_float64_of_the_dequantized_rows() {
    for bits in [Bits::Eight, Bits::Four] {
        // 5000 rows of 40: several tiles; one and several query vectors per output
        let (rows, dim) = (5000, 40);
        let table = QuantizedTable::quantize(&values(rows, dim, 3), rows, dim, bits).unwrap();
        let deq = table.dequantize().unwrap();
        let norms = table.row_norms().unwrap();
        for (nq, scorer) in [
            (2, Scorer::Cosine),
            (6, Scorer::Cosine),
            (3, Scorer::CosMul { positive: 2 }),
        ] {
            // unit query vectors, as KeyedVectors passes them
            let mut x = values(nq, dim, 4);
            for q in x.chunks_exact_mut(dim) {
                let n = q.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt() as f32;
                q.iter_mut().for_each(|v| *v /= n);
            }
            let query = Query {
                vectors: &x,
                count: nq,
                range: 7..rows - 3,
                scorer,
            };
            let got = table.with_bytes(|p| {
                let src = QuantizedRows::new(table.layout(), p, &norms).unwrap();
                (
                    scores(&src, &query).unwrap(),
                    top_k(&src, &query, 5, &[]).unwrap(),
                )
            });
            let row = |r: usize| &deq[r * dim..(r + 1) * dim];
            let norm = |r: usize| {
                row(r)
                    .iter()
                    .map(|&e| f64::from(e).powi(2))
                    .sum::<f64>()
                    .sqrt()
            };
            let cos = |i: usize, r: usize| -> f64 {
                let dot: f64 = (0..dim)
                    .map(|j| f64::from(x[i * dim + j]) * f64::from(row(r)[j]))
                    .sum();
                dot / norm(r)
            };
            // float32 rounding of `scale (x . codes) + bias sum(x)`: relative to the terms'
            // magnitudes (|scale code| <= 2 max|row|, |bias| <= max|row|), not to the result
            let err = |i: usize, r: usize| -> f64 {
                let max = row(r).iter().fold(0f64, |m, &e| m.max(f64::from(e).abs()));
                let sum_x: f64 = x[i * dim..(i + 1) * dim]
                    .iter()
                    .map(|v| f64::from(v.abs()))
                    .sum();
                1e-5 * 3.0 * max * sum_x / norm(r) + 1e-7
            };
            let m = |i: usize, r: usize| (1.0 + cos(i, r)) / 2.0;
            let want = |o: usize, r: usize| -> (f64, f64) {
                match scorer {
                    Scorer::Cosine => (cos(o, r), err(o, r)),
                    Scorer::CosMul { positive } => {
                        let p: f64 = (0..positive).map(|i| m(i, r)).product();
                        let n: f64 = (positive..nq).map(|i| m(i, r)).product();
                        let s = p / (n + 1e-6);
                        // each term's relative error err / (2 m), summed; twice that
                        let rel: f64 = (0..nq).map(|i| err(i, r) / (2.0 * m(i, r))).sum();
                        (s, 2.0 * s.abs() * rel + 1e-7)
                    }
                }
            };
            let span = query.range.len();
            for (o, ranked) in got.1.iter().enumerate() {
                let line = &got.0[o * span..(o + 1) * span];
                for (k, r) in query.range.clone().enumerate() {
                    let (w, tol) = want(o, r);
                    let g = f64::from(line[k]);
                    assert!(
                        (g - w).abs() <= tol,
                        "{bits:?} {scorer:?} row {r}: {g} vs {w}"
                    );
                }
                let mut order: Vec<(usize, f64)> =
                    query.range.clone().map(|r| (r, want(o, r).0)).collect();
                order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                if order[4].1 - order[5].1 > 2.0 * want(o, order[4].0).1 + 1e-6 {
                    let rows_got: Vec<usize> = ranked.iter().map(|&(r, _)| r).collect();
                    let rows_want: Vec<usize> = order[..5].iter().map(|&(r, _)| r).collect();
                    assert_eq!(rows_got.len(), 5);
                    let (mut a, mut b) = (rows_got.clone(), rows_want.clone());
                    a.sort_unstable();
                    b.sort_unstable();
                    assert_eq!(a, b, "{bits:?} {scorer:?}");
                }
            }
        }
        // a norm per row, or a shape error
        let err = table.with_bytes(|p| QuantizedRows::new(table.layout(), p, &norms[1..]).err());
        assert!(matches!(err, Some(Error::Shape(_))));
    }
}

#[test]
fn errors_are_typed_and_change_nothing() {
    let v = values(6, 4, 0);
    assert!(matches!(Bits::new(2), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        QuantizedTable::quantize(&v, 6, 3, Bits::Eight),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        QuantizedTable::quantize(&values(2, 3, 0), 2, 3, Bits::Four),
        Err(Error::InvalidArgument(_))
    ));
    let q = QuantizedEmbedding::new(
        QuantizedTable::quantize(&v, 6, 4, Bits::Eight).unwrap(),
        None,
    )
    .unwrap();
    let before = q.table().to_packed().unwrap();
    let mut out = vec![0f32; 8];
    assert!(matches!(
        q.lookup_into(&[1i32, 6], &mut out),
        Err(Error::IndexOutOfRange {
            index: 6,
            size: 6,
            ..
        })
    ));
    assert!(matches!(
        q.lookup_into(&[1i32], &mut out),
        Err(Error::Shape(_))
    ));
    assert!(out.iter().all(|&x| x == 0.0));
    assert_eq!(q.table().to_packed().unwrap(), before);
    let mut packed = before.clone();
    packed[12 + 4..12 + 8].copy_from_slice(&f32::INFINITY.to_le_bytes());
    assert!(matches!(
        QuantizedTable::from_packed(packed, 6, 12, Bits::Eight),
        Err(Error::InvalidArgument(m)) if m.contains("packed row 1")
    ));
    let emb = Embedding::from_pretrained(
        candle_core::Tensor::from_vec(v, (6, 4), &candle_core::Device::Cpu).unwrap(),
        EmbeddingConfig {
            max_norm: Some(1.0),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        emb.quantize(Bits::Eight),
        Err(Error::InvalidArgument(_))
    ));
}

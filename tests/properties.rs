//! Property tests on id validation and the CPU kernels, against naive references written here:
//! `ids::validate` accepts exactly the in-range ids and names the first bad one (sequential and
//! parallel paths alike), lookup == naive gather == portable path, coalesce == BTreeMap sums,
//! index_add == naive sums, and every kernel error leaves its inputs/outputs untouched.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use candle_embed::sparse::{coalesce_rows, index_add, CoalesceOptions};
use candle_embed::{ids, Embedding, EmbeddingConfig, Error};
use proptest::prelude::*;

mod common;
use common::Host;

fn table(v: usize, d: usize, seed: u64) -> Embedding {
    Embedding::new(
        v,
        d,
        EmbeddingConfig::default(),
        DType::F32,
        &Device::Cpu,
        Some(seed),
    )
    .unwrap()
}

fn first_bad(ids: &[i64], size: usize) -> Option<i64> {
    ids.iter()
        .copied()
        .find(|&i| i < 0 || i as i128 >= size as i128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn validate_accepts_exactly_in_range(ids in proptest::collection::vec(-5i64..60, 0..200), size in 0usize..64) {
        match (ids::validate(&ids, size, "index", "a table"), first_bad(&ids, size)) {
            (Ok(()), None) => {}
            (Err(Error::IndexOutOfRange { index, size: s, .. }), Some(bad)) => {
                prop_assert_eq!(index, bad as i128);
                prop_assert_eq!(s, size);
            }
            (r, want) => prop_assert!(false, "validate gave {:?}, expected first bad {:?}", r, want),
        }
    }

    #[test]
    fn validate_wide_unsigned(ids in proptest::collection::vec(any::<u64>(), 1..50), size in 1usize..1000) {
        let bad = ids.iter().copied().find(|&i| i as u128 >= size as u128);
        match ids::validate(&ids, size, "index", "a table") {
            Ok(()) => prop_assert!(bad.is_none()),
            // u64 beyond i64::MAX must not wrap negative in the message
            Err(Error::IndexOutOfRange { index, .. }) => prop_assert_eq!(Some(index), bad.map(|b| b as i128)),
            Err(e) => prop_assert!(false, "wrong error {:?}", e),
        }
    }

    #[test]
    fn validate_parallel_path_reports_first_bad(pos in 0usize..70_000, second in 0usize..70_000, bad in prop_oneof![Just(-1i64), Just(i64::MAX), 100i64..1000]) {
        // >= 1 << 15 ids: the parallel search; the lowest position must win whatever the split
        let mut ids = vec![3i64; 70_000];
        ids[pos] = bad;
        ids[second] = -7;
        let want = if second < pos { -7 } else { bad } as i128;
        match ids::validate(&ids, 100, "index", "a table") {
            Err(Error::IndexOutOfRange { index, .. }) => prop_assert_eq!(index, want),
            r => prop_assert!(false, "{:?}", r),
        }
    }

    #[test]
    fn lookup_equals_naive_gather_and_portable(v in 1usize..80, d in 1usize..33, ids in proptest::collection::vec(0u16..80, 0..150), seed in 0u64..1000) {
        let ids: Vec<u16> = ids.into_iter().map(|i| i % v as u16).collect();
        let emb = table(v, d, seed);
        let w: Vec<f32> = emb.weight().vec1();
        let got: Vec<f32> = emb.lookup_vec(&ids).unwrap();
        let want: Vec<f32> = ids.iter().flat_map(|&i| w[i as usize * d..(i as usize + 1) * d].to_vec()).collect();
        prop_assert_eq!(&got, &want);
        let portable: Vec<f32> = emb.lookup_portable(&ids, &[ids.len()]).unwrap().vec1();
        prop_assert_eq!(&portable, &want);
    }

    #[test]
    fn failed_lookup_leaves_out_untouched(v in 1usize..40, d in 1usize..9, n in 1usize..50, at in 0usize..50) {
        let emb = table(v, d, 1);
        let mut ids: Vec<i32> = (0..n).map(|i| (i % v) as i32).collect();
        ids[at % n] = v as i32;
        let mut out = vec![7.5f32; n * d];
        let r = emb.lookup_into(&ids, &mut out);
        prop_assert!(matches!(r, Err(Error::IndexOutOfRange { .. })), "{:?}", r);
        prop_assert!(out.iter().all(|&x| x == 7.5));
        // a wrong-sized out is a shape error, not a panic
        let mut short = vec![0f32; n * d - 1];
        ids[at % n] = 0;
        let r = emb.lookup_into(&ids, &mut short);
        prop_assert!(matches!(r, Err(Error::Shape(_))), "{:?}", r);
    }

    #[test]
    fn coalesce_equals_btreemap(ids in proptest::collection::vec(0i64..40, 0..300), d in 1usize..6, skip in proptest::option::of(0usize..40), scale: bool) {
        let vals: Vec<f64> = (0..ids.len() * d).map(|k| ((k * 37 % 101) as f64) / 7.0 - 3.0).collect();
        let mut want: BTreeMap<i64, (Vec<f64>, usize)> = BTreeMap::new();
        for (p, &i) in ids.iter().enumerate() {
            if Some(i as usize) == skip { continue; }
            let e = want.entry(i).or_insert((vec![0.0; d], 0));
            for c in 0..d { e.0[c] += vals[p * d + c]; }
            e.1 += 1;
        }
        let (u, s) = coalesce_rows(&ids, &vals, d, 40, CoalesceOptions { skip, scale_by_count: scale }).unwrap();
        prop_assert_eq!(u, want.keys().copied().collect::<Vec<_>>());
        for (k, (row, n)) in want.values().enumerate() {
            for c in 0..d {
                let w = if scale { row[c] / *n as f64 } else { row[c] };
                prop_assert!((s[k * d + c] - w).abs() <= 1e-12 * (1.0 + w.abs()));
            }
        }
    }

    #[test]
    fn coalesce_rejects_bad_ids_and_lengths(ids in proptest::collection::vec(-3i64..50, 1..100), d in 1usize..5, extra in 0usize..3) {
        let vals = vec![1f32; ids.len() * d + extra];
        let r = coalesce_rows(&ids, &vals, d, 40, CoalesceOptions::default());
        if extra > 0 {
            prop_assert!(matches!(r, Err(Error::Shape(_))), "{:?}", r);
        } else if first_bad(&ids, 40).is_some() {
            prop_assert!(matches!(r, Err(Error::IndexOutOfRange { .. })), "{:?}", r);
        } else {
            prop_assert!(r.is_ok());
        }
    }

    #[test]
    fn index_add_equals_naive(v in 1usize..30, d in 1usize..6, ids in proptest::collection::vec(0u32..30, 0..200)) {
        let ids: Vec<u32> = ids.into_iter().map(|i| i % v as u32).collect();
        let dst: Vec<f64> = (0..v * d).map(|k| k as f64 * 0.5).collect();
        let src: Vec<f64> = (0..ids.len() * d).map(|k| ((k * 13 % 17) as f64) - 8.0).collect();
        let mut want = dst.clone();
        for (p, &i) in ids.iter().enumerate() {
            for c in 0..d { want[i as usize * d + c] += src[p * d + c]; }
        }
        let got = index_add(&dst, d, &ids, &src).unwrap();
        // integer-valued: exact whatever the summation order
        prop_assert_eq!(got, want);
        let mut bad = ids.clone();
        bad.push(v as u32);
        let src2 = vec![0f64; bad.len() * d];
        let r = index_add(&dst, d, &bad, &src2);
        prop_assert!(matches!(r, Err(Error::IndexOutOfRange { .. })), "{:?}", r);
    }
}

#[test]
fn from_pretrained_rejects_bad_tables_without_panicking() {
    let dev = Device::Cpu;
    let cfg = EmbeddingConfig::default;
    assert!(
        Embedding::from_pretrained(Tensor::zeros(5, DType::F32, &dev).unwrap(), cfg()).is_err()
    );
    assert!(
        Embedding::from_pretrained(Tensor::zeros((2, 3, 4), DType::F32, &dev).unwrap(), cfg())
            .is_err()
    );
    assert!(matches!(
        Embedding::from_pretrained(Tensor::zeros((2, 3), DType::U32, &dev).unwrap(), cfg()),
        Err(Error::DType(_))
    ));
    let e = Embedding::from_pretrained(Tensor::zeros((0, 3), DType::F32, &dev).unwrap(), cfg())
        .unwrap();
    assert!(e.lookup_vec::<u8, f32>(&[]).unwrap().is_empty());
    assert!(matches!(
        e.lookup_vec::<u8, f32>(&[0]),
        Err(Error::IndexOutOfRange { size: 0, .. })
    ));
}

/// Forged headers (a count or dimension far beyond the file) must be a `Format` error, not a
/// capacity-overflow panic, an allocation abort or an out-of-bounds slice (found by fuzzing
/// the word2vec loaders).
#[test]
fn word2vec_forged_headers_are_errors() {
    use candle_embed::io::word2vec;
    let dir = std::env::temp_dir().join(format!("ce-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let huge = usize::MAX.to_string();
    // a binary file: header, then the word "w", a space and one little-endian 1.0f32
    let bin = |header: &str| [format!("{header}\nw ").as_bytes(), &[0, 0, 0x80, 0x3f]].concat();
    let cases: Vec<(Vec<u8>, bool)> = vec![
        (format!("{huge} 3\nw 1 2 3\n").into_bytes(), false),
        (b"100000000000000 3\nw 1 2 3\n".to_vec(), false),
        (format!("1 {huge}\nw 1 2 3\n").into_bytes(), false),
        (b"1 100000000000000\nw 1 2 3\n".to_vec(), false),
        (bin(&format!("{huge} 1")), true),
        (bin("100000000000000 1"), true),
        (bin(&format!("1 {huge}")), true),
        (bin(&format!("1 {}", usize::MAX / 4 + 1)), true),
    ];
    for (k, (bytes, binary)) in cases.into_iter().enumerate() {
        let p = dir.join(format!("{k}.txt"));
        std::fs::write(&p, &bytes).unwrap();
        let r = word2vec::read(&p, binary, false, None);
        assert!(matches!(r, Err(Error::Format(_))), "case {k}: {r:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

//! fastText: the bag-mean fast path against the portable EmbeddingBag path and a float64
//! reference; the `.bin` reader and writer (round trip, every truncation, byte flips, forged
//! sizes that must not allocate).

mod common;

use candle_core::{Device, Tensor};
use candle_embed::fasttext::bin::{self, Args, FacebookModel, Matrix, ModelRef};
use candle_embed::fasttext::{bag_means_into, bag_means_portable, Subwords};
use candle_embed::Error;
use common::{Host, Mix};

fn table(mix: &mut Mix, rows: usize, dim: usize) -> Vec<f32> {
    (0..rows * dim)
        .map(|_| (mix.unit() * 2.0 - 1.0) as f32)
        .collect()
}

const WORDS: [&str; 8] = [
    "night",
    "nights",
    "naïve",
    "東京",
    "",
    "a",
    "b c",
    "rechtsschutz",
];

#[test]
fn fast_path_equals_portable_path_and_float64_mean() {
    let mut mix = Mix(7);
    let (nwords, bucket, dim) = (5usize, 37usize, 19usize);
    let t = table(&mut mix, nwords + bucket, dim);
    let sub = Subwords::new(2, 4, bucket).unwrap();
    let items = WORDS
        .iter()
        .enumerate()
        .map(|(i, w)| ((i < nwords).then_some(i), w.as_bytes()));
    let bags = sub.bags(items, nwords).unwrap();
    let mut fast = vec![f32::NAN; bags.len() * dim];
    bag_means_into(&t, dim, &bags, &mut fast).unwrap();

    let tensor = Tensor::from_vec(t.clone(), (nwords + bucket, dim), &Device::Cpu).unwrap();
    let portable: Vec<f32> = bag_means_portable(&tensor, &bags).unwrap().vec1();
    assert_eq!(fast.len(), portable.len());
    for k in 0..bags.len() {
        let bag = bags.bag(k);
        for c in 0..dim {
            let want = if bag.is_empty() {
                0.0
            } else {
                bag.iter()
                    .map(|&r| f64::from(t[r as usize * dim + c]))
                    .sum::<f64>()
                    / bag.len() as f64
            };
            let (f, p) = (
                f64::from(fast[k * dim + c]),
                f64::from(portable[k * dim + c]),
            );
            assert!((f - want).abs() <= 1e-6, "bag {k} col {c}: {f} vs {want}");
            assert!(
                (f - p).abs() <= 1e-6,
                "bag {k} col {c}: fast {f} portable {p}"
            );
        }
    }
    // An in-vocabulary word's bag starts with its own row; "" has no 2-gram besides "<>".
    assert_eq!(bags.bag(0)[0], 0);
    assert_eq!(
        bags.bag(4),
        &[4, (nwords as u32) + bag_row("<>", bucket)][..]
    );
}

fn bag_row(gram: &str, bucket: usize) -> u32 {
    candle_embed::fasttext::fasttext_hash(gram.as_bytes()) % bucket as u32
}

#[test]
fn fast_path_checks_before_writing() {
    let sub = Subwords::new(3, 3, 4).unwrap();
    let bags = sub.bags([(None, &b"abc"[..])].into_iter(), 2).unwrap();
    let mut out = vec![7f32; 3];
    // A table with fewer rows than the bags reference: IndexError, output untouched.
    let err = bag_means_into(&[0f32; 3 * 3], 3, &bags, &mut out).unwrap_err();
    assert!(matches!(err, Error::IndexOutOfRange { .. }), "{err}");
    assert_eq!(out, [7.0; 3]);
    assert!(matches!(
        bag_means_into(&[0f32; 18], 3, &bags, &mut [0f32; 4]),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        bag_means_into(&[0f32; 17], 3, &bags, &mut out),
        Err(Error::Shape(_))
    ));
}

fn args(dim: i32, bucket: i32) -> Args {
    Args {
        dim,
        ws: 5,
        epoch: 5,
        min_count: 1,
        neg: 5,
        word_ngrams: 1,
        loss: bin::loss::NS,
        model: bin::model::SG,
        bucket,
        minn: 3,
        maxn: 6,
        lr_update_rate: 100,
        t: 1e-4,
    }
}

fn small_model() -> FacebookModel {
    let mut mix = Mix(3);
    let (dim, bucket) = (3usize, 4usize);
    let words: Vec<Vec<u8>> = ["</s>", "the", "straße"]
        .iter()
        .map(|w| w.as_bytes().to_vec())
        .collect();
    let n = words.len();
    FacebookModel {
        version: Some(bin::VERSION),
        args: args(dim as i32, bucket as i32),
        ntokens: 42,
        counts: vec![20, 15, 7],
        words,
        input: Matrix {
            rows: n + bucket,
            cols: dim,
            data: table(&mut mix, n + bucket, dim),
        },
        output: Some(Matrix {
            rows: n,
            cols: dim,
            data: table(&mut mix, n, dim),
        }),
    }
}

fn model_ref(m: &FacebookModel) -> ModelRef<'_> {
    ModelRef {
        args: &m.args,
        ntokens: m.ntokens,
        words: &m.words,
        counts: &m.counts,
        input: m.input.view(),
        output: m.output.as_ref().expect("output").view(),
    }
}

fn bytes_of(m: &FacebookModel) -> Vec<u8> {
    // One file per call: the tests run in parallel and each removes its file when done.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ce-ft-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("m{call}.bin"));
    bin::write(&path, model_ref(m)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

fn parse(bytes: &[u8], full: bool) -> candle_embed::Result<FacebookModel> {
    bin::read_from(bytes, bytes.len() as u64, "test.bin", full)
}

#[test]
fn write_then_read_round_trips() {
    let m = small_model();
    let bytes = bytes_of(&m);
    assert_eq!(&bytes[..4], &bin::MAGIC.to_le_bytes());
    assert_eq!(parse(&bytes, true).unwrap(), m);
    let vectors_only = parse(&bytes, false).unwrap();
    assert_eq!(vectors_only.output, None);
    assert_eq!(vectors_only.input, m.input);
}

#[test]
fn every_truncation_is_a_format_error() {
    let bytes = bytes_of(&small_model());
    for cut in 0..bytes.len() {
        for full in [true, false] {
            match parse(&bytes[..cut], full) {
                Err(Error::Format(_)) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(parse(&longer, true), Err(Error::Format(_))));
}

#[test]
fn byte_flips_never_panic() {
    let bytes = bytes_of(&small_model());
    let mut mix = Mix(11);
    for pos in 0..bytes.len() {
        for _ in 0..3 {
            let mut b = bytes.clone();
            b[pos] ^= 1 << (mix.next() % 8);
            // Either a model (a flipped weight or count) or a format error; nothing else.
            match parse(&b, true) {
                Ok(_) | Err(Error::Format(_)) => {}
                Err(e) => panic!("flip at {pos}: {e:?}"),
            }
        }
    }
}

/// Sizes in a forged header are bounded by the bytes left: a claim of 2**31 words or a 2**62-row
/// matrix is refused before anything that size is allocated.
#[test]
fn forged_sizes_are_refused_before_allocating() {
    let bytes = bytes_of(&small_model());
    let dict_at = 8 + 12 * 4 + 8; // magic, version, 12 ints, t
    let mut b = bytes.clone();
    b[dict_at..dict_at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    b[dict_at + 4..dict_at + 8].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(matches!(parse(&b, true), Err(Error::Format(m)) if m.contains("cannot fit")));

    let mut b = bytes.clone();
    let dim_at = 8;
    b[dim_at..dim_at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(matches!(parse(&b, true), Err(Error::Format(_))));

    // A matrix header claiming (2**62, 3): it must match the dictionary, so it is refused.
    let m = small_model();
    let words_end = dict_at + 12 + 16 + m.words.iter().map(|w| w.len() + 10).sum::<usize>();
    let mut b = bytes.clone();
    b[words_end + 1..words_end + 9].copy_from_slice(&(1i64 << 62).to_le_bytes());
    assert!(matches!(parse(&b, true), Err(Error::Format(msg)) if msg.contains("expected")));
}

#[test]
fn unsupported_models_are_refused_with_reasons() {
    let mut m = small_model();
    m.args.model = bin::model::SUP;
    let err = bin::write(std::path::Path::new("/nonexistent/x.bin"), model_ref(&m)).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(ref s) if s.contains("supervised")),
        "{err}"
    );

    let bytes = bytes_of(&small_model());
    let model_at = 8 + 7 * 4;
    let mut b = bytes.clone();
    b[model_at..model_at + 4].copy_from_slice(&3i32.to_le_bytes());
    assert!(matches!(parse(&b, true), Err(Error::Format(s)) if s.contains("supervised")));

    let quant_at = bytes.len() - (4 * 7 * 3 + 16) - (3 * 3 * 4 + 16 + 1) - 1;
    assert_eq!(bytes[quant_at], 0);
    let mut b = bytes.clone();
    b[quant_at] = 1;
    assert!(matches!(parse(&b, true), Err(Error::Format(s)) if s.contains("quantized")));

    let mut m = small_model();
    m.words[1] = b"a\0b".to_vec();
    let err = bin::write(std::path::Path::new("/nonexistent/x.bin"), model_ref(&m)).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(ref s) if s.contains("NUL")),
        "{err}"
    );

    let mut m = small_model();
    if let Some(o) = m.output.as_mut() {
        o.data.pop();
    }
    let err = bin::write(std::path::Path::new("/nonexistent/x.bin"), model_ref(&m)).unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
}

#[test]
fn non_finite_weights_are_refused() {
    let mut m = small_model();
    m.input.data[5] = f32::NAN;
    let bytes = bytes_of(&m);
    let err = parse(&bytes, true).unwrap_err();
    assert!(
        matches!(err, Error::Format(ref s) if s.contains("row 1, column 2")),
        "{err}"
    );
}

#[test]
fn old_format_files_read() {
    // gensim reads files without the magic number (fastText before v0.1.0's version 11): the
    // header starts at dim, no pruneidx_size, no quantization flags.
    let m = small_model();
    let new = bytes_of(&m);
    let mut old = Vec::new();
    old.extend_from_slice(&new[8..8 + 12 * 4 + 8]); // args from dim on
    let dict_at = 8 + 12 * 4 + 8;
    old.extend_from_slice(&new[dict_at..dict_at + 20]); // size nwords nlabels ntokens
    let words_at = dict_at + 28; // skip pruneidx_size
    let words_len: usize = m.words.iter().map(|w| w.len() + 10).sum();
    old.extend_from_slice(&new[words_at..words_at + words_len]);
    let input_at = words_at + words_len + 1;
    let input_len = 16 + m.input.data.len() * 4;
    old.extend_from_slice(&new[input_at..input_at + input_len]);
    old.extend_from_slice(&new[input_at + input_len + 1..]);
    let got = parse(&old, true).unwrap();
    assert_eq!(got.version, None);
    assert_eq!(
        (got.input, got.output, got.words),
        (m.input, m.output, m.words)
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes, any n-gram lengths: the count the buffers are reserved from is the count
        /// of n-grams produced, and every bag mean equals the float64 mean of its rows.
        #[test]
        fn counts_and_means_match_a_float64_reference(
            words in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..6),
            min_n in 0usize..5,
            max_n in 0usize..7,
            bucket in 1usize..40,
            seed in any::<u64>(),
        ) {
            let sub = Subwords::new(min_n, max_n, bucket).unwrap();
            let mut produced = 0;
            for w in &words {
                let mut n = 0;
                sub.for_each_ngram(w, &mut Vec::new(), |_| n += 1);
                prop_assert_eq!(n, sub.ngram_count(w));
                produced += n;
            }
            let nwords = 3usize;
            let dim = 5usize;
            let t = table(&mut Mix(seed), nwords + bucket, dim);
            let items = words.iter().enumerate().map(|(i, w)| ((i < nwords).then_some(i), w.as_slice()));
            let bags = sub.bags(items, nwords).unwrap();
            prop_assert_eq!(bags.ids.len(), produced + nwords.min(words.len()));
            let mut out = vec![0f32; words.len() * dim];
            bag_means_into(&t, dim, &bags, &mut out).unwrap();
            for k in 0..bags.len() {
                let bag = bags.bag(k);
                for c in 0..dim {
                    let want = if bag.is_empty() { 0.0 } else {
                        bag.iter().map(|&r| f64::from(t[r as usize * dim + c])).sum::<f64>() / bag.len() as f64
                    };
                    prop_assert!((f64::from(out[k * dim + c]) - want).abs() <= 1e-5);
                }
            }
        }
    }
}

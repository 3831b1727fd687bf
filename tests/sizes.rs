//! Sizes an outsider can ask for that no machine holds, and counts that overflow 64 bits: each
//! is a typed error (`Error::Memory` for a buffer that cannot exist, `Error::InvalidArgument`
//! for a count that overflows), never an abort, a panic or a wrapped value (issue #19, classes 1,
//! 2 and 4). Every size here fails its checked arithmetic before anything is allocated, so the
//! tests run in-process.

use candle_core::{DType, Device, Tensor};
use candle_embed::positional::alibi::{alibi_bias, alibi_bias_portable, alibi_slopes};
use candle_embed::positional::combined::position_ids_from_padding;
use candle_embed::positional::relative::{BucketConfig, RelativePositionBias};
use candle_embed::positional::rotary::{RotaryConfig, RotaryEmbedding};
use candle_embed::positional::sinusoidal::{
    sinusoidal_table, SinusoidalConfig, SinusoidalLayout, SinusoidalPositionalEncoding,
};
use candle_embed::word2vec::{self, Corpus, TrainConfig, Vocab};
use candle_embed::{Embedding, EmbeddingBag, EmbeddingBagConfig, EmbeddingConfig, Error};
use candle_embed::{Result, SparseGrad};

/// Far past `isize::MAX` bytes as soon as it is multiplied by an element size.
const HUGE: usize = 1 << 62;

fn is_memory<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::Memory(_)))
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::InvalidArgument(_)))
}

#[test]
fn tables_that_cannot_exist_are_memory_errors() {
    let cpu = &Device::Cpu;
    for (rows, dim) in [
        (HUGE, 1 << 10),
        (usize::MAX, usize::MAX),
        (usize::MAX / 2, 4),
    ] {
        let e = Embedding::new(rows, dim, EmbeddingConfig::default(), DType::F32, cpu, None);
        assert!(is_memory(e), "{rows} x {dim}");
        let b = EmbeddingBag::new(
            rows,
            dim,
            EmbeddingBagConfig::default(),
            DType::F16,
            cpu,
            None,
        );
        assert!(is_memory(b), "{rows} x {dim}");
    }
}

#[test]
fn positional_tables_that_cannot_exist_are_memory_errors() {
    let cpu = &Device::Cpu;
    let cfg = |max_len| SinusoidalConfig {
        max_len,
        ..Default::default()
    };
    assert!(is_memory(SinusoidalPositionalEncoding::new(
        8,
        cfg(HUGE),
        DType::F32,
        cpu
    )));
    // A zero-row table of 2^62 columns: its frequencies alone cannot exist.
    assert!(is_memory(SinusoidalPositionalEncoding::new(
        HUGE,
        cfg(0),
        DType::F32,
        cpu
    )));
    assert!(is_memory(sinusoidal_table::<f64>(
        0,
        HUGE,
        1e4,
        SinusoidalLayout::Concat
    )));
    // ALiBi: alibi_bias(2**62, 2, 2), (2**61, 1, 1) and their slopes.
    assert!(is_memory(alibi_bias::<f32>(HUGE, 2, 2, 0)));
    assert!(is_memory(alibi_bias::<f32>(HUGE / 2, 1, 1, 0)));
    assert!(is_memory(alibi_slopes(HUGE)));
    assert!(is_memory(alibi_bias_portable(
        HUGE,
        2,
        2,
        0,
        DType::F32,
        cpu
    )));
    // T5 bias of (H, q, k) past memory.
    let rel =
        RelativePositionBias::new(4, BucketConfig::default(), DType::F32, cpu, Some(0)).unwrap();
    assert!(is_memory(rel.bias::<f32>(HUGE, 4, 0)));
    assert!(is_memory(rel.bias_portable(HUGE, 4, 0)));
}

#[test]
fn rope_caches_that_cannot_exist_are_memory_errors() {
    // RotaryEmbedding(2**62): 2^61 frequencies (was a "capacity overflow" panic).
    assert!(is_memory(RotaryEmbedding::new(
        HUGE,
        RotaryConfig::default()
    )));
    let partial = RotaryConfig {
        partial_rotary_factor: 0.5,
        ..Default::default()
    };
    assert!(is_memory(RotaryEmbedding::new(HUGE, partial)));
}

#[test]
fn dense_gradient_of_a_table_too_large_is_a_memory_error() {
    // SparseGrad.from_rows([1], rows, 2**64 - 1).to_dense()
    for rows in [usize::MAX, HUGE] {
        let values = Tensor::ones((1, 4), DType::F32, &Device::Cpu).unwrap();
        let g = SparseGrad::new(vec![1], values, rows).unwrap();
        assert!(is_memory(g.to_dense()), "{rows}");
    }
}

#[test]
fn ids_past_2_pow_63_group_without_overflow() {
    // Embedding(2**64 - 1, 0).backward([2**63 + 5], ...): a zero-width table of 2^64 - 1 rows.
    let w = Tensor::zeros((usize::MAX, 0), DType::F32, &Device::Cpu).unwrap();
    let e = Embedding::from_pretrained(w, EmbeddingConfig::default()).unwrap();
    let ids = [(1u64 << 63) + 5, 3, (1u64 << 63) + 5];
    let g = e.backward::<u64, f32>(&ids, &[]).unwrap();
    assert_eq!(g.indices(), [3, ((1u64 << 63) + 5) as i64]);
    assert_eq!(g.shape(), (usize::MAX, 0));
}

#[test]
fn bags_whose_bounds_cannot_exist_are_memory_errors() {
    let w = Tensor::zeros((4, 0), DType::F32, &Device::Cpu).unwrap();
    let bag = EmbeddingBag::from_pretrained(w, EmbeddingBagConfig::default()).unwrap();
    // usize::MAX empty bags of a 2-D (B, 0) id array: B + 1 bounds cannot exist.
    let r = bag.forward_vec::<i64, i64, f32>(&[], &[usize::MAX, 0], None, None);
    assert!(is_memory(r));
    let r = bag.backward::<i64, i64, f32>(&[], &[usize::MAX, 0], None, &[], None);
    assert!(is_memory(r));
}

#[test]
fn position_ids_past_i64_are_invalid_not_wrapped() {
    // position_ids_from_padding(..., past_length=2**63 - 1)
    let ids = [5i64, 7, 1, 9];
    assert!(is_invalid(position_ids_from_padding(&ids, 4, 1, i64::MAX)));
    // A large padding_idx: the fourth non-padding id of a row passes i64::MAX.
    assert!(is_invalid(position_ids_from_padding(
        &ids,
        4,
        i64::MAX - 2,
        0
    )));
    // The largest positions that fit are exact.
    let got = position_ids_from_padding(&ids, 4, 1, i64::MAX - 5).unwrap();
    assert_eq!(
        got,
        [i64::MAX - 3, i64::MAX - 2, 1, i64::MAX - 1],
        "pos = cumsum(mask) + past + pad on non-padding ids"
    );
}

/// Train on a tiny corpus with `cfg` (one worker).
fn train(cfg: TrainConfig) -> Result<Vec<f32>> {
    let mut corpus = Corpus::new();
    corpus
        .push_sentence("a b c d e f a b c d e f".split(' '))
        .unwrap();
    corpus.push_sentence("b c d a e f".split(' ')).unwrap();
    let vocab = Vocab::build(&corpus, 1, 1e-3, 0.75).unwrap();
    let cfg = TrainConfig { workers: 1, ..cfg };
    word2vec::train(&corpus, &vocab, &cfg, &mut |_, _| true).map(|t| t.vectors)
}

#[test]
fn word2vec_sizes_that_cannot_exist_or_overflow_are_typed_errors() {
    // Word2Vec(..., epochs=2**62): jobs x epochs and words x epochs overflow 64 bits (they
    // wrapped to zero jobs: an untrained table).
    let epochs = TrainConfig {
        epochs: HUGE,
        vector_size: 4,
        ..Default::default()
    };
    assert!(is_invalid(train(epochs)));
    // Word2Vec(..., vector_size=2**62)
    let vector_size = TrainConfig {
        vector_size: HUGE,
        ..Default::default()
    };
    assert!(is_memory(train(vector_size)));
    assert!(is_memory(word2vec::model::init_vectors(3, HUGE, 0)));
}

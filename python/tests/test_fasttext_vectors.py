"""FastTextKeyedVectors: every word's vector against an independent NumPy implementation of
fastText's formula (``fasttext_ref``: hash, n-grams and means written from fastText's C++), in
and out of the vocabulary, plus gensim's own expectations ported from
``gensim/test/test_fasttext.py`` (test names cited)."""

from __future__ import annotations

import candle_embed as ce
import fasttext_ref as ref
import numpy as np
import pytest
from candle_embed.fasttext import FastTextKeyedVectors

VOCAB = ["night", "the", "and", "naïve", "東京", "</s>", "a"]
OOV = ["nights", "", "x", "naïvety", "東京都", "🚑🚒🚓🚕", "at the", "rechtsschutzversicherung"]


def make_kv(
    min_n: int = 3, max_n: int = 6, bucket: int = 97, dim: int = 8, seed: int = 0
) -> tuple[FastTextKeyedVectors, np.ndarray]:
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((len(VOCAB) + bucket, dim)).astype(np.float32)
    return FastTextKeyedVectors.from_tables(VOCAB, table.copy(), min_n, max_n, bucket), table


def test_reference_hash_matches_gensim_values() -> None:
    # The reference itself, against gensim's FTHashFunctionsTest.test_cython values.
    expected = {"команда": 1725507386, "mysterious": 1903186891, "北海道": 4096045468}
    assert {w: ref.ft_hash(w.encode()) for w in expected} == expected
    # NgramsTest.test_bytes_cy ("test", 3, 5)
    assert ref.ngrams("test", 3, 5) == [
        b"<te",
        b"<tes",
        b"<test",
        b"tes",
        b"test",
        b"test>",
        b"est",
        b"est>",
        b"st>",
    ]


@pytest.mark.parametrize(
    ("min_n", "max_n", "bucket"), [(3, 6, 97), (1, 3, 13), (2, 2, 1), (4, 9, 1000)]
)
def test_oov_vectors_equal_the_numpy_formula(min_n: int, max_n: int, bucket: int) -> None:
    kv, table = make_kv(min_n, max_n, bucket)
    for w in OOV:
        want = ref.word_vector(table, w, None, len(VOCAB), min_n, max_n, bucket)
        np.testing.assert_allclose(kv[w], want, rtol=1e-6, atol=1e-6, err_msg=w)
        assert kv[w].dtype == np.float32


@pytest.mark.parametrize(("min_n", "max_n", "bucket"), [(3, 6, 97), (1, 1, 5), (5, 3, 11)])
def test_vocabulary_vectors_are_the_mean_of_own_row_and_ngram_rows(
    min_n: int, max_n: int, bucket: int
) -> None:
    kv, table = make_kv(min_n, max_n, bucket)
    for i, w in enumerate(VOCAB):
        want = ref.word_vector(table, w, i, len(VOCAB), min_n, max_n, bucket)
        np.testing.assert_allclose(kv[w], want, rtol=1e-6, atol=1e-6, err_msg=w)
        np.testing.assert_allclose(kv.vectors[i], want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(kv.vectors_vocab, table[: len(VOCAB)])
    np.testing.assert_array_equal(kv.vectors_ngrams, table[len(VOCAB) :])


def test_norm_and_edits_of_the_tables() -> None:
    kv, table = make_kv()
    v = kv.get_vector("nights", norm=True)
    want = ref.word_vector(table, "nights", None, len(VOCAB), 3, 6, 97)
    np.testing.assert_allclose(v, want / np.linalg.norm(want), rtol=1e-5, atol=1e-6)
    # vectors_ngrams is a view of the table: editing it changes OOV vectors at once, and
    # vocabulary vectors after adjust_vectors() (gensim's rule).
    before = kv["night"].copy()
    kv.vectors_ngrams[:] = 0
    assert not np.any(kv["nights"])
    np.testing.assert_array_equal(kv["night"], before)
    kv.adjust_vectors()
    n_rows = len(ref.rows("night", 0, len(VOCAB), 3, 6, 97))
    np.testing.assert_allclose(kv["night"], table[0] / n_rows, rtol=1e-6)


def test_contains_and_lookup() -> None:
    # gensim test_fasttext.py::TestFastTextModel::test_contains and test_lookup.
    kv, _ = make_kv()
    assert "night" in kv.key_to_index and "night" in kv
    assert "nights" not in kv.key_to_index and "nights" in kv
    assert kv["nights"].shape == (8,)


def test_zero_buckets_behave_like_word2vec() -> None:
    # gensim test_fasttext.py::ZeroBucketTest::test_out_of_vocab (KeyError) and test_in_vocab.
    kv, table = make_kv(bucket=0)
    np.testing.assert_array_equal(kv["night"], table[0])
    assert "nights" not in kv
    with pytest.raises(KeyError):
        kv.get_vector("nights")
    with pytest.raises(ce.CandleEmbedKeyError):
        kv["nights"]


def test_no_ngrams_gives_the_origin() -> None:
    # A word with no n-gram (max_n < its length with markers is impossible here: use "" with
    # min_n = 3: "<>" is two characters) gets zeros, as fastText and gensim.
    kv, _ = make_kv()
    assert not np.any(kv[""])


def test_bad_words_are_typed_errors() -> None:
    kv, _ = make_kv()
    with pytest.raises(ce.CandleEmbedValueError):
        kv["\udc80abc"]  # lone surrogate: not encodable as UTF-8
    with pytest.raises(ce.CandleEmbedKeyError):
        kv.get_vector(3)  # type: ignore[arg-type]


def test_constructor_arguments_are_checked() -> None:
    # gensim's FastTextKeyedVectors(vector_size, min_n, max_n, bucket).
    kv = FastTextKeyedVectors(4, 3, 6, 10)
    assert (len(kv), kv.vectors_ngrams.shape, kv.vectors_vocab.shape) == (0, (10, 4), (0, 4))
    assert not np.any(kv["anything"])
    for bad in [dict(vector_size=0), dict(bucket=-1), dict(bucket=2**31), dict(min_n=-1)]:
        args = dict(vector_size=4, min_n=3, max_n=6, bucket=10) | bad
        with pytest.raises(ce.CandleEmbedValueError):
            FastTextKeyedVectors(**args)
    with pytest.raises(ce.CandleEmbedTypeError):
        FastTextKeyedVectors(4.0, 3, 6, 10)  # type: ignore[arg-type]
    with pytest.raises(ce.CandleEmbedValueError):
        FastTextKeyedVectors.from_tables(["a", "a"], np.zeros((12, 4)), 3, 6, 10)
    with pytest.raises(ce.CandleEmbedValueError):
        FastTextKeyedVectors.from_tables(["a"], np.zeros((12, 4)), 3, 6, 10)


def test_table_setters_check_shapes() -> None:
    kv, table = make_kv()
    with pytest.raises(ce.CandleEmbedValueError):
        kv.vectors_ngrams = np.zeros((5, 8))
    with pytest.raises(ce.CandleEmbedValueError):
        kv.vectors_vocab = np.zeros((len(VOCAB), 3))
    kv.vectors_ngrams = table[len(VOCAB) :] * 2
    np.testing.assert_allclose(
        kv["nights"], 2 * ref.word_vector(table, "nights", None, len(VOCAB), 3, 6, 97), rtol=1e-6
    )


def test_out_writes_into_a_given_array() -> None:
    kv, table = make_kv()
    out = np.empty((2, 8), np.float32)
    got = ce._native._ft_word_vectors(kv._input, len(VOCAB), ["x", "yz"], 3, 6, 97, False, out)
    assert got is out
    np.testing.assert_allclose(
        out[1], ref.word_vector(table, "yz", None, 7, 3, 6, 97), rtol=1e-6, atol=1e-7
    )
    with pytest.raises(ce.CandleEmbedValueError):  # out overlapping the table
        ce._native._ft_word_vectors(kv._input, 7, ["x"], 3, 6, 97, False, kv._input[:1])
    with pytest.raises(ce.CandleEmbedValueError):  # table rows != nwords + bucket
        ce._native._ft_word_vectors(kv._input, 6, ["x"], 3, 6, 97, False)
    with pytest.raises(ce.CandleEmbedTypeError):
        ce._native._ft_word_vectors(kv._input, 7, "abc", 3, 6, 97, False)

"""KeyedVectors beyond gensim's own test file (``test_gensim_keyedvectors.py``): issue #13's
defects 1 and 2, the rest of gensim's query surface checked against gensim run live on the same
vectors, files and options, safetensors save / memory-mapped load, and bad input (every error a
``CandleEmbedError``, state unchanged)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from candle_embed import CandleEmbedError
from candle_embed.keyed_vectors import KeyedVectors

gensim = pytest.importorskip("gensim")
from gensim.models import KeyedVectors as GKV  # noqa: E402
from gensim.test.utils import datapath  # noqa: E402

EUCLIDEAN = datapath("euclidean_vectors.bin")


# ``kv`` and ``gkv``: conftest.py (gensim's euclidean_vectors.bin, ours and gensim's)


def _same_answers(ours: list[tuple[Any, float]], theirs: list[tuple[Any, float]]) -> None:
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=2e-5, atol=1e-6)


# --- issue #13 defects ------------------------------------------------------------------------
def test_defect1_2d_positive_and_negative_rows_are_query_vectors(kv: Any, gkv: Any) -> None:
    pos, neg = kv.vectors[0:3], kv.vectors[10:12]
    _same_answers(
        kv.most_similar(positive=pos, negative=neg, topn=8),
        gkv.most_similar(positive=gkv.vectors[0:3], negative=gkv.vectors[10:12], topn=8),
    )
    with pytest.raises(ValueError) as info:
        kv.most_similar(positive=np.zeros((2, 2, kv.vector_size), np.float32))
    assert isinstance(info.value, CandleEmbedError)


@pytest.mark.parametrize("dummy4unknown", [True, False])
def test_defect2_word_pairs_oov_ratio_is_gensims(kv: Any, gkv: Any, dummy4unknown: bool) -> None:
    pairs = datapath("wordsim353.tsv")
    ours = kv.evaluate_word_pairs(pairs, dummy4unknown=dummy4unknown)
    theirs = gkv.evaluate_word_pairs(pairs, dummy4unknown=dummy4unknown)
    assert ours[2] == pytest.approx(69.12181303116147)  # gensim 4.4's number (issue #13)
    assert ours[2] == pytest.approx(theirs[2])
    assert ours[0][0] == pytest.approx(theirs[0][0], abs=1e-6)
    assert ours[1][0] == pytest.approx(theirs[1][0], abs=1e-6)


# --- the rest of the query surface, against gensim live ---------------------------------------
def test_cosmul_matches_gensim(kv: Any, gkv: Any) -> None:
    args = (["war", "peace"], ["call"])
    _same_answers(kv.most_similar_cosmul(*args, topn=7), gkv.most_similar_cosmul(*args, topn=7))
    np.testing.assert_allclose(
        kv.most_similar_cosmul("war", topn=None),
        gkv.most_similar_cosmul("war", topn=None),
        rtol=2e-5,
        atol=1e-6,
    )


def test_queries_match_gensim(kv: Any, gkv: Any) -> None:
    words = ["war", "peace", "call", "israel", "breakfast"]
    assert kv.doesnt_match(words) == gkv.doesnt_match(words)
    assert kv.n_similarity(["war", "peace"], ["call", "israel"]) == pytest.approx(
        gkv.n_similarity(["war", "peace"], ["call", "israel"]), rel=1e-5
    )
    np.testing.assert_allclose(
        kv.distances("war", ["peace", "call"]), gkv.distances("war", ["peace", "call"]), rtol=1e-5
    )
    np.testing.assert_allclose(kv.distances("war"), gkv.distances("war"), atol=2e-6)
    np.testing.assert_allclose(
        kv.most_similar("war", topn=None), gkv.most_similar("war", topn=None), atol=2e-6
    )
    assert kv.closer_than("peace", "call") == gkv.closer_than("peace", "call")
    assert kv.rank("peace", "call") == gkv.rank("peace", "call")
    got = [(w, float(s)) for s, w in kv.rank_by_centrality(words[:4])]
    want = [(w, float(s)) for s, w in gkv.rank_by_centrality(words[:4])]
    _same_answers(got, want)
    mean = kv.get_mean_vector(["war", "peace"], post_normalize=True)
    np.testing.assert_allclose(
        mean, gkv.get_mean_vector(["war", "peace"], post_normalize=True), rtol=1e-5
    )
    _same_answers(
        kv.most_similar("war", topn=5, clip_start=100, clip_end=900),
        gkv.most_similar("war", topn=5, clip_start=100, clip_end=900),
    )


def test_norms_match_float64_numpy(kv: Any) -> None:
    ref = np.linalg.norm(kv.vectors.astype(np.float64), axis=1)
    kv.fill_norms()
    np.testing.assert_allclose(kv.norms, ref, rtol=1e-6)
    np.testing.assert_allclose(kv.get_normed_vectors(), kv.vectors / ref[:, None], rtol=1e-6)
    before = kv.most_similar("war", topn=5)
    kv.unit_normalize_all()
    np.testing.assert_allclose(np.linalg.norm(kv.vectors.astype(np.float64), axis=1), 1, rtol=1e-6)
    _same_answers(kv.most_similar("war", topn=5), before)
    kv.vectors[kv.get_index("war")] *= 3  # an in-place edit: fill_norms(force=True) sees it
    kv.fill_norms(force=True)
    assert kv.norms[kv.get_index("war")] == pytest.approx(3, rel=1e-6)


def test_ties_are_broken_by_lower_row() -> None:
    vecs = np.array([[1, 0], [0, 1], [0, 1], [0, 1], [1, 1]], np.float32)
    kv = KeyedVectors(list("abcde"), vecs)
    assert [k for k, _ in kv.most_similar(positive=[np.array([0, 1.0])], topn=3)] == list("bcd")


def test_vecattrs_and_preallocation() -> None:
    kv = KeyedVectors(3, count=2)
    assert kv.add_vector("a", [1, 2, 3]) == 0
    assert kv.add_vector("b", [4, 5, 6]) == 1
    with pytest.warns(UserWarning, match="costly"):
        assert kv.add_vector("c", [7, 8, 9]) == 2
    kv.set_vecattr("b", "count", 7)
    assert kv.get_vecattr("b", "count") == 7 and kv.get_vecattr("a", "count") == 0
    with pytest.raises(KeyError):
        kv.get_vecattr("a", "nope")


# --- files ---------------------------------------------------------------------------------
def test_writer_options_read_by_gensim(tmp_path: Path, kv: Any) -> None:
    vec, voc = tmp_path / "v.txt", tmp_path / "v.vocab"
    kv.save_word2vec_format(vec, fvocab=voc, prefix="w_", total_vec=len(kv))
    theirs = GKV.load_word2vec_format(str(vec), fvocab=str(voc))
    assert theirs.index_to_key == ["w_" + k for k in kv.index_to_key]
    assert theirs.get_vecattr("w_war", "count") == kv.get_vecattr("war", "count")
    half = KeyedVectors.load_word2vec_format(vec, datatype=np.float16, limit=100)
    assert half.vectors.dtype == np.float16 and len(half) == 100
    np.testing.assert_array_equal(half.vectors, kv.vectors[:100].astype(np.float16))


def test_intersect_word2vec_format(tmp_path: Path, kv: Any, gkv: Any) -> None:
    other = KeyedVectors(["war", "zzz_new"], np.full((2, kv.vector_size), 0.5, np.float32))
    path = tmp_path / "o.txt"
    other.save_word2vec_format(path)
    size = len(kv)
    kv.intersect_word2vec_format(path)
    assert len(kv) == size and "zzz_new" not in kv
    np.testing.assert_array_equal(kv["war"], np.full(kv.vector_size, 0.5, np.float32))
    g = GKV.load_word2vec_format(EUCLIDEAN, binary=True)
    g.vectors_lockf = np.ones(len(g), np.float32)  # gensim reads it (a Word2Vec model has it)
    g.intersect_word2vec_format(str(path))
    np.testing.assert_array_equal(kv.vectors, g.vectors)


def test_safetensors_save_load_keeps_keys_counts_and_dtype(tmp_path: Path, kv: Any) -> None:
    path = tmp_path / "kv.safetensors"
    kv.save(path)
    for mmap in (None, "r"):
        back = KeyedVectors.load(path, mmap=mmap)
        assert back.index_to_key == kv.index_to_key
        np.testing.assert_array_equal(back.vectors, kv.vectors)
        np.testing.assert_array_equal(back.expandos["count"], kv.expandos["count"])
        assert back.most_similar("war", topn=5) == kv.most_similar("war", topn=5)
    mapped = KeyedVectors.load(path, mmap="r")
    assert isinstance(mapped.vectors, np.memmap)
    with pytest.raises(ValueError) as info:
        mapped.unit_normalize_all()
    assert isinstance(info.value, CandleEmbedError)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_mmap_load_reads_only_the_rows_used(tmp_path: Path) -> None:
    n, dim = 100_000, 256  # a 100 MB table
    rng = np.random.default_rng(0)
    vectors = np.empty((n, dim), np.float32)
    for i in range(0, n, 10_000):
        vectors[i : i + 10_000] = rng.standard_normal((10_000, dim), dtype=np.float32)
    path = tmp_path / "big.safetensors"
    KeyedVectors([f"w{i}" for i in range(n)], vectors).save(path)
    probe = vectors[[5, 77_777]].copy()
    del vectors
    before = _rss_bytes()
    kv = KeyedVectors.load(path, mmap="r")
    np.testing.assert_array_equal(kv["w5"], probe[0])
    np.testing.assert_array_equal(kv["w77777"], probe[1])
    grown = _rss_bytes() - before
    assert grown < 30 << 20, f"RSS grew by {grown >> 20} MiB for a 100 MB mapped table"


# --- bad input ------------------------------------------------------------------------------
def test_bad_input_is_typed_and_changes_nothing(kv: Any) -> None:
    size, war = len(kv), kv["war"].copy()
    cases = [
        (ValueError, lambda: kv.add_vectors(["ok", "bad\ud800"], np.ones((2, kv.vector_size)))),
        (ValueError, lambda: kv.add_vectors(["x"], np.ones((1, kv.vector_size + 1)))),
        (TypeError, lambda: kv.add_vectors([1.5], np.ones((1, kv.vector_size)))),
        (KeyError, lambda: kv.most_similar(["war"], ["not a word"])),
        (ZeroDivisionError, lambda: kv.n_similarity([], ["war"])),
        (ValueError, lambda: kv.most_similar(positive=[np.ones(3, np.float32)])),
        (ValueError, lambda: kv.save_word2vec_format("\ud800.txt")),
    ]
    for kind, call in cases:
        with pytest.raises(kind) as info:
            call()
        assert isinstance(info.value, CandleEmbedError), info.value
    assert len(kv) == size and "ok" not in kv
    np.testing.assert_array_equal(kv["war"], war)


def test_numpy_memory_errors_are_translated() -> None:
    with pytest.raises(CandleEmbedError) as info:
        KeyedVectors(1 << 40, count=1 << 40)
    assert isinstance(info.value, (MemoryError, ValueError))

"""gensim 4.4's ``gensim/test/test_keyedvectors.py`` ported to ``candle_embed.KeyedVectors``.

Each test names the gensim test it ports (``TestKeyedVectors.<name>`` unless said otherwise).
The expected values are gensim's own (its fixtures in ``gensim/test/test_data`` and the numbers
written in its tests); where a test only checks a property, gensim is also run live on the same
vectors and our answer must equal its.

Not ported, and why:
- ``Gensim320Test.test``: loads a pickled gensim 3.2 object (``old_keyedvectors_320.dat``);
  candle_embed never unpickles (its ``save``/``load`` is safetensors).
- ``LoadWord2VecFormatTest``'s ``binary_chunk_size`` argument: a gensim internal (the chunk size
  of its Python reader); the three tests are ported with the files and limits they use, on our
  reader (which has no chunks to vary).
"""

from __future__ import annotations

import functools
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
MODEL_PATH = datapath("w2v_keyedvectors_load_test.modeldata")
VOCAB_PATH = datapath("w2v_keyedvectors_load_test.vocab")


# ``kv`` and ``gkv``: conftest.py (gensim's euclidean_vectors.bin, ours and gensim's)


def test_most_similar(kv: KeyedVectors) -> None:  # test_most_similar
    expected = ["conflict", "administration", "terrorism", "call", "israel"]
    assert [r[0] for r in kv.most_similar("war", topn=5)] == expected


def test_most_similar_vector(kv: KeyedVectors, gkv: Any) -> None:  # test_most_similar_vector
    # gensim only checks "is not None"; we also check the answer is gensim's (issue #13 defect 1:
    # each row of a 2-D positive= array is a query vector).
    ours = kv.most_similar(positive=kv.vectors[0:5])
    theirs = gkv.most_similar(positive=gkv.vectors[0:5])
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)


@pytest.mark.parametrize("method", ["most_similar", "most_similar_cosmul"])
def test_most_similar_parameter_types(kv: KeyedVectors, gkv: Any, method: str) -> None:
    # test_most_similar_parameter_types, test_most_similar_cosmul_parameter_types
    partial = functools.partial(getattr(kv, method), topn=5)
    position = partial("war", "peace")
    assert position == partial(["war"], ["peace"])
    assert position == partial(positive="war", negative="peace")
    assert position == partial(positive=["war"], negative=["peace"])
    theirs = getattr(gkv, method)("war", "peace", topn=5)
    assert [k for k, _ in position] == [k for k, _ in theirs]
    np.testing.assert_allclose([s for _, s in position], [s for _, s in theirs], rtol=1e-5)


def test_vectors_for_all_list(kv: KeyedVectors) -> None:  # test_vectors_for_all_list
    words = ["conflict", "administration", "terrorism", "an out-of-vocabulary word",
             "another out-of-vocabulary word"]  # fmt: skip
    sub = kv.vectors_for_all(words)
    assert len(sub) == 3
    assert np.allclose(kv["conflict"], sub["conflict"])


def test_vectors_for_all_with_copy_vecattrs(kv: KeyedVectors) -> None:
    # test_vectors_for_all_with_copy_vecattrs
    sub = kv.vectors_for_all(["conflict"], copy_vecattrs=True)
    assert kv.get_vecattr("conflict", "count") == sub.get_vecattr("conflict", "count")


def test_vectors_for_all_without_copy_vecattrs(kv: KeyedVectors) -> None:
    # test_vectors_for_all_without_copy_vecattrs
    sub = kv.vectors_for_all(["conflict"], copy_vecattrs=False)
    assert kv.get_vecattr("conflict", "count") != sub.get_vecattr("conflict", "count")


def test_most_similar_topn(kv: KeyedVectors) -> None:  # test_most_similar_topn
    assert len(kv.most_similar("war", topn=5)) == 5
    assert len(kv.most_similar("war", topn=10)) == 10
    assert len(kv.most_similar("war", topn=None)) == len(kv)
    assert len(kv.most_similar("war", topn=0)) == 0
    assert len(kv.most_similar("war", topn=np.uint8(0))) == 0


def test_relative_cosine_similarity(kv: KeyedVectors) -> None:  # test_relative_cosine_similarity
    wordnet_syn = [
        "good", "goodness", "commodity", "trade_good", "full", "estimable", "honorable",
        "respectable", "beneficial", "just", "upright", "adept", "expert", "practiced",
        "proficient", "skillful", "skilful", "dear", "near", "dependable", "safe", "secure",
        "right", "ripe", "well", "effective", "in_effect", "in_force", "serious", "sound",
        "salutary", "honest", "undecomposed", "unspoiled", "unspoilt", "thoroughly", "soundly",
    ]  # fmt: skip
    cos_sim = sorted((kv.similarity("good", s) for s in wordnet_syn if s in kv), reverse=True)
    rcs_wordnet = kv.similarity("good", "nice") / sum(cos_sim[i] for i in range(10))
    rcs = kv.relative_cosine_similarity("good", "nice", 10)
    assert rcs_wordnet >= rcs
    assert np.allclose(rcs_wordnet, rcs, 0, 0.125)
    assert kv.relative_cosine_similarity("good", "worst", 10) < 0.10


def test_most_similar_raises_keyerror(kv: KeyedVectors) -> None:
    # test_most_similar_raises_keyerror
    with pytest.raises(KeyError) as info:
        kv.most_similar("not_in_vocab")
    assert isinstance(info.value, CandleEmbedError)


def test_most_similar_restrict_vocab(kv: KeyedVectors) -> None:
    # test_most_similar_restrict_vocab
    predicted = {r[0] for r in kv.most_similar("war", topn=5, restrict_vocab=5)}
    assert predicted == set(kv.index_to_key[:5])


def test_most_similar_with_vector_input(kv: KeyedVectors) -> None:
    # test_most_similar_with_vector_input
    expected = ["war", "conflict", "administration", "terrorism", "call"]
    assert [r[0] for r in kv.most_similar([kv["war"]], topn=5)] == expected


def test_most_similar_to_given(kv: KeyedVectors) -> None:  # test_most_similar_to_given
    assert kv.most_similar_to_given("war", ["terrorism", "call", "waging"]) == "terrorism"


def test_similar_by_word(kv: KeyedVectors) -> None:  # test_similar_by_word
    expected = ["conflict", "administration", "terrorism", "call", "israel"]
    assert [r[0] for r in kv.similar_by_word("war", topn=5)] == expected
    assert [r[0] for r in kv.similar_by_key("war", topn=5)] == expected


def test_similar_by_vector(kv: KeyedVectors) -> None:  # test_similar_by_vector
    expected = ["war", "conflict", "administration", "terrorism", "call"]
    assert [r[0] for r in kv.similar_by_vector(kv["war"], topn=5)] == expected


def test_distance(kv: KeyedVectors) -> None:  # test_distance
    assert np.allclose(kv.distance("war", "conflict"), 0.06694602)
    assert kv.distance("war", "war") == 0


def test_similarity(kv: KeyedVectors) -> None:  # test_similarity
    assert np.allclose(kv.similarity("war", "war"), 1)
    assert np.allclose(kv.similarity("war", "conflict"), 0.93305397)


def test_closer_than(kv: KeyedVectors) -> None:  # test_closer_than
    assert kv.closer_than("war", "war") == []
    assert set(kv.closer_than("war", "terrorism")) == {"conflict", "administration"}


def test_rank(kv: KeyedVectors) -> None:  # test_rank
    assert kv.rank("war", "war") == 1
    assert kv.rank("war", "terrorism") == 3


def _entities(n: int = 5) -> list[str]:
    return [f"___some_entity{i}_not_present_in_keyed_vectors___" for i in range(n)]


def test_add_single(kv: KeyedVectors) -> None:  # test_add_single
    rng = np.random.default_rng(0)
    vectors = [rng.standard_normal(kv.vector_size) for _ in range(5)]
    for ent, vector in zip(_entities(), vectors):
        kv.add_vectors(ent, vector)
    for ent, vector in zip(_entities(), vectors):
        assert np.allclose(kv[ent], vector)
    empty = KeyedVectors(kv.vector_size)
    for ent, vector in zip(_entities(), vectors):
        empty.add_vectors(ent, vector)
    for ent, vector in zip(_entities(), vectors):
        assert np.allclose(empty[ent], vector)


def test_add_multiple(kv: KeyedVectors) -> None:  # test_add_multiple
    rng = np.random.default_rng(1)
    vectors = [rng.standard_normal(kv.vector_size) for _ in range(5)]
    size = len(kv)
    kv.add_vectors(_entities(), vectors, replace=False)
    assert len(kv) == size + 5
    for ent, vector in zip(_entities(), vectors):
        assert np.allclose(kv[ent], vector)
    empty = KeyedVectors(kv.vector_size)
    empty[_entities()] = vectors
    assert len(empty) == 5
    for ent, vector in zip(_entities(), vectors):
        assert np.allclose(empty[ent], vector)


def test_add_type() -> None:  # test_add_type
    kv = KeyedVectors(2)
    assert kv.vectors.dtype == np.float32
    kv.add_vectors(["a"], np.array([1.0, 1.0], dtype=np.float64).reshape(1, -1))
    assert kv.vectors.dtype == np.float32


def test_set_item(kv: KeyedVectors) -> None:  # test_set_item
    rng = np.random.default_rng(2)
    size = len(kv)
    vector = rng.standard_normal(kv.vector_size)
    kv["___some_new_entity___"] = vector
    assert len(kv) == size + 1
    assert np.allclose(kv["___some_new_entity___"], vector)
    size = len(kv)
    vector = rng.standard_normal(kv.vector_size)
    kv["war"] = vector
    assert len(kv) == size
    assert np.allclose(kv["war"], vector)
    size = len(kv)
    entities = ["war", "___some_new_entity1___", "___some_new_entity2___", "terrorism", "conflict"]
    vectors = [rng.standard_normal(kv.vector_size) for _ in entities]
    kv[entities] = vectors
    assert len(kv) == size + 2
    for ent, vector in zip(entities, vectors):
        assert np.allclose(kv[ent], vector)


def test_load_model_and_vocab_file_strict() -> None:
    # test_load_model_and_vocab_file_strict
    with pytest.raises(UnicodeDecodeError) as info:
        KeyedVectors.load_word2vec_format(MODEL_PATH, fvocab=VOCAB_PATH, unicode_errors="strict")
    assert isinstance(info.value, CandleEmbedError)


@pytest.mark.parametrize(("errors", "tail"), [("replace", "\ufffd"), ("ignore", "")])
def test_load_model_and_vocab_file(errors: str, tail: str) -> None:
    # test_load_model_and_vocab_file_replace, test_load_model_and_vocab_file_ignore
    model = KeyedVectors.load_word2vec_format(
        MODEL_PATH, fvocab=VOCAB_PATH, binary=False, unicode_errors=errors
    )
    a, b = "ありがとう" + tail, "どういたしまして" + tail
    assert model.get_vecattr(a, "count") == 123
    assert model.get_vecattr(b, "count") == 789
    assert model.key_to_index[a] == 0
    assert model.key_to_index[b] == 1
    assert np.array_equal(model.get_vector(a), np.array([0.6, 0.6, 0.6], dtype=np.float32))
    assert np.array_equal(model.get_vector(b), np.array([0.1, 0.2, 0.3], dtype=np.float32))


def _random_kv() -> tuple[KeyedVectors, list[str]]:
    kv = KeyedVectors(vector_size=100)
    keys = [str(i) for i in range(20)]
    rng = np.random.default_rng(3)  # gensim: pseudorandom_weak_vector, values in [-1, 1) / 100
    kv.add_vectors(keys, (rng.random((20, 100)) * 2 - 1).astype(np.float32) / 100)
    return kv, keys


@pytest.mark.parametrize("binary", [False, True])
def test_save_reload(tmp_path: Path, binary: bool) -> None:  # test_save_reload
    kv, _ = _random_kv()
    path = tmp_path / ("tmp_kv.bin" if binary else "tmp_kv.txt")
    kv.save_word2vec_format(path, binary=binary)
    back = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert kv.index_to_key == back.index_to_key
    assert (kv.vectors == back.vectors).all()
    theirs = GKV.load_word2vec_format(str(path), binary=binary)  # gensim reads our file
    assert theirs.index_to_key == kv.index_to_key
    assert (theirs.vectors == kv.vectors).all()


def test_no_header(tmp_path: Path) -> None:  # test_no_header
    kv, _ = _random_kv()
    path = tmp_path / "tmp_kv.txt"
    kv.save_word2vec_format(path, binary=False, write_header=False)
    back = KeyedVectors.load_word2vec_format(path, binary=False, no_header=True)
    assert kv.index_to_key == back.index_to_key
    assert (kv.vectors == back.vectors).all()


def test_get_mean_vector(kv: KeyedVectors) -> None:  # test_get_mean_vector
    keys = ["conflict", "administration", "terrorism", "call", "an out-of-vocabulary word"]
    weights = [1, 2, 3, 1, 2]
    expected_1 = np.array([0.02000151, -0.12685453, 0.09196121, 0.25514853, 0.25740655,
                           -0.11134843, -0.0502661, -0.19278568, -0.83346179, -0.12068878],
                          dtype=np.float32)  # fmt: skip
    expected_2 = np.array([-0.0145228, -0.11530358, 0.1169825, 0.22537769, 0.29353586,
                           -0.10458107, -0.05272481, -0.17547795, -0.84245106, -0.10356515],
                          dtype=np.float32)  # fmt: skip
    expected_3 = np.array([0.01343237, -0.47651053, 0.45645328, 0.98304356, 1.1840123,
                           -0.51647933, -0.25308795, -0.77931081, -3.55954733, -0.55429711],
                          dtype=np.float32)  # fmt: skip
    assert np.allclose(kv.get_mean_vector(keys), expected_1)
    assert np.allclose(kv.get_mean_vector(keys, weights), expected_2)
    assert np.allclose(kv.get_mean_vector(keys, pre_normalize=False), expected_3)


# --- LoadWord2VecFormatTest ------------------------------------------------------------------
def _save_dict(path: Path, d: dict[str, list[int]]) -> None:
    """gensim's ``save_dict_to_word2vec_formated_file``, byte for byte."""
    with open(path, "wb") as f:
        f.write(f"{len(d)} {len(next(iter(d.values())))}\n".encode("ascii"))
        for word, vector in d.items():
            f.write(word.encode() + b" " + np.array(vector).astype(np.float32).tobytes())


def _verify(tmp_path: Path, d: dict[str, list[int]], limit: int | None) -> None:
    """gensim's ``verify_load2vec_binary_result`` (without its chunk-size argument)."""
    path = tmp_path / "tmp_w2v"
    _save_dict(path, d)
    model = KeyedVectors.load_word2vec_format(path, binary=True, limit=limit)
    kept = list(d)[: len(d) if limit is None else limit]
    expected = {k.lstrip(): d[k] for k in kept}
    assert len(expected) == len(model)
    for word, vector in expected.items():
        assert list(model[word]) == vector


_D1 = {"abc": [1, 2, 3], "cde": [4, 5, 6], "def": [7, 8, 9]}
_D2 = {"abc": [1, 2, 3], "cdefg": [4, 5, 6], "d": [7, 8, 9]}


@pytest.mark.parametrize("d", [_D1, _D2])
def test_load_word2vec_format_basic(tmp_path: Path, d: dict[str, list[int]]) -> None:
    # LoadWord2VecFormatTest.test_load_word2vec_format_basic
    _verify(tmp_path, d, None)


@pytest.mark.parametrize("d", [_D1, _D2])
@pytest.mark.parametrize("limit", [1, 2])
def test_load_word2vec_format_limit(tmp_path: Path, d: dict[str, list[int]], limit: int) -> None:
    # LoadWord2VecFormatTest.test_load_word2vec_format_limit
    _verify(tmp_path, d, limit)


@pytest.mark.parametrize("limit", [None, 1])
def test_load_word2vec_format_space_stripping(tmp_path: Path, limit: int | None) -> None:
    # LoadWord2VecFormatTest.test_load_word2vec_format_space_stripping
    _verify(tmp_path, {"\nabc": [1, 2, 3], "cdefdg": [4, 5, 6], "\n\ndef": [7, 8, 9]}, limit)

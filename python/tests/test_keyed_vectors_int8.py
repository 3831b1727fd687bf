"""``KeyedVectors.quantize(bits=8)`` (issue 15: KeyedVectors holding int8 rows): every query
checked against an independent float64 NumPy reference computed from the dequantized rows
(decoded here from the packed bytes by the format's definition, ``scale * code + bias``), the
memory arithmetic, and bad input (typed errors, nothing changed)."""

from __future__ import annotations

from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed import CandleEmbedError, KeyedVectors, QuantizedKeyedVectors

ROWS, DIM = 3000, 40


@pytest.fixture(scope="module")
def kv() -> KeyedVectors:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    return KeyedVectors([f"w{i}" for i in range(ROWS)], vectors)


@pytest.fixture(scope="module")
def qkv(kv: KeyedVectors) -> QuantizedKeyedVectors:
    out: QuantizedKeyedVectors = kv.quantize(bits=8)
    return out


@pytest.fixture(scope="module")
def ref(qkv: QuantizedKeyedVectors) -> np.ndarray:
    """The dequantized rows in float64, decoded from FBGEMM's fused bytes: ``D`` uint8 codes,
    then a little-endian float32 scale and bias per row."""
    packed = qkv.quantized.packed
    codes = packed[:, :DIM].astype(np.float64)
    scale = packed[:, DIM : DIM + 4].copy().view("<f4").astype(np.float64)
    bias = packed[:, DIM + 4 : DIM + 8].copy().view("<f4").astype(np.float64)
    out: np.ndarray = codes * scale + bias
    return out


def _cosines(ref: np.ndarray, q: np.ndarray) -> np.ndarray:
    out: np.ndarray = ref @ q / np.linalg.norm(ref, axis=1) / np.linalg.norm(q)
    return out


def _check_top(ours: list[tuple[Any, float]], sims: np.ndarray, exclude: set[int]) -> None:
    """Keys = the float64 top-k (where the reference's boundary gap is above float32 error),
    similarities within 1e-5 of float64."""
    k = len(ours)
    order = [i for i in np.argsort(-sims, kind="stable") if i not in exclude]
    rows = [int(key[1:]) for key, _ in ours]
    if sims[order[k - 1]] - sims[order[k]] > 1e-5:
        assert sorted(rows) == sorted(order[:k])
    for r, (_, s) in zip(rows, ours):
        assert s == pytest.approx(sims[r], abs=1e-5)


def test_rows_are_within_half_a_step_of_the_float_vectors(kv: Any, ref: np.ndarray) -> None:
    lo, hi = kv.vectors.min(axis=1), kv.vectors.max(axis=1)
    step = (hi - lo) / 255.0
    err = np.abs(ref - kv.vectors.astype(np.float64))
    assert np.all(err <= step[:, None] / 2 * (1 + 1e-5) + 1e-7)


def test_most_similar_is_the_float64_answer_on_dequantized_rows(qkv: Any, ref: np.ndarray) -> None:
    for word in ["w0", "w17", "w2999"]:
        i = int(word[1:])
        _check_top(qkv.most_similar(word, topn=10), _cosines(ref, ref[i]), {i})


def test_analogy_and_vector_queries(qkv: Any, ref: np.ndarray) -> None:
    unit = ref / np.linalg.norm(ref, axis=1)[:, None]
    mean = unit[1] + unit[2] - unit[3]
    ours = qkv.most_similar(positive=["w1", "w2"], negative=["w3"], topn=7)
    _check_top(ours, _cosines(ref, mean), {1, 2, 3})
    v = np.random.default_rng(3).standard_normal(DIM).astype(np.float32)
    _check_top(qkv.similar_by_vector(v, topn=5), _cosines(ref, v.astype(np.float64)), set())


def test_cosmul_is_the_float64_formula(qkv: Any, ref: np.ndarray) -> None:
    unit = ref / np.linalg.norm(ref, axis=1)[:, None]
    m = [(1 + _cosines(ref, unit[i])) / 2 for i in (4, 5, 6)]
    want = m[0] * m[1] / (m[2] + 1e-6)
    ours = qkv.most_similar_cosmul(positive=["w4", "w5"], negative=["w6"], topn=5)
    rows = [int(k[1:]) for k, _ in ours]
    order = [i for i in np.argsort(-want, kind="stable") if i not in (4, 5, 6)]
    assert sorted(rows) == sorted(order[:5])
    np.testing.assert_allclose([s for _, s in ours], want[rows], rtol=1e-4)


def test_pairwise_queries_and_lookups(qkv: Any, ref: np.ndarray) -> None:
    np.testing.assert_allclose(qkv["w5"], ref[5], rtol=0, atol=1e-6)
    np.testing.assert_allclose(qkv[["w5", "w6"]], ref[5:7], rtol=0, atol=1e-6)
    cos = ref[5] @ ref[6] / np.linalg.norm(ref[5]) / np.linalg.norm(ref[6])
    assert float(qkv.similarity("w5", "w6")) == pytest.approx(cos, abs=1e-6)
    assert float(qkv.distance("w5", "w6")) == pytest.approx(1 - cos, abs=1e-6)
    dists = qkv.distances("w5")
    np.testing.assert_allclose(dists, 1 - _cosines(ref, ref[5]), atol=1e-5)
    np.testing.assert_allclose(qkv.most_similar("w5", topn=None), _cosines(ref, ref[5]), atol=1e-5)
    np.testing.assert_allclose(qkv.norms, np.linalg.norm(ref, axis=1), rtol=1e-6)
    assert qkv.rank("w5", "w6") == 1 + int(np.sum(dists < dists[6])) - int(dists[5] < dists[6])


def test_memory_is_rows_times_dim_plus_8_bytes(kv: Any, qkv: Any) -> None:
    assert qkv.quantized.packed.shape == (ROWS, DIM + 8)
    assert qkv.nbytes == ROWS * (DIM + 8) + ROWS * 4
    assert len(qkv) == len(kv) and qkv.index_to_key == kv.index_to_key
    assert qkv.vectors.dtype == np.float32 and qkv.vectors.shape == (ROWS, DIM)


def test_float64_and_float16_tables_quantize_too() -> None:
    rng = np.random.default_rng(1)
    for dtype in (np.float64, np.float16):
        vectors = rng.standard_normal((50, 8)).astype(dtype)
        q = KeyedVectors([f"k{i}" for i in range(50)], vectors).quantize()
        step = (vectors.max(axis=1) - vectors.min(axis=1)).astype(np.float64) / 255
        err = np.abs(q.vectors - vectors.astype(np.float64))
        assert np.all(err <= step[:, None] / 2 * (1 + 1e-4) + 1e-6)
        deq = q.vectors.astype(np.float64)
        sims = _cosines(deq, deq[0])
        _check_top(q.most_similar("k0", topn=3), sims, {0})


@pytest.mark.parametrize("bits", [3, 4, 0, 16, True, "8", None, 8.0])
def test_bad_bits_are_typed_errors(kv: Any, bits: Any) -> None:
    with pytest.raises(CandleEmbedError):
        kv.quantize(bits=bits)


def test_read_only_and_save_refused_with_nothing_changed(qkv: Any, tmp_path: Any) -> None:
    before = qkv.quantized.packed.copy()
    for call in (
        lambda: qkv.add_vector("new", np.zeros(DIM, np.float32)),
        lambda: qkv.add_vectors(["new"], np.zeros((1, DIM), np.float32)),
        lambda: qkv.__setitem__("w1", np.zeros(DIM, np.float32)),
        lambda: qkv.unit_normalize_all(),
        lambda: qkv.save(tmp_path / "q.safetensors"),
        lambda: qkv.quantize(),
    ):
        with pytest.raises(CandleEmbedError):
            call()
    with pytest.raises(CandleEmbedError):
        qkv.vectors = np.zeros((ROWS, DIM), np.float32)
    assert not (tmp_path / "q.safetensors").exists()
    assert np.array_equal(qkv.quantized.packed, before) and len(qkv) == ROWS
    with pytest.raises(KeyError) as info:
        qkv.most_similar("not-a-word")
    assert isinstance(info.value, CandleEmbedError)


def test_fasttext_vectors_are_refused() -> None:
    ft = ce.FastText([["a", "b", "c"]] * 5, vector_size=8, min_count=1, epochs=1, bucket=100)
    with pytest.raises(CandleEmbedError):
        ft.wv.quantize()

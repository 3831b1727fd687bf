"""Quantized tables against FBGEMM's own outputs (fixtures from PyTorch's quantized ops, written
by benches/make_fbgemm_fixtures.py) and against float64 NumPy references of FBGEMM's formulas
(quantized_refs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed._native import _testing
from quantized_refs import bag64, dequantize64, fbgemm_fixture, quantize64

BITS = [8, 4]


def table(rows: int = 50, dim: int = 24, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 1.0, (rows, dim)).astype(np.float32)
    w[1] = 0.5  # constant row
    w[2] *= 300.0  # large values
    return w


# --- byte-for-byte and bit-for-bit against FBGEMM ---


@pytest.mark.parametrize("bits", BITS)
def test_packing_equals_fbgemm_prepack_byte_for_byte(bits: int) -> None:
    d = fbgemm_fixture(bits)
    q = ce.QuantizedEmbedding.from_float(d["weight"], bits)
    np.testing.assert_array_equal(q.packed, d["packed"])
    assert q.packed.dtype == np.uint8 and q.row_bytes == d["packed"].shape[1]
    # the scalar reference path gives the same bytes
    np.testing.assert_array_equal(_testing.quantize_reference(d["weight"], bits), d["packed"])
    # and so does quantizing a float Embedding / EmbeddingBag
    emb = ce.Embedding.from_pretrained(d["weight"])
    np.testing.assert_array_equal(emb.quantize(bits).packed, d["packed"])
    bag = ce.EmbeddingBag.from_pretrained(d["weight"], mode="sum")
    np.testing.assert_array_equal(bag.quantize(bits).packed, d["packed"])


@pytest.mark.parametrize("bits", BITS)
def test_lookups_and_bags_equal_fbgemm_kernels_bit_for_bit(bits: int) -> None:
    d = fbgemm_fixture(bits)
    ids, off, psw = d["indices"], d["offsets"], d["per_sample_weights"]
    q = ce.QuantizedEmbedding.from_packed(d["packed"], bits)
    np.testing.assert_array_equal(q(ids), d["lookup"])
    np.testing.assert_array_equal(q.dequantize(), d["unpacked"])
    qb = ce.QuantizedEmbeddingBag.from_packed(d["packed"], bits, mode="sum")
    np.testing.assert_array_equal(qb(ids, off), d["sum"])
    np.testing.assert_array_equal(qb(ids, off, psw), d["weighted_sum"])
    last = ce.QuantizedEmbeddingBag.from_packed(
        d["packed"], bits, mode="sum", include_last_offset=True
    )
    np.testing.assert_array_equal(last(ids, np.append(off, len(ids))), d["last_offset_sum"])


@pytest.mark.parametrize("bits", BITS)
def test_fbgemm_table_round_trips_through_our_files(bits: int, tmp_path: Path) -> None:
    d = fbgemm_fixture(bits)
    q = ce.QuantizedEmbeddingBag.from_packed(d["packed"], bits, mode="sum", padding_idx=-1)
    q.save(tmp_path / "q.safetensors")
    for mmap in (None, True):
        back = ce.QuantizedEmbeddingBag.load(tmp_path / "q.safetensors", mmap=mmap)
        np.testing.assert_array_equal(back.packed, d["packed"])
        assert (back.bits, back.mode, back.padding_idx) == (bits, "sum", len(d["packed"]) - 1)
        assert back.mmap_mode == ("r" if mmap else None)
        plain = ce.QuantizedEmbeddingBag.from_packed(d["packed"], bits, mode="sum")
        ids = d["indices"][d["indices"] != len(d["packed"]) - 1]
        np.testing.assert_array_equal(back(ids, [0, 7]), plain(ids, [0, 7]))


# --- float64 references of the formulas ---


@pytest.mark.parametrize("bits", BITS)
def test_elements_within_half_a_step_of_the_float64_reference(bits: int) -> None:
    w = table(rows=200, dim=32, seed=bits)
    codes, scale, bias = quantize64(w, bits)
    ref = dequantize64(codes, scale, bias)
    got = ce.QuantizedEmbedding.from_float(w, bits).dequantize().astype(np.float64)
    step = scale[:, None]
    # our values are the reference's (same codes; float32 arithmetic)
    assert np.all(np.abs(got - ref) <= 1e-6 * np.maximum(np.abs(ref), 1.0))
    # and each lies within half a step of the value it stands for; for 4 bits where the value
    # is inside the row's float16-rounded range (outside it the code clamps, as in FBGEMM)
    inside = (w >= bias[:, None]) & (w <= bias[:, None] + 15 * step) if bits == 4 else True
    err = np.abs(got - w.astype(np.float64))
    assert np.all((err <= 0.5 * step * (1 + 1e-5) + 1e-6 * np.abs(w)) | ~np.asarray(inside))
    assert np.all(err <= step * 1.01 + 1e-6 * np.abs(w))


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bags_match_float64_reference(bits: int, mode: str) -> None:
    w = table(rows=40, dim=16, seed=3)
    rows64 = ce.QuantizedEmbedding.from_float(w, bits).dequantize().astype(np.float64)
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 40, 90)
    off = np.array([0, 0, 5, 30, 31, 60, 90])  # empty first and last bags
    psw = rng.uniform(-1, 1, 90).astype(np.float32) if mode == "sum" else None
    for padding in (None, 3):
        qb = ce.QuantizedEmbeddingBag.from_float(w, bits, mode=mode, padding_idx=padding)
        got = qb(ids, off, psw)
        ref = bag64(rows64, ids, off, psw, mode=mode, padding_idx=padding)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
        assert np.all(got[[0, 6]] == 0)
        # 2-D ids are bags of equal size
        got2 = qb(ids.reshape(9, 10))
        ref2 = bag64(rows64, ids.reshape(9, 10), mode=mode, padding_idx=padding)
        np.testing.assert_allclose(got2, ref2, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("bits", BITS)
def test_fast_path_matches_portable_candle_path(bits: int) -> None:
    # The portable path rounds code * scale and then + bias, the kernel fuses them: they may
    # differ by a few float32 ulps of the terms' magnitude |code * scale| + |bias|.
    w = table(rows=60, dim=40, seed=5)
    codes, scale, bias = quantize64(w, bits)
    magnitude = np.abs(codes * scale[:, None]) + np.abs(bias)[:, None]
    ids = np.random.default_rng(1).integers(0, 60, (7, 9))
    q = ce.QuantizedEmbedding.from_float(w, bits)
    diff = np.abs(q(ids) - _testing.quantized_lookup_portable(q, ids))
    assert np.all(diff <= 2.5e-7 * magnitude[ids])
    flat, off = ids.ravel(), np.array([0, 3, 3, 40])
    for mode in ("sum", "mean", "max"):
        qb = ce.QuantizedEmbeddingBag.from_float(w, bits, mode=mode, padding_idx=2)
        psw = np.linspace(-1, 1, flat.size).astype(np.float32) if mode == "sum" else None
        diff = np.abs(qb(flat, off, psw) - _testing.quantized_bag_portable(qb, flat, off, psw))
        weights = None if psw is None else np.abs(psw)
        bound = bag64(magnitude, flat, off, weights, mode="sum", padding_idx=2)
        assert np.all(diff <= 1e-6 * bound), (mode, diff.max())


@pytest.mark.parametrize("bits", BITS)
def test_output_dtypes_and_out(bits: int) -> None:
    w = table(rows=30, dim=8)
    q = ce.QuantizedEmbedding.from_float(w, bits)
    ids = np.array([[3, 1], [29, 0]], dtype=np.uint16)
    y32 = q(ids)
    assert y32.shape == (2, 2, 8) and y32.dtype == np.float32
    # float16 / float64: the float32 value rounded once (exact for float64)
    np.testing.assert_array_equal(q(ids, dtype="float64"), y32.astype(np.float64))
    np.testing.assert_array_equal(q(ids, dtype="float16"), y32.astype(np.float16))
    assert q(ids, dtype="bfloat16").dtype == np.float32
    out = np.empty((2, 2, 8), np.float16)
    assert q(ids, out=out, dtype="float16") is out
    np.testing.assert_array_equal(out, y32.astype(np.float16))
    qb = ce.QuantizedEmbeddingBag.from_float(w, bits, mode="mean")
    out = np.empty((2, 8), np.float64)
    assert qb(ids, out=out, dtype="float64") is out
    np.testing.assert_array_equal(out, qb(ids).astype(np.float64))


def test_results_do_not_depend_on_the_thread_count() -> None:
    w = table(rows=3000, dim=64, seed=9)
    ids = np.random.default_rng(2).integers(0, 3000, 20000)
    off = np.arange(0, 20000, 7)
    before = ce.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 4):
            ce.set_num_threads(n)
            q = ce.QuantizedEmbeddingBag.from_float(w, 8, mode="mean")
            outs.append((q.packed, q(ids, off), ce.QuantizedEmbedding.from_float(w, 4)(ids)))
    finally:
        ce.set_num_threads(before)
    for o in outs[1:]:
        for a, b in zip(outs[0], o):
            np.testing.assert_array_equal(a, b)


def test_quantize_keeps_options_and_leaves_the_table_alone() -> None:
    w = table(rows=20, dim=6)
    bag = ce.EmbeddingBag.from_pretrained(
        w, mode="max", padding_idx=4, include_last_offset=True, freeze=False
    )
    before = bag.weight.copy()
    qb = bag.quantize(8)
    assert (qb.mode, qb.padding_idx, qb.include_last_offset) == ("max", 4, True)
    np.testing.assert_array_equal(bag.weight, before)
    emb = ce.Embedding.from_pretrained(w.astype(np.float16), padding_idx=-1)
    q = emb.quantize(4)
    assert (q.padding_idx, q.bits, q.embedding_dim, q.num_embeddings) == (19, 4, 6, 20)
    # a float16 table is quantized from its (exact) float32 values
    np.testing.assert_array_equal(
        q.packed,
        ce.QuantizedEmbedding.from_float(w.astype(np.float16).astype(np.float32), 4).packed,
    )
    assert "QuantizedEmbedding(20, 6, bits=4, padding_idx=19)" == repr(q)


@pytest.mark.parametrize("bits", BITS)
def test_save_load_round_trip_and_cross_loading(bits: int, tmp_path: Path) -> None:
    w = table(rows=33, dim=10)
    q = ce.QuantizedEmbedding.from_float(w, bits, padding_idx=2)
    p = tmp_path / "q.safetensors"
    q.save(p)
    for mmap in (False, True, "r"):
        back = ce.QuantizedEmbedding.load(p, mmap=mmap)
        np.testing.assert_array_equal(back.packed, q.packed)
        np.testing.assert_array_equal(back(np.arange(33)), q(np.arange(33)))
        assert back.padding_idx == 2
    # a QuantizedEmbedding file loads as a bag (mode "mean"), and the other way round
    bag = ce.QuantizedEmbeddingBag.load(p)
    assert bag.mode == "mean" and bag.padding_idx == 2
    bag2 = ce.QuantizedEmbeddingBag.from_float(w, bits, mode="max")
    bag2.save(p)
    np.testing.assert_array_equal(ce.QuantizedEmbedding.load(p).packed, bag2.packed)
    assert ce.QuantizedEmbeddingBag.load(p, mmap=True).mode == "max"


@pytest.mark.parametrize("bits", BITS)
def test_attend_and_row_norms_match_float64_reference(bits: int) -> None:
    # scores x @ W.T of the dequantized rows (W from the float64 formulas, not from our table),
    # computed without dequantizing; accumulation in float32 over sum |x_j * w_rj|
    w = table(rows=70, dim=26, seed=11)
    rows64 = dequantize64(*quantize64(w, bits))
    q = ce.QuantizedEmbedding.from_float(w, bits)
    x = np.random.default_rng(4).normal(0.0, 2.0, (2, 3, 26))
    got = q.attend(x)
    assert got.shape == (2, 3, 70) and got.dtype == np.float32
    x64 = x.astype(np.float32).astype(np.float64)
    bound = np.abs(x64) @ np.abs(rows64).T
    assert np.all(np.abs(got - x64 @ rows64.T) <= 1e-5 * np.maximum(bound, 1.0))
    norms = q.row_norms()
    assert norms.shape == (70,) and norms.dtype == np.float32
    np.testing.assert_allclose(norms, np.linalg.norm(rows64, axis=1), rtol=1e-5)
    # most_similar by cosine: the same ranking as the float64 reference
    cos = q.attend(x64[0, 0]) / norms
    ref = rows64 @ x64[0, 0] / np.linalg.norm(rows64, axis=1)
    assert np.argmax(cos) == np.argmax(ref)
    assert q.attend(np.zeros((0, 26))).shape == (0, 70)

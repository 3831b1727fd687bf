"""EmbeddingBag against float64 NumPy references of PyTorch's formulas (semantics.md §1.2)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import candle_embed as ce
import numpy as np
import numpy.typing as npt
import pytest
from candle_embed._native import _testing

F64 = npt.NDArray[np.float64]


def ref_bounds(
    n: int, shape: tuple[int, ...], offsets: Any, include_last: bool
) -> list[tuple[int, int]]:
    if len(shape) == 2:
        b, per = shape
        return [(i * per, (i + 1) * per) for i in range(b)]
    off = [int(o) for o in offsets]
    if include_last:
        return [(off[i], off[i + 1]) for i in range(len(off) - 1)]
    ends = off[1:] + [n]
    return list(zip(off, ends))


@dataclass(frozen=True)
class BagCall:
    """One EmbeddingBag call's inputs, for the references below."""

    ids: Any
    offsets: Any = None
    psw: Any = None
    mode: str = "mean"
    padding_idx: int | None = None
    include_last: bool = False

    def positions(self) -> tuple[npt.NDArray[Any], F64 | None, list[tuple[int, int]]]:
        """Flat ids, flat per-sample weights (None: all 1) and each bag's [lo, hi) positions."""
        ids = np.asarray(self.ids)
        flat = ids.reshape(-1)
        pw = None if self.psw is None else np.asarray(self.psw, dtype=np.float64).reshape(-1)
        return flat, pw, ref_bounds(flat.size, ids.shape, self.offsets, self.include_last)


def ref_forward(w: F64, call: BagCall) -> F64:
    flat, pw, bounds = call.positions()
    mode, padding_idx = call.mode, call.padding_idx
    out = np.zeros((len(bounds), w.shape[1]))
    for b, (lo, hi) in enumerate(bounds):
        rows = []
        for k in range(lo, hi):
            i = int(flat[k])
            if padding_idx is not None and i == padding_idx:
                continue
            rows.append(w[i] * (1.0 if pw is None else pw[k]))
        if not rows:
            continue
        r = np.stack(rows)
        out[b] = {"sum": r.sum(0), "mean": r.mean(0), "max": r.max(0)}[mode]
    return out


def ref_backward(w: F64, call: BagCall, grad: F64) -> F64:
    flat, pw, bounds = call.positions()
    mode, padding_idx = call.mode, call.padding_idx
    dense = np.zeros_like(w)
    for b, (lo, hi) in enumerate(bounds):
        ks = [k for k in range(lo, hi) if padding_idx is None or int(flat[k]) != padding_idx]
        if not ks:
            continue
        if mode == "max":
            vals = np.stack([w[int(flat[k])] for k in ks])
            arg = vals.argmax(0)  # first occurrence on ties
            for j in range(w.shape[1]):
                dense[int(flat[ks[arg[j]]]), j] += grad[b, j]
            continue
        for k in ks:
            s = 1.0 / len(ks) if mode == "mean" else (1.0 if pw is None else pw[k])
            np.add.at(dense, int(flat[k]), s * grad[b])
    return dense


def table(v: int = 20, d: int = 7, seed: int = 0) -> F64:
    return np.random.default_rng(seed).standard_normal((v, d))


CASES_1D = [
    # ids, offsets (without last), description
    ([1, 2, 4, 5, 4, 3, 2, 9], [0, 4], "two bags"),
    ([1, 2, 4, 5, 4, 3, 2, 9], [0, 0, 3, 3, 8], "empty bags incl. last"),
    ([0, 0, 0], [0], "one bag, repeats"),
    ([], [0, 0], "no ids"),
]


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 4])
@pytest.mark.parametrize("include_last", [False, True])
@pytest.mark.parametrize("case", range(len(CASES_1D)))
def test_forward_1d(mode: str, padding_idx: int | None, include_last: bool, case: int) -> None:
    ids_l, off_l, _ = CASES_1D[case]
    w = table()
    if padding_idx is not None:
        w[padding_idx] = 0.0
    ids = np.asarray(ids_l, dtype=np.int64)
    off = np.asarray(off_l + ([len(ids_l)] if include_last else []), dtype=np.int32)
    bag = ce.EmbeddingBag.from_pretrained(
        w, mode=mode, padding_idx=padding_idx, include_last_offset=include_last
    )
    got = bag(ids, off)
    want = ref_forward(
        w, BagCall(ids, off, mode=mode, padding_idx=padding_idx, include_last=include_last)
    )
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # Portable path agrees (reductions: tolerance, not bit-exact).
    np.testing.assert_allclose(
        _testing.bag_forward_portable(bag, ids, off), want, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("id_dtype", [np.int8, np.uint16, np.int32, np.int64, np.uint64])
def test_forward_2d_fixed_bags(mode: str, id_dtype: Any) -> None:
    w = table(v=50, d=5, seed=1)
    ids = np.random.default_rng(2).integers(0, 50, size=(6, 4)).astype(id_dtype)
    bag = ce.EmbeddingBag.from_pretrained(w.astype(np.float32), mode=mode)
    got = bag(ids)
    assert got.shape == (6, 5) and got.dtype == np.float32
    want = {"sum": w[ids].sum(1), "mean": w[ids].mean(1), "max": w[ids].max(1)}[mode]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_padding_semantics_mean_divisor_and_only_padding_bag() -> None:
    bag = ce.EmbeddingBag(10, 3, mode="mean", padding_idx=2, seed=3)
    w = bag.weight
    assert np.all(w[2] == 0)
    got = bag(np.array([2, 2, 1, 2, 5], dtype=np.int64), np.array([0, 2], dtype=np.int64))
    np.testing.assert_array_equal(got[0], np.zeros(3, np.float32))  # only padding -> zeros
    np.testing.assert_allclose(got[1], (w[1] + w[5]) / 2, rtol=1e-6)  # divisor 2, not 3


def test_negative_padding_idx() -> None:
    bag = ce.EmbeddingBag(10, 3, mode="sum", padding_idx=-1, seed=3)
    assert bag.padding_idx == 9
    got = bag(np.array([[9, 1]]))
    np.testing.assert_allclose(got[0], bag.weight[1], rtol=1e-6)


@pytest.mark.parametrize("include_last", [False, True])
def test_per_sample_weights(include_last: bool) -> None:
    w = table(v=30, d=6)
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 30, size=17)
    off = np.array([0, 5, 5, 11] + ([17] if include_last else []))
    psw = rng.standard_normal(17)
    bag = ce.EmbeddingBag.from_pretrained(
        w, mode="sum", padding_idx=3, include_last_offset=include_last
    )
    got = bag(ids, off, psw)
    want = ref_forward(
        w, BagCall(ids, off, psw, mode="sum", padding_idx=3, include_last=include_last)
    )
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        _testing.bag_forward_portable(bag, ids, off, psw), want, rtol=1e-12, atol=1e-12
    )


def test_max_ties_first_occurrence_forward_and_backward() -> None:
    w = np.array([[1.0, 5.0], [1.0, 2.0], [3.0, 5.0], [0.0, 0.0]])
    bag = ce.EmbeddingBag.from_pretrained(w, mode="max")
    ids = np.array([[1, 0, 2, 1]])
    np.testing.assert_array_equal(bag(ids), [[3.0, 5.0]])
    g = bag.backward(ids, np.array([[10.0, 20.0]]))
    # column 0: max 3 at row 2; column 1: tie 5 between rows 0 and 2 -> first occurrence (row 0)
    # every looked-up row is listed (as in the other modes); row 1 won no column
    np.testing.assert_array_equal(g.indices, [0, 1, 2])
    np.testing.assert_array_equal(g.values, [[0.0, 20.0], [0.0, 0.0], [10.0, 0.0]])


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 0])
@pytest.mark.parametrize("layout", ["2d", "1d", "csr"])
def test_backward_matches_reference(mode: str, padding_idx: int | None, layout: str) -> None:
    rng = np.random.default_rng(5)
    w = table(v=12, d=5, seed=6)
    if padding_idx is not None:
        w[padding_idx] = 0.0
    include_last = layout == "csr"
    if layout == "2d":
        ids = rng.integers(0, 12, size=(5, 4))
        off = None
        nb = 5
    else:
        ids = rng.integers(0, 12, size=20)
        off = np.array([0, 3, 3, 9, 19] + ([20] if include_last else []), dtype=np.int16)
        nb = 5
    grad = rng.standard_normal((nb, 5))
    bag = ce.EmbeddingBag.from_pretrained(
        w, mode=mode, padding_idx=padding_idx, include_last_offset=include_last
    )
    g = bag.backward(ids, grad, off)
    want = ref_backward(
        w, BagCall(ids, off, mode=mode, padding_idx=padding_idx, include_last=include_last), grad
    )
    assert g.shape == (12, 5)
    assert np.all(np.diff(g.indices) > 0)
    np.testing.assert_allclose(g.to_dense(), want, rtol=1e-12, atol=1e-12)
    touched = {int(i) for i in np.asarray(ids).reshape(-1)} - {padding_idx}
    assert set(g.indices.tolist()) == touched
    if padding_idx is not None:
        assert padding_idx not in g.indices


def test_backward_per_sample_weights() -> None:
    rng = np.random.default_rng(7)
    w = table(v=15, d=4, seed=8)
    ids = rng.integers(0, 15, size=12)
    ids[3] = 2
    off = np.array([0, 4, 4, 10])
    psw = rng.standard_normal(12)
    grad = rng.standard_normal((4, 4))
    bag = ce.EmbeddingBag.from_pretrained(w, mode="sum", padding_idx=2)
    g = bag.backward(ids, grad, off, psw)
    want = ref_backward(w, BagCall(ids, off, psw, mode="sum", padding_idx=2), grad)
    np.testing.assert_allclose(g.to_dense(), want, rtol=1e-12, atol=1e-12)
    dpsw = bag.backward_per_sample_weights(ids, grad, off)
    bounds = ref_bounds(12, (12,), off, False)
    want_p = np.zeros(12)
    for b, (lo, hi) in enumerate(bounds):
        for k in range(lo, hi):
            if ids[k] != 2:
                want_p[k] = grad[b] @ w[ids[k]]
    np.testing.assert_allclose(dpsw, want_p, rtol=1e-12, atol=1e-12)
    assert dpsw[3] == 0.0
    # Numerical check of d(psw): central differences of <grad, y(psw)>.
    eps = 1e-6
    for k in (0, 5, 11):
        p1, p0 = psw.copy(), psw.copy()
        p1[k] += eps
        p0[k] -= eps
        num = (np.sum(grad * bag(ids, off, p1)) - np.sum(grad * bag(ids, off, p0))) / (2 * eps)
        assert abs(num - dpsw[k]) < 1e-6


def test_max_norm_renormalises_looked_up_rows_in_place() -> None:
    w = table(v=10, d=4, seed=9) * 3
    bag = ce.EmbeddingBag.from_pretrained(w, mode="sum", max_norm=1.0)
    ids = np.array([[1, 3], [3, 7]])
    got = bag(ids)
    after = bag.weight
    for r in range(10):
        n = np.linalg.norm(w[r])
        if r in (1, 3, 7) and n > 1.0:
            np.testing.assert_allclose(after[r], w[r] * (1.0 / (n + 1e-7)), rtol=1e-12)
        else:
            np.testing.assert_array_equal(after[r], w[r])
    np.testing.assert_allclose(got, after[ids].sum(1), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_dtypes_and_seed(dtype: str) -> None:
    a = ce.EmbeddingBag(40, 9, mode="sum", dtype=dtype, seed=11)
    b = ce.EmbeddingBag(40, 9, mode="sum", dtype=dtype, seed=11)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert a.dtype == dtype
    ids = np.random.default_rng(0).integers(0, 40, size=(8, 5))
    y = a(ids)
    want_dt = {"float64": np.float64, "float16": np.float16}.get(dtype, np.float32)
    assert y.dtype == want_dt
    ref = a.weight.astype(np.float64)[ids].sum(1)
    tol = {"float64": 1e-12, "float32": 1e-5, "float16": 2e-2, "bfloat16": 1e-5}[dtype]
    np.testing.assert_allclose(y.astype(np.float64), ref, rtol=tol, atol=tol)
    # The portable path returns the table's dtype: a bfloat16 result is rounded to 8 bits.
    ptol = 1e-2 if dtype == "bfloat16" else tol
    port = _testing.bag_forward_portable(a, ids).astype(np.float64)
    np.testing.assert_allclose(port, ref, rtol=ptol, atol=ptol)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_fast_equals_portable_large(mode: str) -> None:
    rng = np.random.default_rng(12)
    bag = ce.EmbeddingBag(1000, 160, mode=mode, padding_idx=7, seed=1)  # two column tiles
    ids = rng.integers(0, 1000, size=3000)
    ids[::13] = 7
    off = np.sort(rng.integers(0, 3000, size=199))
    off[0] = 0
    fast = bag(ids, off)
    port = _testing.bag_forward_portable(bag, ids, off)
    # float32 reductions in the same order: bit-identical for sum/max; mean within 1 ulp-ish.
    np.testing.assert_allclose(fast, port, rtol=2e-6, atol=1e-6)
    if mode != "mean":
        np.testing.assert_array_equal(fast, port)


def test_thread_count_determinism() -> None:
    rng = np.random.default_rng(13)
    bag = ce.EmbeddingBag(5000, 64, mode="sum", seed=2)
    ids = rng.integers(0, 5000, size=40000)
    off = np.sort(rng.integers(0, 40000, size=1000))
    off[0] = 0
    psw = rng.standard_normal(40000).astype(np.float32)
    grad = rng.standard_normal((1000, 64)).astype(np.float32)
    old = ce.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 7):
            ce.set_num_threads(n)
            g = bag.backward(ids, grad, off, psw)
            results.append((bag(ids, off, psw), g.indices, g.values))
        for y, i, v in results[1:]:
            np.testing.assert_array_equal(y, results[0][0])
            np.testing.assert_array_equal(i, results[0][1])
            np.testing.assert_array_equal(v, results[0][2])
    finally:
        ce.set_num_threads(old)


def test_out_buffer() -> None:
    bag = ce.EmbeddingBag(20, 4, mode="mean", seed=0)
    ids = np.array([[1, 2], [3, 4], [5, 6]])
    out = np.full((3, 4), np.nan, dtype=np.float32)
    r = bag(ids, out=out)
    assert r is out
    np.testing.assert_array_equal(out, bag(ids))
    with pytest.raises(ValueError):
        bag(ids, out=np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError):
        bag(ids, out=np.zeros((3, 4), np.float64))


def test_weight_get_set_and_attributes() -> None:
    bag = ce.EmbeddingBag(6, 2, mode="max", include_last_offset=True, seed=0)
    assert (bag.num_embeddings, bag.embedding_dim, bag.mode) == (6, 2, "max")
    assert bag.include_last_offset and bag.padding_idx is None and not bag.frozen
    new = np.arange(12, dtype=np.float32).reshape(6, 2)
    bag.weight = new
    np.testing.assert_array_equal(bag.weight, new)
    np.testing.assert_array_equal(bag(np.array([0, 5, 1]), np.array([0, 2, 3])), [[10, 11], [2, 3]])
    assert ce.EmbeddingBag.from_pretrained(new).frozen
    assert "EmbeddingBag(6, 2, mode='max'" in repr(bag)


def _bad_inputs() -> list[tuple[str, dict[str, Any], type[Exception]]]:
    ids1 = np.array([1, 2, 3, 4])
    return [
        ("decreasing offsets", {"ids": ids1, "offsets": np.array([0, 3, 2])}, ValueError),
        ("offsets[0] != 0", {"ids": ids1, "offsets": np.array([1, 2])}, ValueError),
        ("offset past ids", {"ids": ids1, "offsets": np.array([0, 5])}, ValueError),
        ("negative offset", {"ids": ids1, "offsets": np.array([0, -1])}, ValueError),
        ("1-D without offsets", {"ids": ids1}, ValueError),
        ("2-D with offsets", {"ids": ids1.reshape(2, 2), "offsets": np.array([0])}, ValueError),
        ("3-D ids", {"ids": ids1.reshape(1, 2, 2)}, ValueError),
        ("2-D offsets", {"ids": ids1, "offsets": np.array([[0, 1]])}, ValueError),
        ("id too large", {"ids": np.array([1, 10]), "offsets": np.array([0])}, IndexError),
        ("negative id", {"ids": np.array([[1, -1]])}, IndexError),
        ("float ids", {"ids": np.array([1.0, 2.0]), "offsets": np.array([0])}, TypeError),
        ("float offsets", {"ids": ids1, "offsets": np.array([0.0])}, TypeError),
        (
            "psw shape",
            {"ids": ids1, "offsets": np.array([0]), "per_sample_weights": np.ones(3)},
            ValueError,
        ),
        ("empty offsets, ids", {"ids": ids1, "offsets": np.array([], np.int64)}, ValueError),
    ]


BadCase = tuple[str, dict[str, Any], type[Exception]]


@pytest.mark.parametrize("case", _bad_inputs(), ids=lambda c: c[0])
def test_bad_inputs_raise_and_leave_state(case: BadCase) -> None:
    _, kw, exc = case
    # max_norm set: a call that got past validation would renormalise rows in place.
    w = table(v=10, d=3) * 5
    bag = ce.EmbeddingBag.from_pretrained(w, mode="sum", max_norm=1.0)
    with pytest.raises(exc):
        bag(**kw)
    np.testing.assert_array_equal(bag.weight, w)
    grad = np.ones((2, 3))
    with pytest.raises((exc, ValueError)):
        bag.backward(kw["ids"], grad, kw.get("offsets"), kw.get("per_sample_weights"))
    np.testing.assert_array_equal(bag.weight, w)


def test_include_last_offset_errors() -> None:
    bag = ce.EmbeddingBag(10, 3, mode="sum", include_last_offset=True, seed=0)
    w = bag.weight
    ids = np.array([1, 2, 3])
    with pytest.raises(ValueError):
        bag(ids, np.array([0, 2]))  # last offset must equal len(ids)
    with pytest.raises(ValueError):
        bag(ids, np.array([], np.int64))
    np.testing.assert_array_equal(bag(ids, np.array([0, 3])), w[[1, 2, 3]].sum(0, keepdims=True))
    np.testing.assert_array_equal(bag(np.array([], np.int64), np.array([0])), np.zeros((0, 3)))


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_per_sample_weights_need_sum_mode(mode: str) -> None:
    bag = ce.EmbeddingBag(10, 3, mode=mode, seed=0)
    with pytest.raises(ValueError, match="per_sample_weights"):
        bag(np.array([[1, 2]]), None, np.ones((1, 2)))
    with pytest.raises(ValueError):
        bag.backward_per_sample_weights(np.array([[1, 2]]), np.ones((1, 3)))


def test_bad_config_and_grad_shape() -> None:
    with pytest.raises(ValueError):
        ce.EmbeddingBag(10, 3, mode="median")
    with pytest.raises(IndexError):
        ce.EmbeddingBag(10, 3, padding_idx=10)
    with pytest.raises(TypeError):
        ce.EmbeddingBag(10, 3, dtype="int32")
    bag = ce.EmbeddingBag(10, 3, mode="sum", seed=0)
    with pytest.raises(ValueError):
        bag.backward(np.array([[1, 2]]), np.ones((2, 3)))


def test_large_random_against_reference() -> None:
    rng = np.random.default_rng(21)
    w = table(v=300, d=33, seed=22)
    for mode, pad, inc in itertools.product(["sum", "mean", "max"], [None, 5], [False, True]):
        ids = rng.integers(0, 300, size=500)
        ids[rng.random(500) < 0.1] = 5
        off = np.sort(rng.integers(0, 500, size=40))
        off[0] = 0
        if inc:
            off = np.append(off, 500)
        bag = ce.EmbeddingBag.from_pretrained(
            w, mode=mode, padding_idx=pad, include_last_offset=inc
        )
        want = ref_forward(w, BagCall(ids, off, mode=mode, padding_idx=pad, include_last=inc))
        np.testing.assert_allclose(bag(ids, off), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_save_load_round_trip(mode: str, tmp_path: Any) -> None:
    w = table(12, 5)
    bag = ce.EmbeddingBag.from_pretrained(
        w, mode=mode, padding_idx=2, max_norm=3.0, norm_type=1.0, include_last_offset=True
    )
    path = tmp_path / "bag.safetensors"
    bag.save(path)
    back = ce.EmbeddingBag.load(path)
    np.testing.assert_array_equal(back.weight, bag.weight)
    assert (back.mode, back.padding_idx, back.max_norm, back.norm_type) == (mode, 2, 3.0, 1.0)
    assert back.include_last_offset and back.dtype == bag.dtype
    ids, offsets = np.array([1, 2, 5, 7, 7]), np.array([0, 2, 5])
    got = back(ids, offsets)  # max_norm renormalises the looked-up rows in place, first
    call = BagCall(ids, offsets, mode=mode, padding_idx=2, include_last=True)
    want = ref_forward(np.asarray(back.weight, np.float64), call)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["bag.safetensors"]  # no temp file left


def test_save_load_across_embedding_and_bag(tmp_path: Any) -> None:
    emb = ce.Embedding(9, 4, padding_idx=1, seed=3)
    emb.save(tmp_path / "e.safetensors")
    bag = ce.EmbeddingBag.load(tmp_path / "e.safetensors")
    assert bag.mode == "mean" and bag.padding_idx == 1 and not bag.include_last_offset
    np.testing.assert_array_equal(bag.weight, emb.weight)
    ce.EmbeddingBag(9, 4, mode="max", seed=1).save(tmp_path / "b.safetensors")
    assert ce.Embedding.load(tmp_path / "b.safetensors").weight.shape == (9, 4)


def test_load_rejects_bad_bag_metadata(tmp_path: Any) -> None:
    ce.EmbeddingBag(4, 3, seed=0).save(tmp_path / "b.safetensors")
    data = (tmp_path / "b.safetensors").read_bytes()
    old = b'\\"mode\\":\\"mean\\"'  # JSON inside the JSON header: quotes are escaped
    for new in [b'\\"mode\\":\\"mode\\"', b'\\"mode\\":12345678']:
        assert old in data and len(new) == len(old)
        bad = data.replace(old, new)
        (tmp_path / "bad.safetensors").write_bytes(bad)
        with pytest.raises(ValueError) as info:
            ce.EmbeddingBag.load(tmp_path / "bad.safetensors")
        assert isinstance(info.value, ce.CandleEmbedError)
    (tmp_path / "trunc.safetensors").write_bytes(data[:-5])
    with pytest.raises(ValueError):
        ce.EmbeddingBag.load(tmp_path / "trunc.safetensors")
    with pytest.raises(FileNotFoundError):
        ce.EmbeddingBag.load(tmp_path / "missing.safetensors")

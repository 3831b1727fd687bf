"""Property tests (hypothesis): random shapes, id dtypes, table dtypes and layouts against NumPy
float64 references written out here. Few examples each, so the file runs in seconds."""

from __future__ import annotations

from typing import Any

import candle_embed as ce
import numpy as np
from candle_embed import optim
from candle_embed._native import _testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
ID_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
FLOATS = {"float32": (np.float32, 1e-5), "float64": (np.float64, 1e-12)}


@st.composite
def problems(draw: Any) -> tuple[int, int, np.ndarray, str, np.random.Generator]:
    """(V, D, ids, table dtype, rng): ids of any width, rank 0..3, any layout."""
    v = draw(st.integers(1, 120))
    d = draw(st.integers(1, 40))
    shape = tuple(draw(st.lists(st.integers(0, 7), min_size=0, max_size=3)))
    id_dtype = draw(st.sampled_from(ID_DTYPES))
    v = min(v, int(np.iinfo(id_dtype).max) + 1)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, v, size=shape).astype(id_dtype)
    layout = draw(st.sampled_from(["c", "fortran", "reversed"]))
    if layout == "fortran":
        ids = np.asfortranarray(ids)
    elif layout == "reversed" and ids.ndim:
        ids = np.flip(ids)
    return v, d, ids, draw(st.sampled_from(list(FLOATS))), rng


@SETTINGS
@given(problems())
def test_lookup_equals_take(p: Any) -> None:
    v, d, ids, dtype, _ = p
    emb = ce.Embedding(v, d, dtype=dtype, seed=7)
    w = emb.weight
    want = np.take(w, ids.astype(np.int64), axis=0)
    np.testing.assert_array_equal(emb(ids), want)
    np.testing.assert_array_equal(_testing.lookup_portable(emb, ids), want)


@SETTINGS
@given(problems(), st.booleans(), st.booleans())
def test_backward_equals_add_at(p: Any, use_pad: bool, scale: bool) -> None:
    v, d, ids, dtype, rng = p
    ft, tol = FLOATS[dtype]
    pad = int(rng.integers(0, v)) if use_pad else None
    emb = ce.Embedding(v, d, dtype=dtype, seed=1, padding_idx=pad, scale_grad_by_freq=scale)
    g = rng.standard_normal(ids.shape + (d,)).astype(ft)
    flat = ids.reshape(-1).astype(np.int64)
    dense = np.zeros((v, d))
    np.add.at(dense, flat, g.reshape(-1, d).astype(np.float64))
    if scale:
        counts = np.bincount(flat, minlength=v)
        dense[counts > 0] /= counts[counts > 0, None]
    if pad is not None:
        dense[pad] = 0.0
    sg = emb.backward(ids, g)
    present = np.unique(flat)
    present = present[present != pad] if pad is not None else present
    np.testing.assert_array_equal(sg.indices, present)
    np.testing.assert_allclose(sg.to_dense(), dense, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(
        ce.index_add(np.zeros((v, d), ft), ids, g), _raw_add(ids, g, v), rtol=tol, atol=tol * 10
    )


def _raw_add(ids: np.ndarray, g: np.ndarray, v: int) -> np.ndarray:
    dense = np.zeros((v, g.shape[-1]))
    np.add.at(
        dense, ids.reshape(-1).astype(np.int64), g.reshape(-1, g.shape[-1]).astype(np.float64)
    )
    return dense


@SETTINGS
@given(problems())
def test_coalesce_equals_unique_and_add(p: Any) -> None:
    v, d, ids, dtype, rng = p
    ft, tol = FLOATS[dtype]
    vals = rng.standard_normal(ids.shape + (d,)).astype(ft)
    u, s = ce.coalesce(ids, vals)
    keys, inv = np.unique(ids.reshape(-1).astype(np.int64), return_inverse=True)
    sums = np.zeros((keys.size, d))
    np.add.at(sums, inv.reshape(-1), vals.reshape(-1, d).astype(np.float64))
    np.testing.assert_array_equal(u, keys)
    assert s.dtype == ft and s.shape == (keys.size, d)
    np.testing.assert_allclose(s, sums, rtol=tol, atol=tol * 10)


# ----------------------------------------------------------------------------- optimizers


def _coalesced(ids: np.ndarray, g: np.ndarray, v: int) -> tuple[np.ndarray, np.ndarray]:
    dense = _raw_add(ids, g, v)
    u = np.unique(ids)
    return u, dense[u]


def ref_step(
    kind: str,
    hp: dict[str, float],
    w: np.ndarray,
    st8: dict[str, np.ndarray],
    t: int,
    u: np.ndarray,
    g: np.ndarray,
) -> None:
    """One step of the written-out formulas (semantics.md), in place, float64."""
    if kind == "SGD":
        d = g + hp["weight_decay"] * w[u]
        if hp["momentum"]:
            st8["buf"][u] = hp["momentum"] * st8["buf"][u] + d
            d = st8["buf"][u]
        w[u] -= hp["lr"] * d
    elif kind == "Adagrad":
        st8["sum"][u] += g**2
        w[u] -= hp["lr"] / (1 + (t - 1) * hp["lr_decay"]) * g / (np.sqrt(st8["sum"][u]) + hp["eps"])
    elif kind == "RowWiseAdagrad":
        st8["acc"][u] += (g**2).mean(axis=1)
        w[u] -= hp["lr"] * g / (np.sqrt(st8["acc"][u])[:, None] + hp["eps"])
    else:
        b1, b2 = hp["beta1"], hp["beta2"]
        st8["m"][u] = b1 * st8["m"][u] + (1 - b1) * g
        st8["v"][u] = b2 * st8["v"][u] + (1 - b2) * g**2
        mhat = st8["m"][u] / (1 - b1**t)
        vhat = st8["v"][u] / (1 - b2**t)
        w[u] -= hp["lr"] * mhat / (np.sqrt(vhat) + hp["eps"] / np.sqrt(1 - b2**t))


@st.composite
def optimizers(draw: Any) -> tuple[str, dict[str, float]]:
    kind = draw(st.sampled_from(["SGD", "Adagrad", "RowWiseAdagrad", "SparseAdam"]))
    lr = draw(st.floats(1e-3, 0.5))
    if kind == "SGD":
        return kind, {
            "lr": lr,
            "momentum": draw(st.sampled_from([0.0, 0.5, 0.9])),
            "weight_decay": draw(st.sampled_from([0.0, 0.01])),
        }
    if kind == "Adagrad":
        return kind, {"lr": lr, "lr_decay": draw(st.sampled_from([0.0, 0.1])), "eps": 1e-8}
    if kind == "RowWiseAdagrad":
        return kind, {"lr": lr, "eps": 1e-6}
    return kind, {
        "lr": lr,
        "beta1": draw(st.sampled_from([0.8, 0.9])),
        "beta2": draw(st.sampled_from([0.99, 0.999])),
        "eps": 1e-6,
    }


def make_opt(kind: str, hp: dict[str, float], emb: ce.Embedding) -> optim.SparseOptimizer:
    if kind == "SGD":
        return optim.SGD(emb, hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])
    if kind == "Adagrad":
        return optim.Adagrad(emb, hp["lr"], lr_decay=hp["lr_decay"], eps=hp["eps"])
    if kind == "RowWiseAdagrad":
        return optim.RowWiseAdagrad(emb, hp["lr"], eps=hp["eps"])
    return optim.SparseAdam(emb, hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])


@SETTINGS
@given(
    optimizers(), st.integers(2, 40), st.integers(1, 9), st.integers(1, 4), st.integers(0, 2**31)
)
def test_optimizer_steps_equal_formulas(opt_hp: Any, v: int, d: int, steps: int, seed: int) -> None:
    kind, hp = opt_hp
    rng = np.random.default_rng(seed)
    emb = ce.Embedding(v, d, dtype="float64", seed=seed % 1000)
    w = emb.weight.copy()
    state = {k: np.zeros((v, d)) for k in ("buf", "sum", "m", "v")}
    state["acc"] = np.zeros(v)
    opt = make_opt(kind, hp, emb)
    for t in range(1, steps + 1):
        ids = rng.integers(0, v, size=int(rng.integers(1, 3 * v)))
        g = rng.standard_normal((ids.size, d))
        opt.step(emb.backward(ids, g))
        u, gv = _coalesced(ids, g, v)
        ref_step(kind, hp, w, state, t, u, gv)
    np.testing.assert_allclose(emb.weight, w, rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------------------- RoPE


@st.composite
def rope_problems(draw: Any) -> tuple[ce.RotaryEmbedding, np.ndarray, np.ndarray, str]:
    half = draw(st.integers(1, 16))
    head_dim = 2 * half
    factor = draw(st.sampled_from([1.0, 0.5]))
    if int(head_dim * factor) % 2:
        factor = 1.0
    layout = draw(st.sampled_from(["half", "interleaved"]))
    rope = ce.RotaryEmbedding(
        head_dim,
        base=draw(st.sampled_from([100.0, 10000.0])),
        partial_rotary_factor=factor,
        layout=layout,
    )
    t = draw(st.integers(1, 12))
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    x = rng.standard_normal(lead + (t, head_dim)).astype(dtype)
    pos = rng.integers(0, 2000, size=t)
    return rope, x, pos, dtype


@SETTINGS
@given(rope_problems())
def test_rope_inverse_norm_and_offset(p: Any) -> None:
    rope, x, pos, dtype = p
    _, tol = FLOATS[dtype]
    tol = max(tol, 1e-13) * 100
    y = rope.apply(x, pos)
    # a rotation: backward (the transpose) undoes it, and per-position norms are kept
    np.testing.assert_allclose(rope.apply_backward(y, pos), x, rtol=tol, atol=tol)
    np.testing.assert_allclose(
        np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=tol, atol=tol
    )
    # dims past rotary_dim pass through untouched
    r = rope.rotary_dim
    np.testing.assert_array_equal(y[..., r:], x[..., r:])
    # offset == explicit positions offset..offset+T
    t = x.shape[-2]
    off = int(pos[0])
    np.testing.assert_array_equal(rope.apply(x, offset=off), rope.apply(x, np.arange(off, off + t)))
    # the defining property: <R_m q, R_n k> depends only on m - n
    if x.ndim == 2 and t >= 2:
        q, k = x[0:1], x[1:2]
        a = float((rope.apply(q, [7]) * rope.apply(k, [3])).sum())
        b = float((rope.apply(q, [1007]) * rope.apply(k, [1003])).sum())
        assert abs(a - b) <= 1e-3 * (1 + abs(a)) if dtype == "float32" else 1e-9 * (1 + abs(a))


# ----------------------------------------------------------------------------- EmbeddingBag


@SETTINGS
@given(
    st.integers(1, 60),
    st.integers(1, 12),
    st.lists(st.integers(0, 6), min_size=0, max_size=8),
    st.sampled_from(["sum", "mean", "max"]),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**31),
)
def test_bag_equals_reference(
    v: int, d: int, sizes: list[int], mode: str, use_pad: bool, use_psw: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    pad = int(rng.integers(0, v)) if use_pad else None
    bag = ce.EmbeddingBag(v, d, mode=mode, padding_idx=pad, seed=seed % 997)
    w = bag.weight.astype(np.float64)
    ids = rng.integers(0, v, size=sum(sizes)).astype(rng.choice(ID_DTYPES[2:]))
    offsets = (
        np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        if sizes
        else np.zeros(0, np.int64)
    )
    psw = rng.standard_normal(ids.size).astype(np.float32) if use_psw and mode == "sum" else None
    want = np.zeros((len(sizes), d))
    for b, (s, n) in enumerate(zip(offsets, sizes)):
        rows = [
            (int(i), 1.0 if psw is None else float(psw[s + k]))
            for k, i in enumerate(ids[s : s + n])
        ]
        rows = [(i, c) for i, c in rows if i != pad]
        if not rows:
            continue
        m = np.stack([w[i] * c for i, c in rows])
        want[b] = {"sum": m.sum(0), "mean": m.mean(0), "max": m.max(0)}[mode]
    got = bag(ids, offsets, psw)
    assert got.shape == (len(sizes), d)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

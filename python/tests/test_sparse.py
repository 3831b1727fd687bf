"""Sparse gradients, scatter-add, coalesce and sparse optimizers, against float64 NumPy
references written out here (np.add.at and the update formulas)."""

from __future__ import annotations

import threading
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed import optim
from optim_refs import adamw_lazy

RNG = np.random.default_rng(1234)


def ref_backward(
    ids: np.ndarray,
    g: np.ndarray,
    v: int,
    padding_idx: int | None = None,
    scale: bool = False,
) -> np.ndarray:
    flat = ids.reshape(-1).astype(np.int64)
    rows = g.reshape(flat.size, -1).astype(np.float64)
    dense = np.zeros((v, rows.shape[1]))
    np.add.at(dense, flat, rows)
    if scale:
        counts = np.bincount(flat, minlength=v).astype(np.float64)
        nz = counts > 0
        dense[nz] /= counts[nz, None]
    if padding_idx is not None:
        dense[padding_idx] = 0.0
    return dense


def check_grad(g: ce.SparseGrad, dense: np.ndarray, ids: np.ndarray, pad: int | None, tol: float):
    present = np.unique(ids.reshape(-1).astype(np.int64))
    if pad is not None:
        present = present[present != pad]
    np.testing.assert_array_equal(g.indices, present)
    assert g.shape == dense.shape and g.nnz == present.size
    np.testing.assert_allclose(g.values, dense[present], rtol=tol, atol=tol)
    np.testing.assert_allclose(g.to_dense(), dense, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- backward


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("id_dtype", [np.int32, np.int64, np.uint16])
def test_backward_matches_add_at(dtype: str, tol: float, id_dtype: Any) -> None:
    emb = ce.Embedding(50, 7, dtype=dtype, seed=1)
    ids = RNG.integers(0, 50, size=(6, 9)).astype(id_dtype)
    g = RNG.standard_normal((6, 9, 7)).astype(dtype)
    sg = emb.backward(ids, g)
    check_grad(sg, ref_backward(ids, g, 50), ids, None, tol)
    assert sg.values.dtype == np.dtype(dtype)


@pytest.mark.parametrize("pad", [0, 3, -1])
@pytest.mark.parametrize("scale", [False, True])
def test_backward_padding_and_freq(pad: int, scale: bool) -> None:
    emb = ce.Embedding(20, 4, padding_idx=pad, scale_grad_by_freq=scale, dtype="float64", seed=2)
    p = emb.padding_idx
    ids = RNG.integers(0, 20, size=300)
    ids[::7] = p
    g = RNG.standard_normal((300, 4))
    sg = emb.backward(ids, g)
    check_grad(sg, ref_backward(ids, g, 20, p, scale), ids, p, 1e-12)
    assert p not in sg.indices


def test_backward_large_parallel_path_and_threads() -> None:
    emb = ce.Embedding(5000, 64, scale_grad_by_freq=True, padding_idx=7, seed=3)
    ids = RNG.integers(0, 5000, size=(40, 512))
    ids[0, :50] = 7
    g = RNG.standard_normal((40, 512, 64)).astype(np.float32)
    old = ce.get_num_threads()
    try:
        ce.set_num_threads(1)
        a = emb.backward(ids, g)
        ce.set_num_threads(2)
        b = emb.backward(ids, g)
        ce.set_num_threads(3)
        c = emb.backward(ids, g)
    finally:
        ce.set_num_threads(old)
    for other in (b, c):
        np.testing.assert_array_equal(a.indices, other.indices)
        assert a.values.tobytes() == other.values.tobytes()
    check_grad(a, ref_backward(ids, g, 5000, 7, True), ids, 7, 1e-4)


def test_backward_edge_cases() -> None:
    emb = ce.Embedding(10, 3, padding_idx=2, seed=0)
    sg = emb.backward(np.array([2, 2], dtype=np.int64), np.ones((2, 3), np.float32))
    assert sg.nnz == 0 and sg.values.shape == (0, 3) and sg.indices.shape == (0,)
    sg = emb.backward(np.zeros((0,), np.int64), np.zeros((0, 3), np.float32))
    assert sg.nnz == 0 and sg.shape == (10, 3)
    np.testing.assert_array_equal(sg.to_dense(), np.zeros((10, 3)))


def test_backward_bad_inputs() -> None:
    emb = ce.Embedding(10, 3, seed=0)
    before = emb.weight.copy()
    with pytest.raises(ValueError, match="grad_output"):
        emb.backward(np.array([1, 2]), np.ones((2, 4), np.float32))
    with pytest.raises(ValueError):
        emb.backward(np.array([[1, 2]]), np.ones((2, 3), np.float32))
    with pytest.raises(IndexError, match="10"):
        emb.backward(np.array([1, 10]), np.ones((2, 3), np.float32))
    with pytest.raises(IndexError):
        emb.backward(np.array([-1, 0]), np.ones((2, 3), np.float32))
    with pytest.raises(TypeError):
        emb.backward(np.array([1.0, 2.0]), np.ones((2, 3), np.float32))
    with pytest.raises(TypeError):
        emb.backward(np.array([1, 2]), np.ones((2, 3), np.complex64))
    assert isinstance(
        pytest.raises(ValueError, emb.backward, [1], [[1.0]]).value, ce.CandleEmbedError
    )
    np.testing.assert_array_equal(emb.weight, before)


# ----------------------------------------------------------------------------- index_add / coalesce


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_index_add_matches_add_at_exactly(dtype: Any) -> None:
    for n, v, d in [(50, 30, 5), (20000, 3000, 16)]:
        dst = RNG.standard_normal((v, d)).astype(dtype)
        ids = RNG.integers(0, v, size=n)
        src = RNG.standard_normal((n, d)).astype(dtype)
        keep = dst.copy()
        out = ce.index_add(dst, ids, src)
        ref = dst.copy()
        np.add.at(ref, ids, src)  # same per-row order: exact
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(dst, keep)


def test_index_add_nd_and_threads() -> None:
    dst = RNG.standard_normal((100, 2, 3))
    ids = RNG.integers(0, 100, size=(40, 25))
    src = RNG.standard_normal((40, 25, 2, 3))
    ref = dst.copy()
    np.add.at(ref, ids.reshape(-1), src.reshape(-1, 2, 3))
    old = ce.get_num_threads()
    try:
        ce.set_num_threads(1)
        a = ce.index_add(dst, ids, src)
        ce.set_num_threads(2)
        b = ce.index_add(dst, ids, src)
    finally:
        ce.set_num_threads(old)
    assert a.tobytes() == b.tobytes()
    np.testing.assert_allclose(a, ref, rtol=1e-12, atol=1e-12)


def test_index_add_bad_inputs() -> None:
    dst = np.zeros((5, 3), np.float32)
    with pytest.raises(IndexError, match="5"):
        ce.index_add(dst, [0, 5], np.ones((2, 3), np.float32))
    with pytest.raises(IndexError):
        ce.index_add(dst, [-1], np.ones((1, 3), np.float32))
    with pytest.raises(ValueError):
        ce.index_add(dst, [0, 1], np.ones((2, 4), np.float32))
    with pytest.raises(ValueError):
        ce.index_add(dst, [0, 1], np.ones((3, 3), np.float32))
    with pytest.raises(TypeError):
        ce.index_add(dst.astype(np.int32), [0], np.ones((1, 3)))
    with pytest.raises(TypeError):
        ce.index_add(dst, [0.5], np.ones((1, 3), np.float32))
    np.testing.assert_array_equal(dst, np.zeros((5, 3)))


@pytest.mark.parametrize("n", [40, 30000])
def test_coalesce_matches_reference(n: int) -> None:
    ids = RNG.integers(0, max(n // 4, 3), size=n)
    vals = RNG.standard_normal((n, 6))
    u, s = ce.coalesce(ids, vals)
    ref_u = np.unique(ids)
    dense = np.zeros((ids.max() + 1, 6))
    np.add.at(dense, ids, vals)  # same order per row: exact in float64
    np.testing.assert_array_equal(u, ref_u)
    assert u.dtype == np.int64 and s.dtype == np.float64
    np.testing.assert_array_equal(s, dense[ref_u])
    u32, s32 = ce.coalesce(ids.astype(np.uint32), vals.astype(np.float32))
    np.testing.assert_array_equal(u32, ref_u)
    np.testing.assert_allclose(s32, dense[ref_u], rtol=1e-5, atol=1e-5)


def test_coalesce_shapes_and_errors() -> None:
    u, s = ce.coalesce(np.array([[3, 1], [3, 3]]), np.ones((2, 2, 4), np.float32))
    np.testing.assert_array_equal(u, [1, 3])
    np.testing.assert_array_equal(s, [[1] * 4, [3] * 4])
    u, s = ce.coalesce(np.zeros(0, np.int64), np.zeros((0, 4)))
    assert u.shape == (0,) and s.shape == (0, 4)
    with pytest.raises(ValueError):
        ce.coalesce([1, 2], np.ones((3, 4)))
    with pytest.raises(IndexError):
        ce.coalesce([1, -2], np.ones((2, 4)))
    with pytest.raises(TypeError):
        ce.coalesce([1, 2], np.ones((2, 4), np.int64))


def test_sparse_grad_from_rows() -> None:
    g = ce.SparseGrad.from_rows([4, 1, 4], np.arange(6, dtype=np.float32).reshape(3, 2), 6)
    np.testing.assert_array_equal(g.indices, [1, 4])
    np.testing.assert_array_equal(g.values, [[2, 3], [4, 6]])
    assert g.shape == (6, 2)
    with pytest.raises(IndexError):
        ce.SparseGrad.from_rows([6], np.ones((1, 2), np.float32), 6)


# ----------------------------------------------------------------------------- optimizers


def grads_for(v: int, d: int, steps: int, n: int = 60) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for _ in range(steps):
        ids = RNG.integers(0, v // 2, size=n)  # rows >= v//2 are never touched
        out.append((ids, RNG.standard_normal((n, d))))
    return out


def coalesced(ids: np.ndarray, g: np.ndarray, v: int) -> tuple[np.ndarray, np.ndarray]:
    dense = np.zeros((v, g.shape[1]))
    np.add.at(dense, ids, g)
    u = np.unique(ids)
    return u, dense[u]


def ref_sgd(w, steps, v, lr, momentum, wd):  # type: ignore[no-untyped-def]
    w = w.astype(np.float64)
    buf = np.zeros_like(w)
    for ids, g in steps:
        u, gv = coalesced(ids, g, v)
        d = gv + wd * w[u]
        if momentum:
            buf[u] = momentum * buf[u] + d
            d = buf[u]
        w[u] -= lr * d
    return w, {"momentum_buffer": buf} if momentum else {}


def ref_adagrad(w, steps, v, lr, lr_decay, init, eps):  # type: ignore[no-untyped-def]
    w = w.astype(np.float64)
    s = np.full_like(w, init)
    for t, (ids, g) in enumerate(steps, start=1):
        u, gv = coalesced(ids, g, v)
        clr = lr / (1 + (t - 1) * lr_decay)
        s[u] += gv**2
        w[u] -= clr * gv / (np.sqrt(s[u]) + eps)
    return w, {"sum": s}


def ref_rowwise(w, steps, v, lr, eps):  # type: ignore[no-untyped-def]
    w = w.astype(np.float64)
    acc = np.zeros(w.shape[0])
    for ids, g in steps:
        u, gv = coalesced(ids, g, v)
        acc[u] += (gv**2).mean(axis=1)
        w[u] -= lr * gv / (np.sqrt(acc[u])[:, None] + eps)
    return w, {"sum": acc}


def ref_adam(w, steps, v, lr, b1, b2, eps):  # type: ignore[no-untyped-def]
    w = w.astype(np.float64)
    m = np.zeros_like(w)
    s = np.zeros_like(w)
    for t, (ids, g) in enumerate(steps, start=1):
        u, gv = coalesced(ids, g, v)
        m[u] += (1 - b1) * (gv - m[u])
        s[u] += (1 - b2) * (gv**2 - s[u])
        w[u] -= lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m[u] / (np.sqrt(s[u]) + eps)
    return w, {"exp_avg": m, "exp_avg_sq": s}


CASES = [
    ("SGD", lambda e: optim.SGD(e, 0.1), lambda w, st, v: ref_sgd(w, st, v, 0.1, 0.0, 0.0)),
    (
        "SGD-mom-wd",
        lambda e: optim.SGD(e, 0.05, momentum=0.9, weight_decay=0.01),
        lambda w, st, v: ref_sgd(w, st, v, 0.05, 0.9, 0.01),
    ),
    (
        "Adagrad",
        lambda e: optim.Adagrad(e, 0.1, lr_decay=0.05, initial_accumulator_value=0.1, eps=1e-8),
        lambda w, st, v: ref_adagrad(w, st, v, 0.1, 0.05, 0.1, 1e-8),
    ),
    (
        "RowWiseAdagrad",
        lambda e: optim.RowWiseAdagrad(e, 0.2, eps=1e-6),
        lambda w, st, v: ref_rowwise(w, st, v, 0.2, 1e-6),
    ),
    (
        "SparseAdam",
        lambda e: optim.SparseAdam(e, 0.01, betas=(0.8, 0.99), eps=1e-6),
        lambda w, st, v: ref_adam(w, st, v, 0.01, 0.8, 0.99, 1e-6),
    ),
    (
        "AdamW",
        lambda e: optim.AdamW(e, 0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3),
        lambda w, st, v: adamw_lazy(w, st, v, 0.01, (0.8, 0.99), 1e-6, 0.3),
    ),
]


@pytest.mark.parametrize("name,make,ref", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-11)])
def test_optimizer_matches_reference(
    name: str, make: Any, ref: Any, dtype: str, tol: float
) -> None:
    v, d = 40, 8
    emb = ce.Embedding(v, d, dtype=dtype, seed=5)
    w0 = emb.weight
    opt = make(emb)
    steps = grads_for(v, d, 4)
    for ids, g in steps:
        opt.step(emb.backward(ids, g.astype(dtype)))
    want, want_state = ref(w0, steps, v)
    got = emb.weight
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    # untouched rows are bit-identical
    assert got[v // 2 :].tobytes() == w0[v // 2 :].tobytes()
    sd = opt.state_dict()
    assert sd["kind"] == name.split("-")[0] and sd["step"] == [4]
    for k, arr in want_state.items():
        np.testing.assert_allclose(sd["state"][0][k], arr, rtol=tol, atol=tol)


@pytest.mark.parametrize("name,make,ref", CASES, ids=[c[0] for c in CASES])
def test_checkpoint_resume_bit_identical(name: str, make: Any, ref: Any) -> None:
    v, d = 64, 16
    steps = grads_for(v, d, 6)
    a = ce.Embedding(v, d, seed=9)
    w0 = a.weight
    oa = make(a)
    for ids, g in steps:
        oa.step(a.backward(ids, g.astype(np.float32)))

    b = ce.Embedding.from_pretrained(w0, freeze=False)
    ob = make(b)
    for ids, g in steps[:3]:
        ob.step(b.backward(ids, g.astype(np.float32)))
    saved_w, saved_state = b.weight, ob.state_dict()

    c = ce.Embedding.from_pretrained(saved_w, freeze=False)
    oc = make(c)
    oc.load_state_dict(saved_state)
    for ids, g in steps[3:]:
        oc.step(c.backward(ids, g.astype(np.float32)))
    assert c.weight.tobytes() == a.weight.tobytes()
    sa, sc = oa.state_dict(), oc.state_dict()
    assert sa["step"] == sc["step"]
    for k in sa["state"][0]:
        assert sa["state"][0][k].tobytes() == sc["state"][0][k].tobytes()


def snapshot(emb: ce.Embedding, opt: optim.SparseOptimizer) -> tuple[bytes, dict[str, Any]]:
    return emb.weight.tobytes(), opt.state_dict()


def assert_same(snap: tuple[bytes, dict[str, Any]], emb: ce.Embedding, opt: Any) -> None:
    w, sd = snap
    assert emb.weight.tobytes() == w
    now = opt.state_dict()
    assert now["step"] == sd["step"]
    for a, b in zip(now["state"], sd["state"]):
        for k in a:
            assert a[k].tobytes() == b[k].tobytes()


@pytest.mark.parametrize("name,make,ref", CASES, ids=[c[0] for c in CASES])
def test_optimizer_bad_inputs_leave_state_unchanged(name: str, make: Any, ref: Any) -> None:
    e1 = ce.Embedding(10, 4, seed=1)
    e2 = ce.Embedding(6, 4, seed=2)
    opt = make([e1, e2])
    opt.step([e1.backward([1, 2], np.ones((2, 4), np.float32)), None])
    s1, s2 = snapshot(e1, opt), e2.weight.tobytes()
    good = e1.backward([3], np.ones((1, 4), np.float32))
    wrong_rows = ce.SparseGrad.from_rows([1], np.ones((1, 4), np.float32), 11)
    wrong_dim = ce.SparseGrad.from_rows([1], np.ones((1, 3), np.float32), 6)
    # the first table's grad is fine, the second's is not: nothing may change
    with pytest.raises(ValueError, match="shape"):
        opt.step([good, wrong_dim])
    with pytest.raises(ValueError, match="shape"):
        opt.step([wrong_rows, None])
    with pytest.raises(ValueError):
        opt.step([good])
    with pytest.raises(ValueError):
        opt.step(good)
    with pytest.raises(TypeError):
        opt.step([good, np.ones((6, 4))])
    with pytest.raises(TypeError):
        opt.step("grad")
    bad_state = opt.state_dict()
    if bad_state["state"][0]:
        k = next(iter(bad_state["state"][0]))
        bad_state["state"][1][k] = np.zeros((7, 4), np.float32)
        with pytest.raises(ValueError):
            opt.load_state_dict(bad_state)
    wrong_kind = opt.state_dict()
    wrong_kind["kind"] = "Nope"
    with pytest.raises(ValueError):
        opt.load_state_dict(wrong_kind)
    with pytest.raises(ValueError):
        opt.load_state_dict({"kind": name.split("-")[0], "step": [0], "state": [{}]})
    assert_same(s1, e1, opt)
    assert e2.weight.tobytes() == s2


def test_optimizer_construction_errors() -> None:
    frozen = ce.Embedding.from_pretrained(np.ones((4, 2), np.float32))
    for make in (
        lambda p: optim.SGD(p, 0.1),
        lambda p: optim.Adagrad(p),
        lambda p: optim.RowWiseAdagrad(p),
        lambda p: optim.SparseAdam(p),
    ):
        with pytest.raises(ValueError, match="frozen"):
            make(frozen)
        with pytest.raises(TypeError):
            make(np.ones((4, 2)))
    emb = ce.Embedding(4, 2, seed=0)
    with pytest.raises(ValueError):
        optim.SGD(emb, -1.0)
    with pytest.raises(ValueError):
        optim.SparseAdam(emb, betas=(1.0, 0.9))
    with pytest.raises(ValueError):
        optim.Adagrad(emb, eps=float("nan"))


def test_sparse_parameters_protocol_and_none_grads() -> None:
    class Pair:
        def __init__(self) -> None:
            self.a = ce.Embedding(5, 2, seed=1)
            self.b = ce.Embedding(7, 2, seed=2)

        def sparse_parameters(self) -> list[ce.Embedding]:
            return [self.a, self.b]

    p = Pair()
    opt = optim.SGD(p, 1.0)
    assert len(opt.params) == 2
    a0, b0 = p.a.weight, p.b.weight
    opt.step([None, ce.SparseGrad.from_rows([6], np.ones((1, 2), np.float32), 7)])
    assert p.a.weight.tobytes() == a0.tobytes()
    np.testing.assert_array_equal(p.b.weight[6], b0[6] - 1.0)
    np.testing.assert_array_equal(p.b.weight[:6], b0[:6])


@pytest.mark.parametrize("name,make,ref", CASES, ids=[c[0] for c in CASES])
def test_optimizer_thread_count_determinism(name: str, make: Any, ref: Any) -> None:
    v, d = 3000, 32
    steps = grads_for(v, d, 3, n=4000)
    old = ce.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            ce.set_num_threads(threads)
            emb = ce.Embedding(v, d, seed=11)
            opt = make(emb)
            for ids, g in steps:
                opt.step(emb.backward(ids, g.astype(np.float32)))
            out.append(emb.weight.tobytes())
    finally:
        ce.set_num_threads(old)
    assert out[0] == out[1]


def test_step_and_concurrent_lookup_never_tear_rows() -> None:
    v, d = 512, 1024
    emb = ce.Embedding.from_pretrained(np.zeros((v, d), np.float32), freeze=False)
    opt = optim.SGD(emb, 1.0)
    grad = ce.SparseGrad.from_rows(np.arange(v), -np.ones((v, d), np.float32), v)
    stop = threading.Event()
    torn: list[int] = []

    def reader() -> None:
        ids = np.arange(v)
        while not stop.is_set():
            rows = emb(ids)
            if not (rows == rows[:, :1]).all():
                torn.append(1)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(200):
            opt.step(grad)
    finally:
        stop.set()
        t.join()
    assert not torn
    np.testing.assert_array_equal(emb.weight, np.full((v, d), 200.0, np.float32))

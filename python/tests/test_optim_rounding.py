"""Half-precision training (issue 15 item 3): float16 / bfloat16 tables stepped by every
optimizer with float32 state, and ``stochastic_rounding=True`` (FBGEMM's rule). References:
NumPy float32 arithmetic for the exact update, NumPy's own float16 and the bfloat16 bit layout
(the high half of a float32) for the representable neighbours, and the float64 references of
``optim_refs.py``."""

from __future__ import annotations

from typing import Any, Callable

import candle_embed as ce
import numpy as np
import optim_refs as ref
import pytest
from candle_embed import optim

N = 50_000  # identical rows: N independent roundings of the same update per column


def bf16_neighbours(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bfloat16 is the high 16 bits of a float32: truncating the low bits rounds toward zero,
    and adding one unit in the last kept place steps away from zero."""
    bits = np.asarray(x, np.float32).view(np.uint32)
    lo = bits & np.uint32(0xFFFF0000)
    hi = np.where(lo == bits, lo, lo + np.uint32(0x10000))
    return lo.view(np.float32).astype(np.float64), hi.view(np.float32).astype(np.float64)


def f16_neighbours(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy's float16: its nearest value, then one float16 step toward or away from zero."""
    x = np.asarray(x, np.float32)
    h = x.astype(np.float16)
    zero = np.zeros_like(h)
    outward = np.copysign(np.inf, x).astype(np.float16)
    toward = np.where(np.abs(h.astype(np.float32)) > np.abs(x), np.nextafter(h, zero), h)
    away = np.where(toward.astype(np.float32) == x, toward, np.nextafter(toward, outward))
    return toward.astype(np.float64), away.astype(np.float64)


NEIGHBOURS = {"bfloat16": bf16_neighbours, "float16": f16_neighbours}


def bf16_nearest(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even to bfloat16 on the float32 bits."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


def check_unbiased(got: np.ndarray, exact: np.ndarray, dtype: str, rel: float = 0.0) -> None:
    """Each column of ``got`` (N rounded copies of ``exact[j]``) holds only the two neighbours
    of ``exact[j]``, and its mean is ``exact[j]`` within 5 standard errors of the mean: with
    p = (x - lo) / (hi - lo) a rounding is a Bernoulli(p) choice, so the mean of N has
    standard error (hi - lo) * sqrt(p (1 - p) / N); a false failure has probability < 1e-6.
    ``rel`` allows for the reference's own distance from the float32 update (float64
    references of the non-SGD rules)."""
    lo, hi = NEIGHBOURS[dtype](exact.astype(np.float32))
    width = np.abs(hi - lo)
    for j in range(exact.size):
        col = got[:, j].astype(np.float64)
        near = np.abs(col - exact[j]) <= width[j] * (1 + 1e-6) + rel * abs(exact[j])
        assert near.all(), (j, np.unique(col), lo[j], hi[j])
        p = 0.0 if width[j] == 0 else abs(exact[j] - lo[j]) / width[j]
        se = width[j] * np.sqrt(max(p * (1 - p), 0.0) / N)
        assert abs(col.mean() - exact[j]) <= 5 * se + rel * abs(exact[j]) + 1e-30, (
            j,
            col.mean(),
            exact[j],
            se,
        )


W0 = {
    # exactly representable in both types; across binades, signs and f16's subnormal range
    "float16": np.array([1.0, -3.0, 2.0**-16, -(2.0**-20), 1000.0, 0.5, 7.0, -0.125]),
    "bfloat16": np.array([1.0, -3.0, 2.0**-16, -(2.0**-20), 1000.0, 2.0**-130, 7.0, -0.125]),
}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_sgd_rounded_update_is_unbiased(dtype: str) -> None:
    w0 = W0[dtype]
    # updates at fractions of each value's spacing, all far below half a spacing for some
    g = np.array([1e-4, -2.3e-3, 1.7e-6, 3.1e-7, 0.3, 2.0**-140, -1e-5, 9.9e-4])
    emb = ce.Embedding(N, w0.size, dtype=dtype, seed=0)
    emb.weight = np.tile(w0.astype(np.float32), (N, 1))
    opt = optim.SGD(emb, 1.0, stochastic_rounding=True, seed=11)
    opt.step(ce.SparseGrad.from_rows(np.arange(N), np.tile(g.astype(np.float32), (N, 1)), N))
    exact = (w0.astype(np.float32) - np.float32(1.0) * g.astype(np.float32)).astype(np.float64)
    check_unbiased(emb.weight, exact, dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_round_to_nearest_is_the_default(dtype: str) -> None:
    w0, g = W0[dtype], np.full(W0[dtype].size, 3e-3)
    emb = ce.Embedding(4, w0.size, dtype=dtype, seed=0)
    emb.weight = np.tile(w0.astype(np.float32), (4, 1))
    optim.SGD(emb, 1.0).step(ce.SparseGrad.from_rows([0, 3], np.tile(g, (2, 1)), 4))
    exact = w0.astype(np.float32) - g.astype(np.float32)
    want = (
        exact.astype(np.float16).astype(np.float64) if dtype == "float16" else bf16_nearest(exact)
    )
    np.testing.assert_array_equal(emb.weight[0], want)
    np.testing.assert_array_equal(emb.weight[1], w0)


MAKERS: list[tuple[str, Callable[..., Any], Callable[..., Any]]] = [
    ("SGD", lambda e, **k: optim.SGD(e, 1e-4, momentum=0.9, **k), ref.sgd_lazy),
    ("Adagrad", lambda e, **k: optim.Adagrad(e, 1e-3, weight_decay=0.1, **k), ref.adagrad_lazy),
    ("RowWiseAdagrad", lambda e, **k: optim.RowWiseAdagrad(e, 1e-3, **k), ref.rowwise_lazy),
    ("SparseAdam", lambda e, **k: optim.SparseAdam(e, 1e-3, **k), ref.sparse_adam_lazy),
    ("AdamW", lambda e, **k: optim.AdamW(e, 1e-3, weight_decay=0.05, **k), ref.adamw_lazy),
]
HP = {
    "SGD": {"lr": 1e-4, "momentum": 0.9},
    "Adagrad": {"lr": 1e-3, "weight_decay": 0.1},
    "RowWiseAdagrad": {"lr": 1e-3},
    "SparseAdam": {"lr": 1e-3},
    "AdamW": {"lr": 1e-3, "weight_decay": 0.05},
}


@pytest.mark.parametrize("name,make,want", MAKERS, ids=[m[0] for m in MAKERS])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_optimizer_rounds_half_tables_stochastically(
    name: str, make: Any, want: Any, dtype: str
) -> None:
    """Updates below 2e-3 on values in [8, 16), where half a spacing is 2^-8 (float16) or
    2^-5 (bfloat16): round-to-nearest leaves the table unchanged; stochastic rounding keeps
    the float64 rule's value on average."""
    w0 = np.array([9.0, -10.5, 12.25, 8.5, -14.0, 15.0])
    g = np.array([0.5, -1.0, 2.0, 0.25, -0.75, 1.5])
    rows, grads = np.arange(N), np.tile(g, (N, 1))
    expected, _ = want(np.tile(w0, (1, 1)), [(np.array([0]), g[None])], 1, **HP[name])
    for sr in (False, True):
        emb = ce.Embedding(N, w0.size, dtype=dtype, seed=0)
        emb.weight = np.tile(w0.astype(np.float32), (N, 1))
        make(emb, stochastic_rounding=sr, seed=5).step(ce.SparseGrad.from_rows(rows, grads, N))
        if sr:
            check_unbiased(emb.weight, expected[0], dtype, rel=1e-6)
        else:
            np.testing.assert_array_equal(emb.weight[:3], np.tile(w0, (3, 1)))


def test_stochastic_rounding_is_seeded_and_thread_independent() -> None:
    v, d = 3000, 32
    rng = np.random.default_rng(3)
    steps = [(rng.integers(0, v, size=4000), rng.standard_normal((4000, d))) for _ in range(3)]

    def run(dtype: str, threads: int, seed: int, sr: bool = True) -> bytes:
        old = ce.get_num_threads()
        try:
            ce.set_num_threads(threads)
            emb = ce.Embedding(v, d, dtype=dtype, seed=1)
            opt = optim.AdamW(emb, 1e-3, stochastic_rounding=sr, seed=seed)
            for ids, g in steps:
                opt.step(emb.backward(ids, g.astype(np.float32)))
            return bytes(emb.weight.tobytes())
        finally:
            ce.set_num_threads(old)

    for dtype in ("bfloat16", "float16"):
        a = run(dtype, 1, 7)
        assert a == run(dtype, 2, 7)
        assert a != run(dtype, 1, 8)
        assert a != run(dtype, 1, 7, sr=False)
    # float32 tables hold the update exactly: the option changes nothing
    assert run("float32", 2, 7) == run("float32", 2, 7, sr=False)


def test_bf16_training_with_stochastic_rounding_tracks_float32() -> None:
    """Least squares 0.5 * ||w - T||^2 per row, SGD lr 0.005 for 1000 steps from w = T + 0.25.
    Each step asks for 0.005 * |w - T| <= 0.00125, below half of bfloat16's spacing 2^-7 in
    [1, 2): round-to-nearest never moves a weight. With stochastic rounding the expected
    trajectory is float32's (the update is linear in w and the rounding unbiased); a weight's
    own noise stays of the order of one spacing, so the tolerance is one spacing in RMS
    distance to the float32 run, and 5e-4 for the mean over the 8192 weights (the mean's
    standard error is below 1e-4)."""
    rng = np.random.default_rng(0)
    v, d, lr, steps = 128, 64, 0.005, 1000
    target = (1 + rng.integers(0, 96, size=(v, d)) / 128).astype(np.float32)
    w0 = target + np.float32(0.25)
    ids = np.arange(v)
    final = {}
    for name, dtype, sr in [
        ("float32", "float32", False),
        ("nearest", "bfloat16", False),
        ("stochastic", "bfloat16", True),
    ]:
        emb = ce.Embedding(v, d, dtype=dtype, seed=0)
        emb.weight = w0
        opt = optim.SGD(emb, lr, stochastic_rounding=sr, seed=1)
        for _ in range(steps):
            opt.step(emb.backward(ids, (emb.weight - target).astype(np.float32)))
        final[name] = emb.weight.astype(np.float64)
    spacing = 2.0**-7
    np.testing.assert_array_equal(final["nearest"], w0)  # stalled from the first step
    diff = final["stochastic"] - final["float32"]
    assert abs(diff.mean()) < 5e-4
    assert np.sqrt((diff**2).mean()) < spacing
    # the float32 run itself converged: its residual is 0.25 * (1 - lr)^1000
    np.testing.assert_allclose(final["float32"] - target, 0.25 * (1 - lr) ** steps, rtol=1e-3)

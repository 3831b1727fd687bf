"""PyTorch parity of the sparse optimizers (issue 18 item 5): maximize, SGD dampening and
Nesterov with PyTorch's argument checks, Adagrad's lr_decay / initial_accumulator_value /
weight_decay, and sparse AdamW. Every expectation comes from the float64 NumPy references of
the documented rules in ``optim_refs.py``."""

from __future__ import annotations

from typing import Any, Callable

import candle_embed as ce
import numpy as np
import optim_refs as ref
import pytest
from candle_embed import optim

RNG = np.random.default_rng(2024)
V, D = 40, 6
TOL = {"float32": 3e-5, "float64": 1e-11}


def sparse_steps(steps: int, n: int = 50) -> ref.Steps:
    """Gradients over the first half of the rows only (the second half is never touched)."""
    return [(RNG.integers(0, V // 2, size=n), RNG.standard_normal((n, D))) for _ in range(steps)]


def full_steps(steps: int) -> ref.Steps:
    """Every row touched every step (each exactly once)."""
    return [(RNG.permutation(V), RNG.standard_normal((V, D))) for _ in range(steps)]


def dense(step: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    ids, g = step
    out = np.zeros((V, D))
    np.add.at(out, ids, g)
    return out


def run(make: Callable[[ce.Embedding], Any], steps: ref.Steps, dtype: str) -> tuple[Any, ...]:
    """Step a fresh table with ``make``; return (initial weight, final weight, state dict)."""
    emb = ce.Embedding(V, D, dtype=dtype, seed=7)
    w0 = emb.weight
    opt = make(emb)
    for ids, g in steps:
        opt.step(emb.backward(ids, g.astype(dtype)))
    return w0, emb.weight, opt.state_dict()


def check(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


# (optimizer class, lr, lazy reference, dense reference, hyper-parameters)
RULES: list[tuple[Any, float, Any, Any, dict[str, Any]]] = [
    (optim.SGD, 0.05, ref.sgd_lazy, ref.sgd_dense, {"momentum": 0.9, "dampening": 0.3}),
    (optim.SGD, 0.05, ref.sgd_lazy, ref.sgd_dense, {"momentum": 0.8, "nesterov": True}),
    (
        optim.SGD,
        0.05,
        ref.sgd_lazy,
        ref.sgd_dense,
        {"momentum": 0.5, "dampening": 0.5, "weight_decay": 0.05, "maximize": True},
    ),
    (
        optim.SGD,
        0.05,
        ref.sgd_lazy,
        ref.sgd_dense,
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "maximize": True},
    ),
    (optim.SGD, 0.05, ref.sgd_lazy, ref.sgd_dense, {"weight_decay": 0.1, "maximize": True}),
    (
        optim.Adagrad,
        0.1,
        ref.adagrad_lazy,
        ref.adagrad_dense,
        {"lr_decay": 0.1, "initial_accumulator_value": 0.5},
    ),
    (optim.Adagrad, 0.1, ref.adagrad_lazy, ref.adagrad_dense, {"weight_decay": 0.05}),
    (
        optim.Adagrad,
        0.1,
        ref.adagrad_lazy,
        ref.adagrad_dense,
        {"lr_decay": 0.05, "weight_decay": 0.02, "initial_accumulator_value": 0.1, "eps": 1e-6},
    ),
    (
        optim.Adagrad,
        0.1,
        ref.adagrad_lazy,
        ref.adagrad_dense,
        {"weight_decay": 0.05, "maximize": True},
    ),
]
RULE_IDS = [f"{r[0].__name__}-{r[4]}" for r in RULES]


@pytest.mark.parametrize("cls,lr,lazy,dense_rule,hp", RULES, ids=RULE_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sgd_adagrad_match_pytorch_rule_on_touched_rows(
    cls: Any, lr: float, lazy: Any, dense_rule: Any, hp: dict[str, Any], dtype: str
) -> None:
    steps = sparse_steps(5)
    w0, got, sd = run(lambda e: cls(e, lr, **hp), steps, dtype)
    want, state = lazy(w0, steps, V, lr, **hp)
    check(got, want, dtype)
    # momentum and weight decay are lazy: untouched rows do not move
    assert got[V // 2 :].tobytes() == w0[V // 2 :].tobytes()
    for k, arr in state.items():
        check(sd["state"][0][k], arr, dtype)


@pytest.mark.parametrize("cls,lr,lazy,dense_rule,hp", RULES, ids=RULE_IDS)
def test_sgd_adagrad_every_row_touched_equal_dense_pytorch(
    cls: Any, lr: float, lazy: Any, dense_rule: Any, hp: dict[str, Any]
) -> None:
    steps = full_steps(5)
    w0, got, _ = run(lambda e: cls(e, lr, **hp), steps, "float64")
    check(got, dense_rule(w0, [dense(s) for s in steps], lr, **hp), "float64")


def test_sgd_argument_checks_follow_pytorch() -> None:
    emb = ce.Embedding(V, D, seed=1)
    with pytest.raises(ce.CandleEmbedValueError, match="Nesterov momentum requires"):
        optim.SGD(emb, 0.1, nesterov=True)
    with pytest.raises(ce.CandleEmbedValueError, match="Nesterov momentum requires"):
        optim.SGD(emb, 0.1, momentum=0.9, dampening=0.1, nesterov=True)
    for bad in (
        {"momentum": -0.1},
        {"weight_decay": -1.0},
        {"dampening": float("nan")},
        {"dampening": float("inf")},
    ):
        with pytest.raises(ce.CandleEmbedValueError):
            optim.SGD(emb, 0.1, **bad)
    with pytest.raises(ce.CandleEmbedValueError):
        optim.SGD(emb, -0.1)
    with pytest.raises(ce.CandleEmbedTypeError):
        optim.SGD(emb, 0.1, momentum=0.9, nesterov=1)  # type: ignore[arg-type]
    # PyTorch accepts any dampening (no range check), and so do we.
    optim.SGD(emb, 0.1, momentum=0.9, dampening=1.5)


def test_adagrad_argument_checks() -> None:
    emb = ce.Embedding(V, D, seed=1)
    for bad in (
        {"weight_decay": -0.1},
        {"lr_decay": -1.0},
        {"initial_accumulator_value": -1.0},
        {"eps": -1e-3},
    ):
        with pytest.raises(ce.CandleEmbedValueError):
            optim.Adagrad(emb, 0.1, **bad)


MAXIMIZE: list[tuple[str, Callable[..., Any], Callable[..., Any]]] = [
    (
        "RowWiseAdagrad",
        lambda e, m: optim.RowWiseAdagrad(e, 0.2, maximize=m),
        lambda w, st, m: ref.rowwise_lazy(w, st, V, 0.2, maximize=m),
    ),
    (
        "SparseAdam",
        lambda e, m: optim.SparseAdam(e, 0.01, betas=(0.8, 0.99), eps=1e-6, maximize=m),
        lambda w, st, m: ref.sparse_adam_lazy(w, st, V, 0.01, (0.8, 0.99), 1e-6, maximize=m),
    ),
    (
        "AdamW",
        lambda e, m: optim.AdamW(e, 0.01, weight_decay=0.1, maximize=m),
        lambda w, st, m: ref.adamw_lazy(w, st, V, 0.01, weight_decay=0.1, maximize=m),
    ),
]


@pytest.mark.parametrize("name,make,want", MAXIMIZE, ids=[m[0] for m in MAXIMIZE])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("maximize", [False, True])
def test_maximize_matches_reference(
    name: str, make: Any, want: Any, dtype: str, maximize: bool
) -> None:
    steps = sparse_steps(4)
    w0, got, _ = run(lambda e: make(e, maximize), steps, dtype)
    check(got, want(w0, steps, maximize)[0], dtype)


ADAMW_CONFIGS: list[dict[str, Any]] = [
    {},
    {"weight_decay": 0.2, "betas": (0.8, 0.95)},
    {"weight_decay": 0.05, "eps": 1e-6, "maximize": True},
]


@pytest.mark.parametrize("hp", ADAMW_CONFIGS, ids=[str(h) for h in ADAMW_CONFIGS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adamw_every_row_touched_equals_dense_adamw(hp: dict[str, Any], dtype: str) -> None:
    steps = full_steps(6)
    w0, got, sd = run(lambda e: optim.AdamW(e, 0.05, **hp), steps, dtype)
    want, state = ref.adamw_dense(w0, [dense(s) for s in steps], 0.05, **hp)
    check(got, want, dtype)
    for k in ("exp_avg", "exp_avg_sq"):
        check(sd["state"][0][k], state[k], dtype)
    np.testing.assert_array_equal(sd["state"][0]["last_step"], np.full(V, 6))
    assert sd["state"][0]["last_step"].dtype == np.int64 and sd["step"] == [6]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adamw_first_touch_after_idle_steps_equals_dense_adamw(dtype: str) -> None:
    """Row r is idle (zero gradient) until step first[r], then touched every step. Dense AdamW
    keeps such a row's moments at zero while idle and only decays it, so the lazy decay
    (1 - lr*wd)^k at the first touch must reproduce dense AdamW exactly."""
    n_steps, lr, wd = 8, 0.05, 0.3
    first = RNG.integers(1, n_steps + 1, size=V)
    steps: ref.Steps = []
    for t in range(1, n_steps + 1):
        ids = np.flatnonzero(first <= t)
        steps.append((ids, RNG.standard_normal((ids.size, D))))
    w0, got, sd = run(lambda e: optim.AdamW(e, lr, weight_decay=wd), steps, dtype)
    want, _ = ref.adamw_dense(w0, [dense(s) for s in steps], lr, weight_decay=wd)
    check(got, want, dtype)
    np.testing.assert_array_equal(sd["state"][0]["last_step"], np.full(V, n_steps))


@pytest.mark.parametrize("skip", [1, 2, 7, 50])
def test_adamw_skipped_steps_follow_closed_form(skip: int) -> None:
    """Row 0 is touched at step 1 and again at step 2 + skip; rows 1.. every step. At its
    second touch row 0 must be decayed by (1 - lr*wd)^(skip + 1), then updated from its moments
    of step 1 (stale, SparseAdam's rule) and the global bias correction of step 2 + skip."""
    lr, wd, (b1, b2), eps = 0.01, 0.5, (0.9, 0.999), 1e-8
    emb = ce.Embedding(V, D, dtype="float64", seed=3)
    opt = optim.AdamW(emb, lr, weight_decay=wd)
    g1, g2 = RNG.standard_normal((1, D)), RNG.standard_normal((1, D))
    others = np.arange(1, V)

    def step(with_row0: np.ndarray | None) -> None:
        ids = others if with_row0 is None else np.concatenate([[0], others])
        rows = RNG.standard_normal((others.size, D))
        g = rows if with_row0 is None else np.concatenate([with_row0, rows])
        opt.step(emb.backward(ids, g))

    step(g1)
    after1 = emb.weight[0]
    m1 = (1 - b1) * g1[0]
    v1 = (1 - b2) * g1[0] ** 2
    for _ in range(skip):
        step(None)
    assert emb.weight[0].tobytes() == after1.tobytes()  # untouched: no change until touched
    step(g2)
    t = skip + 2
    m = b1 * m1 + (1 - b1) * g2[0]
    v = b2 * v1 + (1 - b2) * g2[0] ** 2
    decayed = after1 * (1 - lr * wd) ** (skip + 1)
    want = decayed - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
    np.testing.assert_allclose(emb.weight[0], want, rtol=1e-12, atol=1e-14)
    sd = opt.state_dict()
    assert sd["state"][0]["last_step"][0] == t and sd["step"] == [t]
    np.testing.assert_allclose(sd["state"][0]["exp_avg"][0], m, rtol=1e-12, atol=1e-15)


def test_adamw_defaults_and_argument_checks() -> None:
    emb = ce.Embedding(V, D, seed=1)
    opt = optim.AdamW(emb)
    assert opt.defaults["lr"] == 1e-3 and opt.defaults["weight_decay"] == 1e-2
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["eps"] == 1e-8
    for bad in (
        {"lr": -1.0},
        {"weight_decay": -0.1},
        {"betas": (1.0, 0.9)},
        {"betas": (0.9, -0.1)},
        {"eps": float("nan")},
        {"betas": (0.9, 0.99, 0.5)},
    ):
        with pytest.raises(ce.CandleEmbedValueError):
            optim.AdamW(emb, **bad)
    with pytest.raises(ce.CandleEmbedTypeError):
        optim.AdamW(emb, betas=0.9)  # type: ignore[arg-type]

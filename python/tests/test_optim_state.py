"""Optimizer state that would produce NaN or wrap around is refused (issue 19 class 5), with a
typed error (class 6), and a refused load leaves the optimizer exactly as it was. Hypothesis
draws corrupted state dicts of every kind for every optimizer; after each refusal the
optimizer must still step exactly like a twin that never saw the bad state."""

from __future__ import annotations

from typing import Any, Callable

import candle_embed as ce
import numpy as np
import pytest
from candle_embed import optim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
D = 4
OPTS: dict[str, Callable[[Any], optim.SparseOptimizer]] = {
    "SGD": lambda p: optim.SGD(p, 0.1, momentum=0.9),
    "Adagrad": lambda p: optim.Adagrad(p, 0.1, initial_accumulator_value=0.1),
    "RowWiseAdagrad": lambda p: optim.RowWiseAdagrad(p, 0.1),
    "SparseAdam": lambda p: optim.SparseAdam(p, 0.01),
    "AdamW": lambda p: optim.AdamW(p, 0.01, weight_decay=0.1),
}
# buffers whose values are sums of squares: negative values are refused
SQUARES = {"sum", "exp_avg_sq"}


def ones(n: int) -> np.ndarray:
    return np.ones((n, D), np.float32)


def trained(name: str) -> tuple[list[ce.Embedding], optim.SparseOptimizer]:
    """Two tables after two steps (the second skips table 1): a deterministic history."""
    e1, e2 = ce.Embedding(10, D, seed=1), ce.Embedding(6, D, seed=2)
    opt = OPTS[name]([e1, e2])
    opt.step([e1.backward([1, 2], ones(2)), e2.backward([3], ones(1))])
    opt.step([e1.backward([2, 5], ones(2)), None])
    return [e1, e2], opt


def snapshot(tables: list[ce.Embedding], opt: optim.SparseOptimizer) -> tuple[Any, ...]:
    sd = opt.state_dict()
    bufs = tuple(
        tuple((k, v.dtype.str, v.shape, v.tobytes()) for k, v in sorted(s.items()))
        for s in sd["state"]
    )
    return tuple(t.weight.tobytes() for t in tables), sd["kind"], tuple(sd["step"]), bufs


def step_both(pair: list[tuple[list[ce.Embedding], optim.SparseOptimizer]]) -> None:
    for tables, opt in pair:
        e1, e2 = tables
        opt.step([e1.backward([0, 2, 9], ones(3)), e2.backward([1, 3], ones(2))])


# A corruption: (name, function(state_dict, rng) -> corrupted copy).
def _table_and_buffer(sd: dict[str, Any], data: Any) -> tuple[int, str]:
    i = data.draw(st.integers(0, len(sd["state"]) - 1))
    keys = sorted(sd["state"][i])
    return i, data.draw(st.sampled_from(keys)) if keys else ""


def _set_buffer(sd: dict[str, Any], i: int, k: str, value: Any) -> dict[str, Any]:
    state = [dict(s) for s in sd["state"]]
    state[i][k] = value
    return {**sd, "state": state}


def corrupt(sd: dict[str, Any], data: Any) -> dict[str, Any] | None:
    """Draw one invalid variation of ``sd`` (None when the drawn kind does not apply)."""
    kind = data.draw(
        st.sampled_from(
            [
                "step_value",
                "step_container",
                "step_count",
                "kind",
                "missing_key",
                "non_finite",
                "negative_square",
                "last_step",
                "shape",
                "dtype",
                "buffer_names",
                "tables",
            ]
        )
    )
    if kind == "step_value":
        bad = data.draw(
            st.one_of(
                st.integers(max_value=-1),
                st.integers(min_value=2**53 + 1, max_value=2**70),
                st.just(2**64 - 1),
                st.floats(),
                st.text(max_size=3),
                st.none(),
            )
        )
        steps = list(sd["step"])
        steps[data.draw(st.integers(0, len(steps) - 1))] = bad
        return {**sd, "step": steps}
    if kind == "step_container":
        return {**sd, "step": data.draw(st.sampled_from(["1", 3, None, {"a": 1}, 2.5]))}
    if kind == "step_count":
        return {**sd, "step": list(sd["step"]) + [1]}
    if kind == "kind":
        return {**sd, "kind": data.draw(st.sampled_from(["Nope", 3, None, b"SGD", ""]))}
    if kind == "missing_key":
        drop = data.draw(st.sampled_from(["kind", "step", "state"]))
        return {k: v for k, v in sd.items() if k != drop}
    if kind == "tables":
        state = data.draw(st.sampled_from([sd["state"][:1], sd["state"] + [{}], None, [3, 4]]))
        return {**sd, "state": state}
    i, k = _table_and_buffer(sd, data)
    if not k:
        return None
    arr = sd["state"][i][k]
    if kind == "non_finite" and arr.dtype.kind == "f":
        bad = arr.copy()
        bad.reshape(-1)[data.draw(st.integers(0, bad.size - 1))] = data.draw(
            st.sampled_from([np.nan, np.inf, -np.inf])
        )
        return _set_buffer(sd, i, k, bad)
    if kind == "negative_square" and k in SQUARES:
        bad = arr.copy()
        bad.reshape(-1)[data.draw(st.integers(0, bad.size - 1))] = -data.draw(
            st.floats(1e-30, 1e30)
        )
        return _set_buffer(sd, i, k, bad)
    if kind == "last_step" and k == "last_step":
        bad = arr.copy()
        j = data.draw(st.integers(0, bad.size - 1))
        bad[j] = data.draw(st.sampled_from([-1, -(2**62), sd["step"][i] + 1, 2**62]))
        return _set_buffer(sd, i, k, bad)
    if kind == "shape":
        shape = data.draw(st.lists(st.integers(0, 11), min_size=0, max_size=3).map(tuple))
        if shape == arr.shape:
            return None
        return _set_buffer(sd, i, k, np.zeros(shape, arr.dtype))
    if kind == "dtype":
        wrong = "float32" if arr.dtype.kind == "i" else "int32"
        bad = data.draw(
            st.sampled_from(
                [
                    arr.astype(wrong),
                    arr.astype(np.complex64),
                    arr.astype(bool),
                    arr.astype(object),
                    arr.astype(str),
                    "x",
                    None,
                ]
            )
        )
        return _set_buffer(sd, i, k, bad)
    if kind == "buffer_names":
        state = [dict(s) for s in sd["state"]]
        how = data.draw(st.sampled_from(["drop", "extra", "rename"]))
        if how == "drop":
            del state[i][k]
        elif how == "extra":
            state[i]["extra"] = arr.copy()
        else:
            state[i]["renamed"] = state[i].pop(k)
        return {**sd, "state": state}
    return None


@pytest.mark.parametrize("name", list(OPTS))
@SETTINGS
@given(data=st.data())
def test_corrupted_state_is_refused_and_changes_nothing(name: str, data: Any) -> None:
    tables, opt = trained(name)
    twin = trained(name)
    bad = corrupt(opt.state_dict(), data)
    if bad is None:
        return
    before = snapshot(tables, opt)
    with pytest.raises(ce.CandleEmbedError) as info:
        opt.load_state_dict(bad)
    assert isinstance(info.value, (TypeError, ValueError)), repr(info.value)
    assert snapshot(tables, opt) == before
    # still usable, and stepping exactly as if the bad load never happened
    step_both([(tables, opt), twin])
    assert snapshot(tables, opt) == snapshot(*twin)


@pytest.mark.parametrize("name", list(OPTS))
def test_step_count_limit(name: str) -> None:
    """2**64 - 1 (which would wrap to 0 and divide by zero in the bias correction) and anything
    past 2**53 is refused on load; at 2**53 a table takes no further step."""
    tables, opt = trained(name)
    sd = opt.state_dict()
    with pytest.raises(ce.CandleEmbedValueError, match="out of range"):
        opt.load_state_dict({**sd, "step": [2**64 - 1, 1]})
    with pytest.raises(ce.CandleEmbedValueError):
        opt.load_state_dict({**sd, "step": [2**53 + 1, 1]})
    opt.load_state_dict({**sd, "step": [2**53, 1]})
    before = snapshot(tables, opt)
    e1, e2 = tables
    with pytest.raises(ce.CandleEmbedValueError, match="most steps"):
        opt.step([e1.backward([1], ones(1)), e2.backward([1], ones(1))])
    assert snapshot(tables, opt) == before
    opt.step([None, e2.backward([1], ones(1))])  # the other table still steps


@pytest.mark.parametrize("name", list(OPTS))
def test_state_in_other_dtypes_is_converted(name: str) -> None:
    """Float buffers may come as float16/float64 (converted to the state dtype, as PyTorch
    converts state to the parameter's dtype) and step counts as any integer dtype; values that
    do not fit the state dtype are refused."""
    tables, opt = trained(name)
    sd = opt.state_dict()
    for cast in (np.float64, np.float16):
        state = [
            {k: (v if v.dtype.kind == "i" else v.astype(cast)) for k, v in s.items()}
            for s in sd["state"]
        ]
        opt.load_state_dict({**sd, "state": state})
    state = [
        {k: (v.astype(np.uint8) if v.dtype.kind == "i" else v) for k, v in s.items()}
        for s in sd["state"]
    ]
    opt.load_state_dict({**sd, "state": state})
    want = snapshot(tables, opt)
    float_keys = [k for k, v in sd["state"][0].items() if v.dtype.kind == "f"]
    if float_keys:
        big = [dict(s) for s in sd["state"]]
        big[0][float_keys[0]] = np.full_like(sd["state"][0][float_keys[0]], 1e39, np.float64)
        with pytest.raises(ce.CandleEmbedValueError, match="finite"):
            opt.load_state_dict({**sd, "state": big})
    assert snapshot(tables, opt) == want


def test_python_layer_errors_are_typed() -> None:
    emb = ce.Embedding(5, D, seed=0)
    nested: list[Any] = []
    nested.append(nested)

    class Loop:
        def sparse_parameters(self) -> list[Any]:
            return [self]

    class NotAList:
        def sparse_parameters(self) -> Any:
            return 3

    for bad, cls in [
        (lambda: optim.SGD(nested, 0.1), ce.CandleEmbedValueError),
        (lambda: optim.SGD(Loop(), 0.1), ce.CandleEmbedValueError),
        (lambda: optim.SGD(NotAList(), 0.1), ce.CandleEmbedTypeError),
        (lambda: optim.SGD("emb", 0.1), ce.CandleEmbedTypeError),
        (lambda: optim.SGD(emb, 0.1).step(nested), ce.CandleEmbedValueError),
        (lambda: optim.SGD(emb, 0.1).step(None), ce.CandleEmbedTypeError),
        (lambda: optim.SGD(emb, 0.1).step([3]), ce.CandleEmbedTypeError),
        (lambda: optim.SGD(emb, 0.1).step([None, None]), ce.CandleEmbedValueError),
        (lambda: optim.SGD(emb, 0.1).load_state_dict("state"), ce.CandleEmbedTypeError),
        (lambda: optim.SGD(emb, 10**400), ce.CandleEmbedValueError),
        (lambda: optim.SGD(emb, 0.1, seed=-1), ce.CandleEmbedValueError),
        (lambda: optim.SGD(emb, 0.1, seed=2**64), ce.CandleEmbedValueError),
        (lambda: optim.SGD(emb, 0.1, seed=1.5), ce.CandleEmbedTypeError),
        (lambda: optim.SGD(emb, 0.1, maximize="yes"), ce.CandleEmbedTypeError),
        (lambda: optim.SparseAdam(emb, betas=(0.9,)), ce.CandleEmbedValueError),
        (lambda: optim.SparseAdam(emb, betas=("a", "b")), ce.CandleEmbedTypeError),
    ]:
        with pytest.raises(cls):
            bad()

"""The bad-input matrix: every public callable fed wrong dtypes, ranks, shapes, out-of-range ids,
odd layouts, empty arrays, NaN/Inf, overflowing sizes, bad ``out=`` and wrong-typed scalars.

Only IndexError / TypeError / ValueError / KeyError / MemoryError may come out (OSError for file
paths): ``pytest.raises(cls)`` lets anything else (a caught panic is ``CandleEmbedRuntimeError``,
an uncaught one ``PanicException``, a ``SystemError``) fail the test. Odd layouts must *work* and
give the reference result. References are NumPy float64, written here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed import optim
from candle_embed._native import _testing

V, D = 20, 5
ALLOWED = (IndexError, TypeError, ValueError, KeyError, MemoryError)


def table(**kw: Any) -> ce.Embedding:
    return ce.Embedding(V, D, seed=3, **kw)


def raises(
    cls: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[[], Any]
) -> BaseException:
    """``fn()`` raises ``cls``; it is one of the allowed classes and never a Runtime/SystemError."""
    try:
        fn()
    except cls as e:
        assert isinstance(e, ALLOWED + (OSError,)), repr(e)
        assert not isinstance(e, (RuntimeError, SystemError)), repr(e)
        return e
    raise AssertionError(f"did not raise {cls}")


def check_all(cls: Any, cases: list[Callable[[], Any]], what: str = "case") -> None:
    """Every case raises ``cls``; the failures are reported together, by row number."""
    failures = []
    for i, case in enumerate(cases):
        try:
            raises(cls, case)
        except AssertionError as e:
            failures.append(f"{what} {i}: {e}")
    assert not failures, "\n".join(failures)


def grad_for(ids: Any) -> np.ndarray:
    try:
        shape = np.shape(ids)
    except Exception:
        shape = (1,)
    return np.ones(tuple(shape) + (D,), np.float32)


# Every callable that takes ids: f(ids) with everything else valid.
def _lookup(ids: Any) -> Any:
    return table()(ids)


def _portable(ids: Any) -> Any:
    return _testing.lookup_portable(table(), ids)


def _lookup_max_norm(ids: Any) -> Any:
    return table(max_norm=0.5)(ids)


def _backward(ids: Any) -> Any:
    return table().backward(ids, grad_for(ids))


def _index_add(ids: Any) -> Any:
    return ce.index_add(np.zeros((V, D), np.float32), ids, grad_for(ids))


def _from_rows(ids: Any) -> Any:
    return ce.SparseGrad.from_rows(ids, grad_for(ids), V)


def _coalesce(ids: Any) -> Any:
    return ce.coalesce(ids, grad_for(ids))


ID_CALLS: dict[str, Callable[[Any], Any]] = {
    "lookup": _lookup,
    "portable": _portable,
    "lookup_max_norm": _lookup_max_norm,
    "backward": _backward,
    "index_add": _index_add,
    "from_rows": _from_rows,
    "coalesce": _coalesce,
}
# coalesce has no table size: only "not an id" is an error there
BOUNDED = [k for k in ID_CALLS if k != "coalesce"]

BAD_ID_DTYPES: dict[str, Any] = {
    "float": np.array([1.0, 2.0]),
    "float32_scalar": np.float32(1.0),
    "bool": np.array([True, False]),
    "object": np.array([1, 2], dtype=object),
    "complex": np.array([1 + 0j]),
    "str": np.array(["1"]),
    "bytes": np.array([b"1"]),
    "py_float": 1.5,
    "py_bool": True,
    "py_str": "3",
    "list_of_str": ["x", "y"],
    "none": None,
    "datetime": np.array(["2020-01-01"], dtype="datetime64[D]"),
}

OUT_OF_RANGE: dict[str, Any] = {
    "negative": np.array([-1]),
    "int8_min": np.array([0, -128], dtype=np.int8),
    "equal_V": [0, V],
    "int64_max": np.array([2**63 - 1], dtype=np.int64),
    "int64_min": np.array([-(2**63)], dtype=np.int64),
    "uint64_beyond_int64": np.array([2**63 + 5], dtype=np.uint64),
    "uint64_max": np.array([2**64 - 1], dtype=np.uint64),
    "nested_last": np.array([[1, 2], [3, 10**6]], dtype=np.int32),
}


@pytest.mark.parametrize("bad", list(BAD_ID_DTYPES), ids=list(BAD_ID_DTYPES))
@pytest.mark.parametrize("call", list(ID_CALLS), ids=list(ID_CALLS))
def test_non_integer_ids_type_error(call: str, bad: str) -> None:
    raises(TypeError, lambda: ID_CALLS[call](BAD_ID_DTYPES[bad]))


@pytest.mark.parametrize("bad", list(OUT_OF_RANGE), ids=list(OUT_OF_RANGE))
@pytest.mark.parametrize("call", BOUNDED, ids=BOUNDED)
def test_out_of_range_ids_index_error(call: str, bad: str) -> None:
    raises(IndexError, lambda: ID_CALLS[call](OUT_OF_RANGE[bad]))


@pytest.mark.parametrize("bad", ["negative", "int8_min", "int64_min", "uint64_beyond_int64"])
def test_coalesce_ids_not_representable_as_row(bad: str) -> None:
    # negative or beyond int64: no valid row id; an IndexError, not a wrap-around
    raises(IndexError, lambda: _coalesce(OUT_OF_RANGE[bad]))


# ----------------------------------------------------------------------------- layouts must work

BASE = np.arange(24, dtype=np.int64).reshape(4, 6) % V


def _ro(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.setflags(write=False)
    return a


LAYOUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "c": lambda a: a,
    "fortran": np.asfortranarray,
    "transposed": lambda a: a.T,
    "reversed": lambda a: a[::-1, ::-1],
    "strided": lambda a: a[:, ::2],
    "read_only": _ro,
    "broadcast": lambda a: np.broadcast_to(a[:1], a.shape),
    "big_endian": lambda a: a.astype(">i4"),
    "empty": lambda a: a[:0],
    "empty_inner": lambda a: a[:, :0],
}


def ref_add_at(ids: np.ndarray, g: np.ndarray, v: int) -> np.ndarray:
    dense = np.zeros((v, g.shape[-1]))
    np.add.at(
        dense, ids.reshape(-1).astype(np.int64), g.reshape(-1, g.shape[-1]).astype(np.float64)
    )
    return dense


@pytest.mark.parametrize("glayout", ["c", "fortran", "reversed", "read_only"])
@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_any_layout_works_and_is_correct(layout: str, glayout: str) -> None:
    emb = table()
    w = emb.weight
    ids = LAYOUTS[layout](BASE)
    rng = np.random.default_rng(0)
    g = rng.standard_normal(ids.shape + (D,)).astype(np.float32)
    g = {
        "c": g,
        "fortran": np.asfortranarray(g),
        "reversed": g[::-1].copy()[::-1],
        "read_only": _ro(g),
    }[glayout]
    want = w[np.asarray(ids, dtype=np.int64)]
    np.testing.assert_array_equal(emb(ids), want)
    np.testing.assert_array_equal(_testing.lookup_portable(emb, ids), want)
    dense = ref_add_at(np.asarray(ids), g, V)
    np.testing.assert_allclose(emb.backward(ids, g).to_dense(), dense, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        ce.SparseGrad.from_rows(ids, g, V).to_dense(), dense, rtol=1e-5, atol=1e-6
    )
    dst = LAYOUTS["reversed" if layout == "reversed" else "c"](np.ones((V, D), np.float32))
    np.testing.assert_allclose(ce.index_add(dst, ids, g), dst + dense, rtol=1e-5, atol=1e-6)
    u, s = ce.coalesce(ids, g)
    keys = np.unique(np.asarray(ids, dtype=np.int64))
    np.testing.assert_array_equal(u, keys)
    np.testing.assert_allclose(s, dense[keys], rtol=1e-5, atol=1e-6)
    # from_pretrained / weight setter accept odd layouts of the table too
    for wl in (np.asfortranarray(w), w[::-1][::-1], _ro(w), w.T.copy().T):
        np.testing.assert_array_equal(ce.Embedding.from_pretrained(wl).weight, w)
        e2 = table()
        e2.weight = wl
        np.testing.assert_array_equal(e2.weight, w)


# ----------------------------------------------------------------------------- shapes and ranks


def test_wrong_shapes_and_ranks_value_error() -> None:
    emb = table()
    ids = np.array([[1, 2, 3]])
    cases: list[Callable[[], Any]] = [
        lambda: emb.backward(ids, np.ones((1, 3, D + 1), np.float32)),  # wrong D
        lambda: emb.backward(ids, np.ones((3, D), np.float32)),  # wrong leading shape
        lambda: emb.backward(ids, np.ones((1, 3), np.float32)),  # rank too low
        lambda: emb.backward(ids, np.float32(1.0)),  # scalar grad
        lambda: ce.index_add(np.ones(V, np.float32), [1], np.ones(1, np.float32)),  # 1-D dst ok?
        lambda: ce.index_add(np.ones((V, D), np.float32), ids, np.ones((3, D), np.float32)),
        lambda: ce.index_add(np.ones((V, D), np.float32), ids, np.ones((1, 3, D + 1), np.float32)),
        lambda: ce.coalesce(ids, np.ones((1, 4, D), np.float32)),
        lambda: ce.SparseGrad.from_rows(ids, np.ones((1, 2, D), np.float32), V),
        lambda: ce.Embedding.from_pretrained(np.ones(5, np.float32)),  # 1-D table
        lambda: ce.Embedding.from_pretrained(np.ones((2, 3, 4), np.float32)),  # 3-D table
        lambda: ce.Embedding.from_pretrained(np.float32(1.0)),
        lambda: setattr(emb, "weight", np.ones((V, D + 1), np.float32)),
        lambda: setattr(emb, "weight", np.ones((V + 1, D), np.float32)),
        lambda: setattr(emb, "weight", np.ones(V * D, np.float32)),
    ]
    for i, case in enumerate(cases):
        if i == 4:
            # a 1-D dst is a vector of scalars: src has the ids' shape; must work
            np.testing.assert_array_equal(case(), np.ones(V, np.float32) + (np.arange(V) == 1))
            continue
        raises(ValueError, case)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([["a"]]),
        np.ones((V, D), complex),
        np.ones((V, D), object),
        np.ones((V, D), bool),
        "table",
        None,
    ],
    ids=["str", "complex", "object", "bool", "py_str", "none"],
)
def test_non_real_float_arrays_type_error(bad: Any) -> None:
    emb = table()
    w = emb.weight.tobytes()
    ids = np.array([1, 2])
    g = bad if np.ndim(bad) == 0 else np.asarray(bad)[:2]
    raises(TypeError, lambda: ce.Embedding.from_pretrained(bad))
    raises(TypeError, lambda: setattr(emb, "weight", bad))
    raises(TypeError, lambda: emb.backward(ids, g))
    raises(TypeError, lambda: ce.index_add(bad, ids, np.ones((2, D), np.float32)))
    raises(TypeError, lambda: ce.index_add(np.ones((V, D), np.float32), ids, g))
    raises(TypeError, lambda: ce.coalesce(ids, g))
    raises(TypeError, lambda: ce.SparseGrad.from_rows(ids, g, V))
    assert emb.weight.tobytes() == w


# ----------------------------------------------------------------------------- NaN / Inf


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_propagate_without_crash(bad: float) -> None:
    w = np.arange(V * D, dtype=np.float32).reshape(V, D)
    w[3, 1] = bad
    emb = ce.Embedding.from_pretrained(w, freeze=False)
    y = emb([3, 4])
    np.testing.assert_array_equal(y, w[[3, 4]])  # NaN == NaN under assert_array_equal
    g = np.ones((2, D), np.float32)
    g[0, 2] = bad
    sg = emb.backward([5, 5], g)
    assert np.isnan(sg.values[0, 2]) if np.isnan(bad) else np.isinf(sg.values[0, 2])
    for make in (
        lambda p: optim.SGD(p, 0.1),
        lambda p: optim.Adagrad(p, 0.1),
        lambda p: optim.RowWiseAdagrad(p, 0.1),
        lambda p: optim.SparseAdam(p, 0.1),
    ):
        e = ce.Embedding.from_pretrained(w, freeze=False)
        make(e).step(e.backward([5, 5], g))
        after = e.weight
        np.testing.assert_array_equal(after[np.arange(V) != 5], w[np.arange(V) != 5])
        assert not np.all(np.isfinite(after[5]))
    # max_norm on a row with NaN/Inf: no crash, other rows renormalised as usual
    e = ce.Embedding.from_pretrained(w, max_norm=1.0)
    e([3, 7])
    assert np.linalg.norm(e.weight[7]) <= 1.0 + 1e-5


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    "n,d",
    [(2**62, 2**10), (2**40, 2**40), (2**63, 2), (10**12, 10**4), (2**64 - 1, 2**64 - 1)],
)
def test_overflowing_sizes(n: int, d: int) -> None:
    raises((MemoryError, ValueError), lambda: ce.Embedding(n, d))


_X = np.ones((2, 3, 8), np.float32)
_SG_VALUES = np.ones((1, 2), np.float32)
_rpb = ce.RelativePositionBias(2, seed=0)
_rope = ce.RotaryEmbedding(8)
_learned = ce.LearnedPositionalEmbedding(8, 8, seed=0)
_sin = ce.SinusoidalPositionalEncoding(8, max_len=8)
_table = ce.Embedding(V, D, seed=1)

# Every int argument of the public API, as `fn(value)`. Sizes and counts must be >= 0;
# seeds are unsigned 64-bit; offsets and padding_idx are signed 64-bit.
SIZE_ARGS: dict[str, Callable[[Any], Any]] = {
    "Embedding.num_embeddings": lambda v: ce.Embedding(v, 4),
    "Embedding.embedding_dim": lambda v: ce.Embedding(4, v),
    "EmbeddingBag.num_embeddings": lambda v: ce.EmbeddingBag(v, 4),
    "EmbeddingBag.embedding_dim": lambda v: ce.EmbeddingBag(4, v),
    "SparseGrad.from_rows.num_rows": lambda v: ce.SparseGrad.from_rows([0], _SG_VALUES, v),
    "set_num_threads": lambda v: ce.set_num_threads(v),
    "Sinusoidal.dim": lambda v: ce.SinusoidalPositionalEncoding(v),
    "Sinusoidal.max_len": lambda v: ce.SinusoidalPositionalEncoding(8, max_len=v),
    "Learned.max_len": lambda v: ce.LearnedPositionalEmbedding(v, 8),
    "Learned.dim": lambda v: ce.LearnedPositionalEmbedding(8, v),
    "TransformerEmbeddings.vocab_size": lambda v: ce.TransformerEmbeddings(v, 8),
    "TransformerEmbeddings.dim": lambda v: ce.TransformerEmbeddings(8, v),
    "TransformerEmbeddings.max_positions": lambda v: ce.TransformerEmbeddings(
        8, 8, max_positions=v
    ),
    "TransformerEmbeddings.type_vocab_size": lambda v: ce.TransformerEmbeddings(
        8, 8, type_vocab_size=v
    ),
    "alibi_slopes.num_heads": lambda v: ce.alibi_slopes(v),
    "alibi_bias.num_heads": lambda v: ce.alibi_bias(v, 2, 2),
    "alibi_bias.q_len": lambda v: ce.alibi_bias(2, v, 2),
    "alibi_bias.k_len": lambda v: ce.alibi_bias(2, 2, v),
    "relative_position_bucket.num_buckets": lambda v: ce.relative_position_bucket(
        [1], num_buckets=v
    ),
    "relative_position_bucket.max_distance": lambda v: ce.relative_position_bucket(
        [1], max_distance=v
    ),
    "RelativePositionBias.num_heads": lambda v: ce.RelativePositionBias(v),
    "RelativePositionBias.num_buckets": lambda v: ce.RelativePositionBias(2, num_buckets=v),
    "RelativePositionBias.max_distance": lambda v: ce.RelativePositionBias(2, max_distance=v),
    "RelativePositionBias.q_len": lambda v: _rpb(v, 2),
    "RelativePositionBias.k_len": lambda v: _rpb(2, v),
    "RotaryEmbedding.head_dim": lambda v: ce.RotaryEmbedding(v),
    "RotaryEmbedding.max_position_embeddings": lambda v: ce.RotaryEmbedding(
        8, max_position_embeddings=v
    ),
    "RotaryEmbedding.frequencies.seq_len": lambda v: _rope.frequencies(v),
    "position_ids_from_padding.past_length": lambda v: ce.position_ids_from_padding(
        [[1, 2]], 0, past_length=v
    ),
    "Word2Vec.vector_size": lambda v: ce.Word2Vec([["a", "b"]], vector_size=v, min_count=1),
    "Word2Vec.window": lambda v: ce.Word2Vec([["a", "b"]], window=v, min_count=1),
    "Word2Vec.negative": lambda v: ce.Word2Vec([["a", "b"]], negative=v, min_count=1),
    "Word2Vec.epochs": lambda v: ce.Word2Vec([["a", "b"]], epochs=v, min_count=1),
    "Word2Vec.min_count": lambda v: ce.Word2Vec([["a", "b"]], min_count=v),
    "Word2Vec.workers": lambda v: ce.Word2Vec([["a", "b"]], workers=v, min_count=1),
}
SEED_ARGS: dict[str, Callable[[Any], Any]] = {
    "Embedding.seed": lambda v: ce.Embedding(4, 4, seed=v),
    "EmbeddingBag.seed": lambda v: ce.EmbeddingBag(4, 4, seed=v),
    "Embedding.__call__.seed": lambda v: _table([1], dropout=0.5, seed=v),
    "Embedding.backward.seed": lambda v: _table.backward(
        [1], np.ones((1, D), np.float32), dropout=0.5, seed=v
    ),
    "Learned.seed": lambda v: ce.LearnedPositionalEmbedding(8, 8, seed=v),
    "RelativePositionBias.seed": lambda v: ce.RelativePositionBias(2, seed=v),
    "TransformerEmbeddings.seed": lambda v: ce.TransformerEmbeddings(8, 8, seed=v),
    "Word2Vec.seed": lambda v: ce.Word2Vec([["a", "b"]], seed=v, min_count=1),
}
OFFSET_ARGS: dict[str, Callable[[Any], Any]] = {
    "Embedding.padding_idx": lambda v: ce.Embedding(4, 4, padding_idx=v),
    "EmbeddingBag.padding_idx": lambda v: ce.EmbeddingBag(4, 4, padding_idx=v),
    "from_pretrained.padding_idx": lambda v: ce.Embedding.from_pretrained(
        np.ones((4, 4), np.float32), padding_idx=v
    ),
    "Sinusoidal.offset": lambda v: _sin(_X, offset=v),
    "Learned.offset": lambda v: _learned(_X, offset=v),
    "Learned.backward.offset": lambda v: _learned.backward(_X, offset=v),
    "RotaryEmbedding.apply.offset": lambda v: _rope.apply(_X, offset=v),
    "RotaryEmbedding.apply_backward.offset": lambda v: _rope.apply_backward(_X, offset=v),
    "alibi_bias.offset": lambda v: ce.alibi_bias(2, 2, 2, offset=v),
    "RelativePositionBias.offset": lambda v: _rpb(2, 2, offset=v),
    "position_ids_from_padding.padding_idx": lambda v: ce.position_ids_from_padding([[1]], v),
}
ALL_INT_ARGS = {**SIZE_ARGS, **SEED_ARGS, **OFFSET_ARGS}


def raises_ours(cls: type[BaseException] | tuple[type[BaseException], ...], fn: Any) -> None:
    """`fn()` raises `cls`, and the exception is one of ours (a `CandleEmbedError`)."""
    with pytest.raises(cls) as info:
        fn()
    assert isinstance(info.value, ce.CandleEmbedError), repr(info.value)


@pytest.mark.parametrize("what", list(SIZE_ARGS))
def test_negative_sizes_are_value_errors(what: str) -> None:
    raises_ours(ValueError, lambda: SIZE_ARGS[what](-1))
    raises_ours(ValueError, lambda: SIZE_ARGS[what](-(2**70)))


@pytest.mark.parametrize("what", list(SEED_ARGS))
def test_seeds_outside_u64_are_value_errors(what: str) -> None:
    for v in (-1, 2**64, -(2**70), 2**200):
        raises_ours(ValueError, lambda: SEED_ARGS[what](v))  # noqa: B023


@pytest.mark.parametrize("what", list(ALL_INT_ARGS))
def test_int_arguments_beyond_64_bits(what: str) -> None:
    """Never OverflowError: a size or offset beyond 64 bits is a ValueError (or MemoryError /
    IndexError where the callee judges it: e.g. a size nothing could allocate)."""
    for v in (2**64, 2**70, 10**400):
        raises_ours((ValueError, MemoryError, IndexError), lambda: ALL_INT_ARGS[what](v))  # noqa: B023
    if what in OFFSET_ARGS:
        raises_ours((ValueError, IndexError), lambda: OFFSET_ARGS[what](-(2**63) - 1))


@pytest.mark.parametrize("what", list(ALL_INT_ARGS))
def test_int_arguments_of_the_wrong_type(what: str) -> None:
    for v in (1.5, "3", [3], np.float64(3.0), object()):
        raises_ours(TypeError, lambda: ALL_INT_ARGS[what](v))  # noqa: B023


@pytest.mark.parametrize("what", list(ALL_INT_ARGS))
def test_int_arguments_accept_numpy_integers(what: str) -> None:
    """Any object with `__index__` is an int: np.int64(1) and True work like 1."""
    for v in (np.int64(1), np.uint8(1), True):
        try:
            ALL_INT_ARGS[what](v)
        except ALLOWED as e:  # a valid int can still be a bad value here (e.g. dim 1 for RoPE)
            with pytest.raises(type(e)):
                ALL_INT_ARGS[what](1)


def test_set_num_threads_left_alone_by_bad_values() -> None:
    before = ce.get_num_threads()
    for v in (-1, 2**64, 1.5):
        with pytest.raises((ValueError, TypeError)):
            ce.set_num_threads(v)
    assert ce.get_num_threads() == before


def test_zero_sizes() -> None:
    for n, d in [(0, 4), (4, 0), (0, 0)]:
        emb = ce.Embedding(n, d, seed=1)
        assert emb.weight.shape == (n, d)
        y = emb(np.zeros((2, 0), np.int64))
        assert y.shape == (2, 0, d)
        if n == 0:
            raises(IndexError, lambda: emb([0]))  # noqa: B023
        else:
            assert emb([0, 1]).shape == (2, d)
            assert emb.backward([1], np.ones((1, d), np.float32)).nnz == 1
    sg = ce.SparseGrad.from_rows(np.zeros(0, np.int64), np.zeros((0, 3), np.float32), 5)
    assert sg.nnz == 0 and sg.to_dense().shape == (5, 3) and not sg.to_dense().any()
    u, s = ce.coalesce(np.zeros(0, np.int64), np.zeros((0, 3), np.float64))
    assert u.shape == (0,) and s.shape == (0, 3)
    emb = table()
    w = emb.weight.tobytes()
    optim.SGD(emb, 0.1).step(
        sg if False else ce.SparseGrad.from_rows([], np.zeros((0, D), np.float32), V)
    )
    assert emb.weight.tobytes() == w


# ----------------------------------------------------------------------------- out=


def test_bad_out_value_error() -> None:
    emb = table()
    ids = np.arange(6)
    backing = np.zeros(64, np.float32)
    overlapping_ids = backing[:6].view(np.int32)  # ids living in out's memory
    overlapping_ids[:] = np.arange(6, dtype=np.int32)
    ro = np.zeros((6, D), np.float32)
    ro.setflags(write=False)
    bad: list[tuple[Any, Any]] = [
        (ids, np.zeros((6, D), np.float64)),
        (ids, np.zeros((6, D), np.float16)),
        (ids, np.zeros((6, D), np.int32)),
        (ids, np.zeros((6, D + 1), np.float32)),
        (ids, np.zeros((1, 6, D), np.float32)),
        (ids, np.zeros(6 * D, np.float32)),
        (ids, np.zeros((D, 6), np.float32).T),
        (ids, np.zeros((6, 2 * D), np.float32)[:, ::2]),
        (ids, ro),
        (ids, [[0.0] * D] * 6),
        (ids, "out"),
        (overlapping_ids, backing[: 6 * D].reshape(6, D)),
    ]
    w = emb.weight.tobytes()
    for i, o in bad:
        raises(ValueError, lambda: emb(i, out=o))  # noqa: B023
    assert emb.weight.tobytes() == w
    np.testing.assert_array_equal(overlapping_ids, np.arange(6))  # the ids were not overwritten
    out = np.full((6, D), 7.0, np.float32)
    assert emb(ids, out=out) is out
    np.testing.assert_array_equal(out, emb.weight[ids])


# ----------------------------------------------------------------------------- scalars


def test_wrong_typed_scalars_type_error() -> None:
    emb = table()
    g = emb.backward([1], np.ones((1, D), np.float32))
    cases: list[Callable[[], Any]] = [
        lambda: ce.Embedding("10", 4),  # type: ignore[arg-type]
        lambda: ce.Embedding(10.0, 4),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, None),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, 4, seed="1"),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, 4, seed=1.5),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, 4, padding_idx=1.5),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, 4, padding_idx="1"),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, 4, max_norm="1"),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, 4, norm_type=[2.0]),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, 4, dtype=np.float32),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, 4, device=0),  # type: ignore[arg-type]
        lambda: ce.Embedding(10, 4, dtype="int32"),
        lambda: ce.set_num_threads("2"),  # type: ignore[arg-type]
        lambda: ce.set_num_threads(2.0),  # type: ignore[arg-type]
        lambda: ce.SparseGrad.from_rows([1], np.ones((1, D), np.float32), "20"),  # type: ignore[arg-type]
        lambda: optim.SGD(emb, "0.1"),  # type: ignore[arg-type]
        lambda: optim.SGD(emb, None),  # type: ignore[arg-type]
        lambda: optim.SGD(emb, 0.1, momentum="0.9"),  # type: ignore[arg-type]
        lambda: optim.Adagrad(emb, lr=[0.1]),  # type: ignore[arg-type]
        lambda: optim.SparseAdam(emb, betas=("a", "b")),  # type: ignore[arg-type]
        lambda: optim.SparseAdam(emb, betas=0.9),  # type: ignore[arg-type]
        lambda: optim.SGD(np.ones((3, 3)), 0.1),
        lambda: optim.SGD(emb, 0.1).step(emb.weight),  # type: ignore[arg-type]
        lambda: optim.SGD(emb, 0.1).step([g.values]),  # type: ignore[list-item]
        lambda: optim.SGD(emb, 0.1).load_state_dict("state"),  # type: ignore[arg-type]
        lambda: emb.save(3.5),  # type: ignore[arg-type]
        lambda: ce.Embedding.load(None),  # type: ignore[arg-type]
    ]
    w = emb.weight.tobytes()
    check_all(TypeError, cases)
    assert emb.weight.tobytes() == w


def test_bad_scalar_values_value_error() -> None:
    emb = table()
    cases: list[Callable[[], Any]] = [
        lambda: ce.Embedding(10, 4, padding_idx=10),
        lambda: ce.Embedding(10, 4, padding_idx=-11),
        lambda: ce.Embedding(10, 4, max_norm=-1.0),
        lambda: ce.Embedding(10, 4, max_norm=float("nan")),
        lambda: ce.Embedding(10, 4, norm_type=float("nan")),
        lambda: ce.Embedding(10, 4, device="gpu"),
        lambda: ce.set_num_threads(0),
        lambda: ce.set_num_threads(10**6),
        lambda: optim.SGD(emb, -0.1),
        lambda: optim.SGD(emb, float("nan")),
        lambda: optim.SGD(emb, 0.1, momentum=-1.0),
        lambda: optim.SparseAdam(emb, betas=(1.0, 0.999)),
        lambda: optim.SparseAdam(emb, betas=(0.9, 0.999, 0.5)),  # type: ignore[arg-type]
        lambda: optim.Adagrad(emb, eps=-1.0),
    ]
    check_all((ValueError, IndexError), cases)


def test_load_state_dict_garbage() -> None:
    emb = table()
    opt = optim.SparseAdam(emb, 0.1)
    opt.step(emb.backward([1, 2], np.ones((2, D), np.float32)))
    sd = opt.state_dict()
    w = emb.weight.tobytes()
    variants: list[tuple[Any, Any]] = [
        ({}, (KeyError, ValueError)),
        ({"kind": "SparseAdam"}, (KeyError, ValueError)),
        ({**sd, "step": "1"}, (TypeError, ValueError)),
        ({**sd, "step": [-1]}, (TypeError, ValueError)),
        ({**sd, "step": [2**70]}, (TypeError, ValueError)),
        ({**sd, "state": None}, (TypeError, ValueError)),
        ({**sd, "state": [{k: "x" for k in sd["state"][0]}]}, (TypeError, ValueError)),
        (
            {**sd, "state": [{k: v.astype(np.complex64) for k, v in sd["state"][0].items()}]},
            (TypeError, ValueError),
        ),
        ({**sd, "state": [{k: v[:, :1] for k, v in sd["state"][0].items()}]}, ValueError),
        ({**sd, "state": [{"nope": np.zeros((V, D), np.float32)}]}, (KeyError, ValueError)),
        ({**sd, "kind": 3}, (TypeError, ValueError)),
    ]
    for i, (bad, cls) in enumerate(variants):
        check_all(cls, [lambda: opt.load_state_dict(bad)], f"variant {i}")  # noqa: B023
    after = opt.state_dict()
    assert after["step"] == sd["step"] and emb.weight.tobytes() == w
    for k, v in sd["state"][0].items():
        assert after["state"][0][k].tobytes() == v.tobytes()


# ----------------------------------------------------------------------------- RoPE


def test_rope_bad_inputs() -> None:
    rope = ce.RotaryEmbedding(8, max_position_embeddings=64)
    x = np.ones((2, 5, 8), np.float32)
    out_ok = np.empty_like(x)
    for bad_pos in BAD_ID_DTYPES.values():
        if bad_pos is None:
            continue  # None means "use offset"
        raises(TypeError, lambda: rope.apply(x, bad_pos))  # noqa: B023
    check_all(
        TypeError,
        [
            lambda: rope.apply(x, offset="1"),  # type: ignore[arg-type]
            lambda: rope.apply(x, offset=1.5),  # type: ignore[arg-type]
            lambda: rope.apply(x.astype(complex)),
            lambda: rope.apply(np.array([["a"] * 8] * 5)),
            lambda: rope.apply(x.astype(object)),
            lambda: rope.apply_backward(x.astype(bool)),
            lambda: ce.RotaryEmbedding("8"),  # type: ignore[arg-type]
            lambda: ce.RotaryEmbedding(8, base="1e4"),  # type: ignore[arg-type]
            lambda: rope.cos_sin(np.array([1.5])),
        ],
    )
    check_all(
        (IndexError, ValueError),
        [
            lambda: rope.apply(x, np.array([0, 1, 2, 3, -1])),
            lambda: rope.apply(x, np.array([0, 1, 2, 3, 2**63 - 1])),
            lambda: rope.apply(x, np.array([0, 1, 2, 3, 2**64 - 1], np.uint64)),
            lambda: rope.apply(x, offset=-1),
            lambda: rope.cos_sin(np.array([-3])),
        ],
    )
    check_all(
        ValueError,
        [
            lambda: rope.apply(np.ones((2, 5, 7), np.float32)),  # wrong head_dim
            lambda: rope.apply(np.ones(8, np.float32)),  # no T axis
            lambda: rope.apply(x, np.arange(4)),  # T mismatch
            lambda: rope.apply(x, np.zeros((3, 5), np.int64)),  # batch mismatch
            lambda: rope.apply(x, out=np.empty((2, 5, 8), np.float64)),
            lambda: rope.apply(x, out=np.empty((2, 5, 9), np.float32)),
            lambda: rope.apply(x, out=np.empty((8, 5, 2), np.float32).T),
            lambda: rope.apply(x, out=x),  # out overlaps the input
            lambda: rope.apply_backward(x, out=x),
            lambda: ce.RotaryEmbedding(7),  # odd head_dim
            lambda: ce.RotaryEmbedding(8, base=-1.0),
            lambda: ce.RotaryEmbedding(8, partial_rotary_factor=1.5),
            lambda: ce.RotaryEmbedding(8, layout="diagonal"),
            lambda: ce.RotaryEmbedding(8, scaling={"rope_type": "nope"}),
        ],
    )
    # odd layouts work and match the C-order result
    want = rope.apply(x, np.arange(5))
    for xl in (
        np.asfortranarray(x),
        x[:, ::-1][:, ::-1],
        _ro(x),
        np.ones((2, 5, 16), np.float32)[..., ::2],
    ):
        np.testing.assert_array_equal(rope.apply(xl, np.arange(5)[::-1][::-1]), want)
    assert rope.apply(x, out=out_ok) is out_ok
    # NaN propagates, zero-size works
    xn = x.copy()
    xn[0, 0, 0] = np.nan
    assert np.isnan(rope.apply(xn)[0, 0]).any() and np.isfinite(rope.apply(xn)[1]).all()
    assert rope.apply(np.ones((0, 5, 8), np.float32)).shape == (0, 5, 8)
    assert rope.apply(np.ones((2, 0, 8), np.float32)).shape == (2, 0, 8)


# ----------------------------------------------------------------------------- EmbeddingBag


def test_bag_bad_inputs_and_layouts() -> None:
    bag = ce.EmbeddingBag(V, D, mode="sum", seed=2, max_norm=0.9)
    w = bag.weight.tobytes()
    ids = np.array([1, 2, 3, 4, 5])
    offs = np.array([0, 2])
    for bad in BAD_ID_DTYPES.values():
        if bad is None:
            continue
        raises(TypeError, lambda: bag(bad, offs))  # noqa: B023
        raises(TypeError, lambda: bag(ids, bad))  # noqa: B023
    for bad in OUT_OF_RANGE.values():
        b = np.asarray(bad).reshape(-1)
        raises(IndexError, lambda: bag(b, np.array([0])))  # noqa: B023
    check_all(
        (ValueError, IndexError),
        [
            lambda: bag(ids, np.array([1, 2])),  # offsets[0] != 0
            lambda: bag(ids, np.array([0, 3, 2])),  # decreasing
            lambda: bag(ids, np.array([0, 6])),  # beyond len(ids)
            lambda: bag(ids, np.array([0, -1])),
            lambda: bag(ids, np.array([0, 2**63 - 1])),
            lambda: bag(ids, np.array([0, 2**64 - 1], np.uint64)),
            lambda: bag(ids, np.array([[0, 2]])),  # 2-D offsets
            lambda: bag(ids),  # 1-D ids need offsets
            lambda: bag(ids.reshape(1, 5), offs),  # 2-D ids take no offsets
            lambda: bag(ids.reshape(1, 1, 5)),  # 3-D ids
            lambda: bag(ids, offs, np.ones(4, np.float32)),  # psw shape
            lambda: bag(ids, offs, out=np.empty((2, D), np.float64)),
            lambda: bag(ids, offs, out=np.empty((3, D), np.float32)),
            lambda: bag(ids, offs, out=np.empty((D, 2), np.float32).T),
            lambda: ce.EmbeddingBag(V, D, mode="median"),
            lambda: ce.EmbeddingBag(V, D, mode="mean")(ids, offs, np.ones(5, np.float32)),
            lambda: ce.EmbeddingBag(V, D, include_last_offset=True)(ids, np.array([0, 2])[:1]),
        ],
    )
    check_all(
        TypeError,
        [
            lambda: bag(ids, offs, np.ones(5, complex)),
            lambda: bag(ids, offs, np.array(["a"] * 5)),
            lambda: ce.EmbeddingBag(V, D, mode=3),  # type: ignore[arg-type]
            lambda: ce.EmbeddingBag(V, D, seed="1"),  # type: ignore[arg-type]
        ],
    )
    assert bag.weight.tobytes() == w  # no failed call renormalised anything
    # odd layouts of ids / offsets / weights work and equal the plain call
    bag = ce.EmbeddingBag(V, D, mode="sum", seed=2)
    ids2 = (np.arange(24).reshape(4, 6) * 7) % V
    want = bag(ids2)
    for il in (np.asfortranarray(ids2), ids2[::-1][::-1], _ro(ids2), ids2.astype(np.uint8)):
        np.testing.assert_array_equal(bag(il), want)
    flat = ids2.reshape(-1)
    o = np.arange(0, 24, 6)
    for ol in (o[::-1][::-1], _ro(o), o.astype(np.int8), np.arange(0, 24, 3)[::2]):
        np.testing.assert_array_equal(bag(flat, ol), want)
    psw = np.ones(24, np.float32)
    np.testing.assert_allclose(bag(flat, o, psw[::-1][::-1]), want, rtol=1e-6)
    assert bag(np.zeros((0, 3), np.int64)).shape == (0, D)
    assert (
        bag(np.zeros((2, 0), np.int64)).shape == (2, D)
        and not bag(np.zeros((2, 0), np.int64)).any()
    )
    np.testing.assert_array_equal(
        bag(np.array([], np.int64), np.array([0, 0])), np.zeros((2, D), np.float32)
    )


# ----------------------------------------------------------------------------- every callable

GARBAGE: list[Any] = [
    None,
    "x",
    -1,
    2**70,
    1.5,
    float("nan"),
    np.array(["a"]),
    np.ones(3, complex),
    np.ones((2, 2), object),
    np.zeros((0,)),
    object(),
    [[1], [2, 3]],
]


def _callables() -> list[tuple[str, Callable[..., Any]]]:
    out: list[tuple[str, Callable[..., Any]]] = []
    for name in ce.__all__:
        obj = getattr(ce, name)
        if name.startswith("CandleEmbed") or name in {"__version__", "optim", "set_num_threads"}:
            continue
        if callable(obj):
            out.append((name, obj))
            if isinstance(obj, type):
                for meth in ("from_pretrained", "load", "load_word2vec_format"):
                    if hasattr(obj, meth):
                        out.append((f"{name}.{meth}", getattr(obj, meth)))
    for name in optim.__all__:
        out.append((f"optim.{name}", getattr(optim, name)))
    return out


CALLABLES = _callables()


@pytest.mark.parametrize("name,fn", CALLABLES, ids=[c[0] for c in CALLABLES])
def test_every_callable_with_garbage_raises_only_allowed(
    name: str, fn: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Call each public callable with garbage in each of its first three positions: it may work
    or raise an allowed class, never RuntimeError (a caught panic), SystemError, OverflowError
    or abort."""
    monkeypatch.chdir(tmp_path)  # anything a callable writes lands in the temporary directory
    for arity in range(0, 4):
        for g in GARBAGE:
            for pos in range(max(arity, 1)):
                args = [3] * arity
                if arity:
                    args[pos] = g
                try:
                    fn(*args)
                except ALLOWED + (OSError,) as e:
                    assert not isinstance(e, (RuntimeError, SystemError)), (
                        f"{name}{tuple(args)!r}: {e!r}"
                    )
                    assert not isinstance(e, ce.CandleEmbedRuntimeError), (
                        f"{name}{tuple(args)!r}: {e!r}"
                    )


def test_methods_with_garbage_raise_only_allowed() -> None:
    objs: list[Any] = [
        ce.Embedding(V, D, seed=1),
        ce.EmbeddingBag(V, D, seed=1),
        ce.RotaryEmbedding(8),
        ce.SparseGrad.from_rows([1], np.ones((1, D), np.float32), V),
        optim.SGD(ce.Embedding(V, D, seed=1), 0.1),
    ]
    for extra in (
        "SinusoidalPositionalEncoding",
        "LearnedPositionalEmbedding",
        "RelativePositionBias",
    ):
        cls = getattr(ce, extra, None)
        for args in ((16, 8), (8, 16), (8,)):
            try:
                objs.append(cls(*args))  # type: ignore[misc]
                break
            except Exception:  # noqa: BLE001  (constructor arity differs per class)
                continue
    failures = []
    for obj in objs:
        for meth in dir(obj):
            if meth.startswith("__") or meth in {"save", "save_word2vec_format"}:
                continue
            fn = getattr(obj, meth, None)
            if not callable(fn):
                continue
            for g in GARBAGE:
                for args in ((g,), (g, g), (np.array([1]), g), (g, np.ones((1, D), np.float32))):
                    try:
                        fn(*args)
                    except ALLOWED + (OSError,) as e:
                        if isinstance(e, ce.CandleEmbedRuntimeError):
                            failures.append(f"{type(obj).__name__}.{meth}{args!r}: {e!r}")
                    except BaseException as e:  # noqa: BLE001
                        failures.append(f"{type(obj).__name__}.{meth}{args!r}: {e!r}")
    assert not failures, "\n".join(failures[:20])

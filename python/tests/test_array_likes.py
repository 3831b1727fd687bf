"""Any array-like in: ids and float inputs given as the buffer protocol (memoryview, bytearray,
array.array), objects with ``__array_interface__`` and DLPack producers give the same results
and the same errors as NumPy arrays, without a copy where the memory is usable as it is.

References are NumPy indexing / float64 formulas on the table's own copy (``emb.weight``)."""

from __future__ import annotations

import array
from collections.abc import Callable
from typing import Any

import candle_embed as ce
import numpy as np
import pytest


class ArrayInterface:
    """A non-NumPy object exposing memory through ``__array_interface__`` only."""

    def __init__(self, a: np.ndarray) -> None:
        self._keep = a
        self.__array_interface__ = a.__array_interface__


class DLPackProducer:
    """A non-NumPy DLPack producer (what a PyTorch or JAX CPU tensor looks like to us): it
    forwards the two DLPack methods of an ndarray it holds, and nothing else."""

    def __init__(self, a: np.ndarray, device: tuple[int, int] | None = None) -> None:
        self._a = a
        self._device = device

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._device or self._a.__dlpack_device__()


def id_forms(ids: np.ndarray) -> list[tuple[str, Any]]:
    """The same 1-D int ids in every non-NumPy form."""
    i64 = ids.astype(np.int64)
    forms: list[tuple[str, Any]] = [
        ("memoryview", memoryview(ids.astype(np.int32))),
        ("array.array q", array.array("q", i64.tolist())),
        ("array.array H", array.array("H", i64.tolist())),
        ("__array_interface__", ArrayInterface(ids.astype(np.uint32))),
        ("dlpack", DLPackProducer(ids.astype(np.int64))),
        ("dlpack strided", DLPackProducer(np.repeat(i64, 2)[::2])),
        ("list", ids.tolist()),
    ]
    if ids.max() < 256:
        forms.append(("bytearray", bytearray(ids.astype(np.uint8).tobytes())))
    return forms


IDS = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])


@pytest.mark.parametrize(("name", "ids"), id_forms(IDS), ids=[n for n, _ in id_forms(IDS)])
def test_lookup_and_backward_take_any_integer_array_like(name: str, ids: Any) -> None:
    emb = ce.Embedding(12, 5, seed=1, dtype="float64")
    w = emb.weight
    np.testing.assert_array_equal(emb(ids), w[IDS])
    out = np.empty((len(IDS), 5))
    assert emb(ids, out=out) is out
    np.testing.assert_array_equal(out, w[IDS])
    g = np.arange(len(IDS) * 5, dtype=np.float64).reshape(-1, 5)
    grad = emb.backward(ids, g)
    want = np.zeros((12, 5))
    np.add.at(want, IDS, g)
    np.testing.assert_array_equal(grad.to_dense(), want)
    # the same id validation as for NumPy input
    bad = np.array([1, 12])
    with pytest.raises(IndexError):
        emb(DLPackProducer(bad))
    with pytest.raises(IndexError):
        emb(memoryview(bad.astype(np.int32)))


def float_forms(x: np.ndarray) -> list[tuple[str, Any]]:
    return [
        ("memoryview", memoryview(x)),
        ("__array_interface__", ArrayInterface(x)),
        ("dlpack", DLPackProducer(x)),
        ("dlpack fortran", DLPackProducer(np.asfortranarray(x))),
        ("list", x.tolist()),
    ]


X = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)


@pytest.mark.parametrize(("name", "x"), float_forms(X), ids=[n for n, _ in float_forms(X)])
def test_float_inputs_take_any_array_like(name: str, x: Any) -> None:
    rope = ce.RotaryEmbedding(8)
    if name == "list":
        want = rope.apply(X.astype(np.float64))  # a list of Python floats is float64
    else:
        want = rope.apply(X)
    np.testing.assert_array_equal(rope.apply(x), want)
    pe = ce.SinusoidalPositionalEncoding(8, max_len=16, dtype="float64")
    np.testing.assert_array_equal(pe(x), X.astype(np.float64) + pe.table[:3])
    emb = ce.Embedding(6, 8, seed=2, dtype="float64")
    np.testing.assert_allclose(emb.attend(x), X.astype(np.float64) @ emb.weight.T, rtol=1e-6)


W = np.random.default_rng(1).standard_normal((5, 3))


@pytest.mark.parametrize(
    ("name", "w"),
    [*float_forms(W), ("array.array d", array.array("d", W.ravel().tolist()))],
    ids=[n for n, _ in float_forms(W)] + ["array.array d"],
)
def test_tables_from_array_likes(name: str, w: Any) -> None:
    if name == "array.array d":  # 1-D buffer: not a table
        with pytest.raises(ValueError):
            ce.Embedding.from_pretrained(w)
        return
    emb = ce.Embedding.from_pretrained(w)
    assert emb.dtype == "float64"
    np.testing.assert_array_equal(emb.weight, W)
    other = ce.Embedding(5, 3, dtype="float64", seed=0)
    other.weight = w
    np.testing.assert_array_equal(other.weight, W)


def test_bag_offsets_weights_and_positions_as_array_likes() -> None:
    bag = ce.EmbeddingBag(10, 4, mode="sum", seed=3, dtype="float64")
    w = bag.weight
    ids = np.array([1, 2, 3, 4, 5, 6])
    offsets = np.array([0, 2, 2, 5])
    psw = np.array([0.5, 1.0, -2.0, 3.0, 0.25, 1.5])
    want = np.stack(
        [
            (psw[s:e, None] * w[ids[s:e]]).sum(0)
            for s, e in zip(offsets, list(offsets[1:]) + [len(ids)])
        ]
    )
    got = bag(
        DLPackProducer(ids.astype(np.int32)),
        array.array("b", offsets.tolist()),
        memoryview(psw),
    )
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # rope positions and TransformerEmbeddings ids as buffers
    rope = ce.RotaryEmbedding(8)
    pos = np.array([4, 0, 7])
    np.testing.assert_array_equal(
        rope.apply(X[0], array.array("l", pos.tolist())), rope.apply(X[0], pos)
    )
    te = ce.TransformerEmbeddings(20, 8, seed=1)
    tok = np.array([[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(te(memoryview(tok.astype(np.int16))), te(tok))
    # sparse functions
    dst = np.arange(12, dtype=np.float64).reshape(4, 3)
    src = np.ones((2, 3))
    np.testing.assert_array_equal(
        ce.index_add(memoryview(dst), DLPackProducer(np.array([3, 3])), ArrayInterface(src)),
        dst + np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [2, 2, 2]]),
    )
    u, s = ce.coalesce(array.array("i", [2, 0, 2]), DLPackProducer(np.eye(3)))
    np.testing.assert_array_equal(u, [0, 2])
    np.testing.assert_array_equal(s, [[0, 1, 0], [1, 0, 1]])


@pytest.mark.parametrize("device", [(2, 0), (8, 0), (10, 1), (4, 0), (99, 0)])
def test_dlpack_on_a_non_cpu_device_is_a_clear_value_error(device: tuple[int, int]) -> None:
    emb = ce.Embedding(10, 4, seed=0)
    rope = ce.RotaryEmbedding(8)
    calls: list[Callable[[], Any]] = [
        lambda: emb(DLPackProducer(np.array([1, 2]), device)),
        lambda: emb.backward([1], DLPackProducer(np.ones((1, 4), np.float32), device)),
        lambda: rope.apply(DLPackProducer(X, device)),
        lambda: ce.Embedding.from_pretrained(DLPackProducer(np.ones((2, 2)), device)),
        lambda: ce.EmbeddingBag(10, 4)([1, 2], DLPackProducer(np.array([0]), device)),
    ]
    w = emb.weight
    for call in calls:
        with pytest.raises(ValueError, match="CPU") as info:
            call()
        assert isinstance(info.value, ce.CandleEmbedError)
    np.testing.assert_array_equal(emb.weight, w)


def test_dlpack_host_memory_kinds_are_read() -> None:
    # CUDA pinned host memory (3) and managed memory (13) are readable by the CPU, as NumPy's
    # own from_dlpack accepts them.
    emb = ce.Embedding(10, 4, seed=0)
    for kind in (3, 13):
        np.testing.assert_array_equal(
            emb(DLPackProducer(np.array([1, 2]), (kind, 0))), emb.weight[[1, 2]]
        )


def test_same_errors_as_numpy_input() -> None:
    emb = ce.Embedding(10, 4, seed=0)

    class BrokenDevice(DLPackProducer):
        def __dlpack_device__(self) -> tuple[int, int]:
            raise RuntimeError("no device")

    type_errors: list[Any] = [
        memoryview(np.array([1.0, 2.0])),  # float ids
        DLPackProducer(np.array([1.5])),
        ArrayInterface(np.array([True, False])),
        array.array("d", [1.0]),
        BrokenDevice(np.array([1])),
        object(),
    ]
    for bad in type_errors:
        with pytest.raises(TypeError) as info:
            emb(bad)
        assert isinstance(info.value, ce.CandleEmbedError), bad
    with pytest.raises(TypeError):
        ce.RotaryEmbedding(8).apply(memoryview(np.arange(8)))  # int x: RoPE keeps float dtypes
    with pytest.raises(ValueError):
        emb.backward(DLPackProducer(np.array([1, 2])), memoryview(np.ones((3, 4))))


def test_zero_copy_inputs_are_the_callers_memory() -> None:
    """An input viewed without a copy is the caller's memory itself: an ``out=`` in that
    memory is refused as overlapping (it would not be, had the input been copied), and an
    ``out=`` next to it is accepted."""
    buf = bytearray(2 * 3 * 8 * 4 * 2)
    x = np.frombuffer(buf, np.float32, count=48).reshape(2, 3, 8)
    x[:] = X
    rope = ce.RotaryEmbedding(8)
    want = rope.apply(X)
    overlapping = np.frombuffer(buf, np.float32, count=48).reshape(2, 3, 8)
    for view in (memoryview(buf)[: 48 * 4].cast("f", (2, 3, 8)), DLPackProducer(x)):
        with pytest.raises(ValueError, match="overlap"):
            rope.apply(view, out=overlapping)
        np.testing.assert_array_equal(x, X)  # nothing was written
        after = np.frombuffer(buf, np.float32, count=48, offset=48 * 4).reshape(2, 3, 8)
        assert rope.apply(view, out=after) is after
        np.testing.assert_array_equal(after, want)

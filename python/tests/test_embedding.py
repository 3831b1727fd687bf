"""Embedding lookup: values against NumPy float64 references, every id dtype and layout, `out=`,
padding_idx, max_norm, dtypes, from_pretrained, weight get/set, save/load, threads, and every
bad-input class (right exception class, table unchanged)."""

from __future__ import annotations

import threading
from pathlib import Path

import candle_embed as ce
import numpy as np
import pytest
from candle_embed._native import _testing

ID_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def make(v: int = 50, d: int = 8, **kw: object) -> ce.Embedding:
    return ce.Embedding(v, d, seed=7, **kw)  # type: ignore[arg-type]


def reference(weight: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """float64 row gather written out (not np.take of our own output)."""
    w = weight.astype(np.float64)
    flat = np.asarray(ids).reshape(-1).astype(np.int64)
    out = np.empty((flat.size, w.shape[1]), dtype=np.float64)
    for k, i in enumerate(flat):
        out[k] = w[i]
    return out.reshape(np.shape(ids) + (w.shape[1],))


@pytest.mark.parametrize("dtype", ID_DTYPES)
def test_lookup_every_id_dtype(dtype: type) -> None:
    emb = make(50, 8)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, size=(3, 5)).astype(dtype)
    y = emb(ids)
    assert y.shape == (3, 5, 8) and y.dtype == np.float32
    np.testing.assert_array_equal(y.astype(np.float64), reference(emb.weight, ids))


@pytest.mark.parametrize(
    "make_ids",
    [
        lambda a: a[::-1],  # reversed (negative stride)
        lambda a: a[::3],  # strided
        lambda a: np.asfortranarray(a.reshape(4, 25)),  # Fortran order
        lambda a: a.reshape(4, 25).T,  # transposed view
    ],
)
def test_lookup_any_layout(make_ids) -> None:  # type: ignore[no-untyped-def]
    emb = make(30, 6)
    base = np.random.default_rng(1).integers(0, 30, size=100)
    ids = make_ids(base)
    np.testing.assert_array_equal(emb(ids).astype(np.float64), reference(emb.weight, ids))


def test_lookup_read_only_ids() -> None:
    emb = make()
    ids = np.arange(10)
    ids.setflags(write=False)
    np.testing.assert_array_equal(emb(ids), emb.weight[:10])


def test_lookup_shapes_scalar_empty_sequences() -> None:
    emb = make(20, 4)
    w = emb.weight
    assert emb(3).shape == (4,)
    np.testing.assert_array_equal(emb(np.int64(3)), w[3])
    assert emb([]).shape == (0, 4)
    assert emb(np.zeros((2, 0), dtype=np.int32)).shape == (2, 0, 4)
    np.testing.assert_array_equal(emb([[1, 2], [3, 4]]), w[[[1, 2], [3, 4]]])


def test_fast_path_equals_portable_path() -> None:
    rng = np.random.default_rng(2)
    for dtype in ["float32", "float64", "float16"]:
        emb = ce.Embedding(1000, 33, dtype=dtype, seed=3)
        ids = rng.integers(0, 1000, size=(64, 40))  # large enough for the multi-threaded branch
        np.testing.assert_array_equal(emb(ids), _testing.lookup_portable(emb, ids))


def test_out_buffer_is_filled_and_returned() -> None:
    emb = make(40, 8)
    ids = np.random.default_rng(3).integers(0, 40, size=(7, 3))
    out = np.full((7, 3, 8), np.nan, dtype=np.float32)
    res = emb(ids, out=out)
    assert res is out
    np.testing.assert_array_equal(out.astype(np.float64), reference(emb.weight, ids))


@pytest.mark.parametrize(
    "bad_out",
    [
        np.zeros((5, 8), dtype=np.float64),  # wrong dtype
        np.zeros((5, 9), dtype=np.float32),  # wrong shape
        np.zeros((8, 5), dtype=np.float32).T,  # not C-contiguous
        [[0.0] * 8] * 5,  # not an ndarray
    ],
)
def test_bad_out_is_value_error(bad_out: object) -> None:
    emb = make(40, 8)
    with pytest.raises(ValueError) as info:
        emb(np.arange(5), out=bad_out)  # type: ignore[arg-type]
    assert isinstance(info.value, ce.CandleEmbedError)


def test_read_only_out_is_value_error() -> None:
    emb = make(40, 8)
    out = np.zeros((5, 8), dtype=np.float32)
    out.setflags(write=False)
    with pytest.raises(ValueError):
        emb(np.arange(5), out=out)


@pytest.mark.parametrize(
    "ids,expected",
    [
        ([0, 50], "50"),
        ([-1], "-1"),
        (np.array([2**63 - 1], dtype=np.int64), str(2**63 - 1)),
        (np.array([2**64 - 1], dtype=np.uint64), str(2**64 - 1)),
        (np.array([[1, 2], [3, 99]], dtype=np.int16), "99"),
    ],
)
def test_out_of_range_is_index_error_naming_id_and_size(ids: object, expected: str) -> None:
    emb = make(50, 4, max_norm=0.5)
    before = emb.weight
    with pytest.raises(IndexError) as info:
        emb(ids)  # type: ignore[arg-type]
    assert isinstance(info.value, ce.CandleEmbedError)
    assert expected in str(info.value) and "50" in str(info.value)
    np.testing.assert_array_equal(emb.weight, before)  # max_norm did not run


@pytest.mark.parametrize(
    "ids",
    [
        np.array([1.0, 2.0]),
        np.array([True, False]),
        np.array([1, 2], dtype=object),
        np.array([1 + 0j]),
        np.array(["a"]),
        1.5,
        True,
        ["x", "y"],
    ],
)
def test_non_integer_ids_are_type_error(ids: object) -> None:
    emb = make()
    with pytest.raises(TypeError) as info:
        emb(ids)  # type: ignore[arg-type]
    assert isinstance(info.value, ce.CandleEmbedError)


def test_padding_idx_zero_at_init_negative_normalised() -> None:
    emb = ce.Embedding(10, 4, padding_idx=-2, seed=1)
    assert emb.padding_idx == 8
    w = emb.weight
    assert np.all(w[8] == 0) and np.all(np.linalg.norm(w[np.arange(10) != 8], axis=1) > 0)
    np.testing.assert_array_equal(emb([8, 8]), np.zeros((2, 4), dtype=np.float32))
    for bad in (10, -11):
        with pytest.raises(IndexError):
            ce.Embedding(10, 4, padding_idx=bad)


def test_seed_reproducible_and_normal() -> None:
    a = ce.Embedding(2000, 50, seed=123).weight
    b = ce.Embedding(2000, 50, seed=123).weight
    c = ce.Embedding(2000, 50, seed=124).weight
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert abs(a.mean()) < 0.01 and abs(a.std() - 1.0) < 0.01


def max_norm_reference(w: np.ndarray, ids: np.ndarray, max_norm: float, p: float) -> np.ndarray:
    w = w.astype(np.float64).copy()
    for k in np.unique(ids):
        norm = np.linalg.norm(w[k], ord=p)
        if norm > max_norm:
            w[k] *= max_norm / (norm + 1e-7)
    return w


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
def test_max_norm_renormalises_looked_up_rows_in_place(p: float) -> None:
    emb = ce.Embedding(30, 5, max_norm=1.0, norm_type=p, seed=4)
    before = emb.weight
    ids = np.array([[1, 2, 2], [7, 1, 29]])
    y = emb(ids)
    want = max_norm_reference(before, ids, 1.0, p)
    np.testing.assert_allclose(emb.weight, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(y, want[ids], rtol=1e-6, atol=1e-7)
    untouched = np.setdiff1d(np.arange(30), ids)
    np.testing.assert_array_equal(emb.weight[untouched], before[untouched])
    np.testing.assert_allclose(_testing.lookup_portable(emb, ids), y, rtol=1e-6)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError):
        ce.Embedding(10, 4, dtype="int32")
    with pytest.raises(ValueError, match="cuda"):
        ce.Embedding(10, 4, device="cuda:0")
    with pytest.raises(ValueError, match="metal"):
        ce.Embedding(10, 4, device="metal")
    with pytest.raises(ValueError):
        ce.Embedding(10, 4, device="tpu")
    with pytest.raises(ValueError):
        ce.Embedding(10, 4, norm_type=-1.0)
    with pytest.raises(MemoryError):
        ce.Embedding(2**62, 2**10)
    with pytest.raises(TypeError):
        ce.Embedding(10, 4, seed="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        ce.Embedding(-1, 4)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_table_dtypes(dtype: str) -> None:
    emb = ce.Embedding(20, 6, dtype=dtype, seed=5)
    assert emb.dtype == dtype
    y = emb([1, 2, 3])
    expected_np = {"float32": np.float32, "float64": np.float64, "float16": np.float16}.get(
        dtype, np.float32
    )
    assert y.dtype == expected_np and emb.weight.dtype == expected_np
    np.testing.assert_array_equal(y, emb.weight[[1, 2, 3]])


def test_from_pretrained_keeps_dtype_and_padding_row() -> None:
    w = np.arange(12, dtype=np.float64).reshape(4, 3)
    emb = ce.Embedding.from_pretrained(w, padding_idx=1)
    assert emb.dtype == "float64" and emb.frozen and emb.padding_idx == 1
    np.testing.assert_array_equal(emb.weight, w)  # padding row not zeroed
    np.testing.assert_array_equal(emb([1, 3]), w[[1, 3]])
    w[0, 0] = 100.0  # the table is a copy, not a view of the caller's array
    assert emb.weight[0, 0] == 0.0
    assert not ce.Embedding.from_pretrained(w.astype(np.float32), freeze=False).frozen
    with pytest.raises(ValueError):
        ce.Embedding.from_pretrained(np.zeros(5, dtype=np.float32))
    with pytest.raises(TypeError):
        ce.Embedding.from_pretrained(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(TypeError):
        ce.Embedding.from_pretrained(np.zeros((2, 2), dtype=np.complex64))


def test_weight_get_is_copy_and_set_is_checked() -> None:
    emb = make(6, 3)
    w = emb.weight
    w[:] = 0
    assert not np.all(emb.weight == 0)
    new = np.arange(18, dtype=np.float64).reshape(6, 3)
    emb.weight = new
    np.testing.assert_array_equal(emb.weight, new.astype(np.float32))
    for bad, exc in [
        (np.zeros((6, 4)), ValueError),
        (np.zeros(18), ValueError),
        (np.zeros((6, 3), dtype=object), TypeError),
    ]:
        with pytest.raises(exc):
            emb.weight = bad
        np.testing.assert_array_equal(emb.weight, new.astype(np.float32))


def test_save_load_round_trip(tmp_path: Path) -> None:
    emb = ce.Embedding(25, 7, padding_idx=3, max_norm=2.5, norm_type=1.0, seed=9)
    path = tmp_path / "emb.safetensors"
    emb.save(path)
    back = ce.Embedding.load(path)
    np.testing.assert_array_equal(back.weight, emb.weight)
    assert (back.padding_idx, back.max_norm, back.norm_type) == (3, 2.5, 1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["emb.safetensors"]  # no temp file left


def test_load_rejects_truncated_and_corrupted_files(tmp_path: Path) -> None:
    emb = make(10, 4)
    path = tmp_path / "e.safetensors"
    emb.save(path)
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) - 9])
    (tmp_path / "garbage.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    flipped = bytearray(data)
    flipped[3] ^= 0x40  # header length becomes absurd
    (tmp_path / "flip.safetensors").write_bytes(bytes(flipped))
    for name in ["trunc", "garbage", "flip"]:
        with pytest.raises(ValueError) as info:
            ce.Embedding.load(tmp_path / f"{name}.safetensors")
        assert isinstance(info.value, ce.CandleEmbedError)
    with pytest.raises(FileNotFoundError):
        ce.Embedding.load(tmp_path / "missing.safetensors")


def test_threads_setting() -> None:
    before = ce.get_num_threads()
    try:
        ce.set_num_threads(1)
        assert ce.get_num_threads() == 1
        with pytest.raises(ValueError):
            ce.set_num_threads(0)
        assert ce.get_num_threads() == 1
    finally:
        ce.set_num_threads(before)
    assert ce.devices()[0] == "cpu"
    assert isinstance(ce.__version__, str)


def test_eight_python_threads_look_up_concurrently() -> None:
    emb = ce.Embedding(5000, 64, seed=11)
    weight = emb.weight
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(30):
            ids = rng.integers(0, 5000, size=(32, 64))
            y = emb(ids)
            if not np.array_equal(y, weight[ids]):
                errors.append(f"thread {seed}: wrong rows")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

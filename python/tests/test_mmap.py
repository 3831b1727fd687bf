"""Memory-mapped tables (``load(path, mmap=...)``): the same results as the table read into
memory, frozen read-only maps, training through writable maps (into the file for "r+", into
memory for "c"), and bad files or arguments refused with typed errors before anything is
mapped. The beyond-memory test is test_beyond_ram.py."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed import optim
from candle_embed._native import _testing

DTYPES = ["float32", "float64", "float16", "bfloat16"]


def saved(tmp_path: Path, w: Any, name: str = "t.safetensors", **kw: Any) -> Path:
    path = tmp_path / name
    ce.EmbeddingBag.from_pretrained(w, **kw).save(path)
    return path


def weight(rows: int = 40, dim: int = 12, seed: int = 0) -> Any:
    return np.random.default_rng(seed).normal(size=(rows, dim))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mapped_lookups_equal_the_table_in_memory(dtype: str, tmp_path: Path) -> None:
    path = tmp_path / "e.safetensors"
    ce.Embedding(40, 12, dtype=dtype, seed=1, padding_idx=3).save(path)
    mem, mapped = ce.Embedding.load(path), ce.Embedding.load(path, mmap=True)
    assert (mapped.mmap_mode, mem.mmap_mode) == ("r", None)
    assert (mapped.dtype, mapped.padding_idx, mapped.frozen) == (dtype, 3, True)
    ids = np.random.default_rng(2).integers(0, 40, (5, 7))
    np.testing.assert_array_equal(mapped(ids), mem(ids))
    np.testing.assert_array_equal(_testing.lookup_portable(mapped, ids), mem(ids))
    np.testing.assert_array_equal(mapped.weight, mem.weight)
    kw = {"dropout": 0.3, "seed": 5, "normalize": True}
    np.testing.assert_array_equal(mapped(ids, **kw), mem(ids, **kw))
    g = np.random.default_rng(3).normal(size=(5, 7, 12))
    for a, b in [
        (mapped.backward(ids, g), mem.backward(ids, g)),
        (mapped.backward(ids, g, **kw), mem.backward(ids, g, **kw)),
    ]:
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.values, b.values)
    x = np.random.default_rng(4).normal(size=(3, 12)).astype(mem(ids).dtype)
    np.testing.assert_array_equal(mapped.attend(x), mem.attend(x))
    np.testing.assert_array_equal(mapped.attend(x, ids[0]), mem.attend(x, ids[0]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_mapped_bags_equal_the_table_in_memory(dtype: str, mode: str, tmp_path: Path) -> None:
    path = tmp_path / "b.safetensors"
    ce.EmbeddingBag(30, 6, mode=mode, dtype=dtype, seed=2, padding_idx=0).save(path)
    mem, mapped = ce.EmbeddingBag.load(path), ce.EmbeddingBag.load(path, mmap="r")
    ids = np.random.default_rng(5).integers(0, 30, 50)
    off = np.array([0, 4, 4, 20, 49])
    psw = np.linspace(-1, 1, 50) if mode == "sum" else None
    if psw is not None and dtype == "float32":
        psw = psw.astype(np.float32)
    y = mem(ids, off, psw)
    np.testing.assert_array_equal(mapped(ids, off, psw), y)
    np.testing.assert_array_equal(
        _testing.bag_forward_portable(mapped, ids, off, psw),
        _testing.bag_forward_portable(mem, ids, off, psw),
    )
    g = np.ones_like(y)
    a, b = mapped.backward(ids, g, off, psw), mem.backward(ids, g, off, psw)
    np.testing.assert_array_equal(a.to_dense(), b.to_dense())
    if mode == "sum":
        np.testing.assert_array_equal(
            mapped.backward_per_sample_weights(ids, g, off),
            mem.backward_per_sample_weights(ids, g, off),
        )


def test_read_only_map_is_frozen_and_refuses_every_write(tmp_path: Path) -> None:
    w = weight()
    path = saved(tmp_path, w, freeze=False)
    emb = ce.Embedding.load(path, mmap=True)
    assert emb.frozen
    with pytest.raises(ValueError, match="mmap='r'") as e:
        optim.SGD(emb, 0.1)
    assert isinstance(e.value, ce.CandleEmbedError)
    with pytest.raises(ValueError, match="read-only"):
        emb.weight = np.zeros((40, 12))
    np.testing.assert_array_equal(emb.weight, w)
    assert path.read_bytes() == saved(tmp_path, w, "again.safetensors", freeze=False).read_bytes()
    # max_norm rewrites rows at lookup time: a read-only map cannot hold such a table
    p2 = saved(tmp_path, w, "norm.safetensors", max_norm=1.0)
    with pytest.raises(ValueError, match="max_norm"):
        ce.Embedding.load(p2, mmap=True)
    assert ce.EmbeddingBag.load(p2, mmap="c").max_norm == 1.0


def test_writable_map_trains_in_place_into_the_file(tmp_path: Path) -> None:
    w = weight()
    path = saved(tmp_path, w)  # saved frozen: "r+" is the request to write
    mapped = ce.Embedding.load(path, mmap="r+")
    mem = ce.Embedding.from_pretrained(w, freeze=False)
    assert not mapped.frozen and mapped.mmap_mode == "r+"
    ids = np.array([[1, 2, 2], [39, 0, 1]])
    g = np.random.default_rng(0).normal(size=(2, 3, 12))
    for table in (mapped, mem):
        opt = optim.RowWiseAdagrad(table, lr=0.5)
        for _ in range(3):
            opt.step(table.backward(ids, g))
    np.testing.assert_array_equal(mapped.weight, mem.weight)
    mapped.flush()
    np.testing.assert_array_equal(ce.Embedding.load(path).weight, mem.weight)
    # assigning the weight writes the file too
    mapped.weight = np.full((40, 12), 2.5)
    mapped.flush()
    assert np.all(ce.Embedding.load(path).weight == 2.5)


def test_writable_map_applies_max_norm_in_the_file(tmp_path: Path) -> None:
    w = weight() * 10
    path = saved(tmp_path, w, max_norm=1.0, mode="sum")
    bag = ce.EmbeddingBag.load(path, mmap="r+")
    ref = ce.EmbeddingBag.from_pretrained(w, max_norm=1.0, mode="sum")
    ids = np.array([[1, 5], [7, 7]])
    np.testing.assert_array_equal(bag(ids), ref(ids))
    bag.flush()
    np.testing.assert_array_equal(ce.EmbeddingBag.load(path).weight, ref.weight)


def test_copy_on_write_map_trains_in_memory_and_leaves_the_file(tmp_path: Path) -> None:
    w = weight()
    path = saved(tmp_path, w)
    before = path.read_bytes()
    mapped = ce.Embedding.load(path, mmap="c")
    assert not mapped.frozen and mapped.mmap_mode == "c"
    optim.SGD(mapped, 1.0).step(ce.SparseGrad.from_rows([3], np.ones((1, 12)), 40))
    expect = w.copy()
    expect[3] -= 1.0
    np.testing.assert_array_equal(mapped.weight, expect)
    mapped.flush()
    assert path.read_bytes() == before


def test_saving_a_mapped_table_writes_its_rows(tmp_path: Path) -> None:
    w = weight()
    path = saved(tmp_path, w, mode="max", padding_idx=2)
    mapped = ce.EmbeddingBag.load(path, mmap=True)
    mapped.save(tmp_path / "copy.safetensors")
    back = ce.EmbeddingBag.load(tmp_path / "copy.safetensors")
    np.testing.assert_array_equal(back.weight, w)
    assert (back.mode, back.padding_idx) == ("max", 2)
    # saving over the mapped file itself is safe (a new file is renamed over it)
    mapped.save(path)
    np.testing.assert_array_equal(mapped.weight, w)
    np.testing.assert_array_equal(ce.EmbeddingBag.load(path).weight, w)


def test_out_of_range_ids_on_mapped_tables_are_index_errors(tmp_path: Path) -> None:
    w = weight()
    path = saved(tmp_path, w, mode="sum")
    q = tmp_path / "q.safetensors"
    ce.QuantizedEmbeddingBag.from_float(w, 8, mode="sum").save(q)
    tables: list[Any] = [
        ce.Embedding.load(path, mmap=True),
        ce.EmbeddingBag.load(path, mmap="r+"),
        ce.QuantizedEmbedding.load(q, mmap=True),
        ce.QuantizedEmbeddingBag.load(q, mmap=True),
    ]
    for t in tables:
        for bad in ([[0, 40]], [[-1, 0]], np.array([[2**63]], np.uint64)):
            with pytest.raises(IndexError, match="out of range") as e:
                t(bad)
            assert isinstance(e.value, ce.CandleEmbedError)
    for t in tables[:2]:
        np.testing.assert_array_equal(t.weight, w)


def test_bad_mmap_arguments(tmp_path: Path) -> None:
    path = saved(tmp_path, weight())
    with pytest.raises(ValueError, match="'r\\+'"):
        ce.Embedding.load(path, mmap="w+")
    with pytest.raises(TypeError):
        ce.Embedding.load(path, mmap=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ce.Embedding.load(path, mmap=True, device="cuda:0")
    with pytest.raises(ValueError, match="read-only"):
        ce.QuantizedEmbedding.load(path, mmap="r+")  # type: ignore[arg-type]
    assert ce.Embedding.load(path, mmap=False).mmap_mode is None


def test_non_regular_files_are_refused_without_blocking(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="regular file"):
        ce.Embedding.load(tmp_path, mmap=True)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)  # opening it for reading would block until a writer came
        for load in (ce.Embedding.load, ce.QuantizedEmbedding.load):
            with pytest.raises(ValueError, match="regular file"):
                load(fifo, mmap=True)
        with pytest.raises(ValueError, match="regular file"):
            ce.QuantizedEmbedding.load(fifo)
    with pytest.raises(FileNotFoundError):
        ce.Embedding.load(tmp_path / "missing", mmap=True)


def test_lookups_never_see_rows_torn_by_steps_on_a_writable_map(tmp_path: Path) -> None:
    """An SGD step moves every row of an "r+" table from k to k + 1 under the mapping's write
    lock; concurrent lookups must see one k per call, never a mix."""
    v, d, steps = 500, 32, 40
    path = saved(tmp_path, np.zeros((v, d), np.float32))
    emb = ce.Embedding.load(path, mmap="r+")
    opt = optim.SGD(emb, 1.0)
    grad = ce.SparseGrad.from_rows(np.arange(v), np.full((v, d), -1.0, np.float32), v)
    done = threading.Event()
    errors: list[BaseException] = []

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not done.is_set():
                y = emb(rng.integers(0, v, (4, 200)))
                assert np.all(y == y.flat[0]), np.unique(y)[:4]
        except BaseException as e:  # noqa: BLE001 - reported on the main thread
            errors.append(e)

    readers = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for t in readers:
        t.start()
    for _ in range(steps):
        opt.step(grad)
    done.set()
    for t in readers:
        t.join()
    assert not errors, errors[0]
    assert np.all(emb.weight == steps)


def test_truncated_or_oversized_headers_are_value_errors(tmp_path: Path) -> None:
    path = saved(tmp_path, weight())
    data = path.read_bytes()
    hlen = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + hlen])
    for cut in (0, 5, 8, 8 + hlen // 2, 8 + hlen, len(data) - 1):
        p = tmp_path / f"cut{cut}.safetensors"
        p.write_bytes(data[:cut])
        with pytest.raises(ValueError) as e:
            ce.Embedding.load(p, mmap=True)
        assert isinstance(e.value, ce.CandleEmbedError)
    # a header promising more rows than the file holds
    header["weight"]["shape"][0] *= 1000
    header["weight"]["data_offsets"][1] *= 1000
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    p = tmp_path / "big.safetensors"
    p.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + hlen :])
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        ce.EmbeddingBag.load(p, mmap=True)

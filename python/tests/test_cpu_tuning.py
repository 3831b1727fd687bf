"""The CPU gather/bag speed settings (prefetch distance, streaming stores) change no bit of any
result: lookups against NumPy's own fancy indexing, bags against the portable candle path, at
every setting, with outputs aligned for 32/16-byte streaming stores and not aligned at all,
at 1 and 2 threads."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import candle_embed as ce
import numpy as np
import numpy.typing as npt
import pytest
from candle_embed._native import _testing

# (prefetch_bytes, stream_min_bytes): defaults, prefetch off, tiny/huge distances, always stream.
SETTINGS = [(None, None), (0, 0), (1, 0), (1 << 20, 0), (8 << 10, -1)]


@pytest.fixture
def restore_tuning() -> Iterator[None]:
    old_p, old_s = _testing.set_cpu_tuning()
    old_threads = ce.get_num_threads()
    try:
        yield
    finally:
        _testing.set_cpu_tuning(prefetch_bytes=old_p, stream_min_bytes=old_s)
        ce.set_num_threads(old_threads)


def aligned_out(shape: tuple[int, int], misalign: int) -> npt.NDArray[np.float32]:
    """A C-contiguous float32 array whose start is 64-byte aligned plus `misalign` bytes."""
    n = shape[0] * shape[1]
    raw = np.zeros(n * 4 + 128, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64 + misalign
    out = raw[start : start + n * 4].view(np.float32).reshape(shape)
    assert out.ctypes.data % 64 == misalign
    return out


def test_set_cpu_tuning_returns_previous_and_keeps_unset(restore_tuning: None) -> None:
    _testing.set_cpu_tuning(prefetch_bytes=4096, stream_min_bytes=-1)
    assert _testing.set_cpu_tuning() == (4096, -1)
    assert _testing.set_cpu_tuning(prefetch_bytes=123) == (4096, -1)
    assert _testing.set_cpu_tuning(stream_min_bytes=77) == (123, -1)
    assert _testing.set_cpu_tuning() == (123, 77)


@pytest.mark.parametrize("dim", [64, 128, 512, 36, 5])
def test_lookup_is_numpy_take_at_every_setting(dim: int, restore_tuning: None) -> None:
    rng = np.random.default_rng(dim)
    emb = ce.Embedding(3001, dim, seed=dim)
    w = emb.weight
    n = max(70000 // dim, 40)  # past the parallel threshold: several chunks per thread
    ids = rng.integers(0, 3001, size=n)
    ids[:5] = [0, 3000, 0, 3000, 17]  # first and last rows, repeats
    want = w[ids]
    for threads, (p, s), misalign in itertools.product((1, 2), SETTINGS, (0, 16, 32, 4)):
        ce.set_num_threads(threads)
        _testing.set_cpu_tuning(prefetch_bytes=p, stream_min_bytes=s)
        np.testing.assert_array_equal(emb(ids), want)
        out = aligned_out((n, dim), misalign)
        assert emb(ids, out=out) is out
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("dim", [64, 160, 512])
def test_bag_is_unchanged_by_every_setting(mode: str, dim: int, restore_tuning: None) -> None:
    rng = np.random.default_rng(dim + len(mode))
    bag = ce.EmbeddingBag(2000, dim, mode=mode, padding_idx=3, seed=5)
    ids = rng.integers(0, 2000, size=6000)
    ids[::11] = 3
    off = np.sort(rng.integers(0, 6000, size=300))
    off[0] = 0
    port = _testing.bag_forward_portable(bag, ids, off)
    base = bag(ids, off)
    np.testing.assert_allclose(base, port, rtol=2e-6, atol=1e-6)
    if mode == "sum":
        np.testing.assert_array_equal(base, port)
    for threads, (p, s) in itertools.product((1, 2), SETTINGS):
        ce.set_num_threads(threads)
        _testing.set_cpu_tuning(prefetch_bytes=p, stream_min_bytes=s)
        np.testing.assert_array_equal(bag(ids, off), base)


def test_set_cpu_lookahead_returns_previous(restore_tuning: None) -> None:
    old = _testing.set_cpu_lookahead()
    try:
        assert _testing.set_cpu_lookahead(4096) == old
        assert _testing.set_cpu_lookahead() == 4096
        assert _testing.set_cpu_lookahead(0) == 4096
    finally:
        _testing.set_cpu_lookahead(old)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("dim", [16, 64, 72, 128, 200])
def test_quantized_bag_is_unchanged_by_the_lookahead(bits: int, dim: int) -> None:
    """The quantized bags' look-ahead (into L2, its own distance) changes no bit: against the
    float64 sum of the dequantized rows, and equal at every distance (off, tiny, default, huge)
    and thread count; widths of one AVX-512 block and less, two blocks and a tail."""
    rng = np.random.default_rng(dim * bits)
    w = rng.standard_normal((1500, dim)).astype(np.float32)
    bag = ce.QuantizedEmbeddingBag.from_float(w, bits, mode="sum")
    ids = rng.integers(0, 1500, size=9000)
    off = np.sort(rng.integers(0, 9000, size=400))
    off[0] = 0
    rows = bag.dequantize().astype(np.float64)
    want = np.add.reduceat(rows[ids], off, axis=0)
    want[np.diff(np.append(off, ids.size)) == 0] = 0.0
    old, old_threads = _testing.set_cpu_lookahead(), ce.get_num_threads()
    try:
        base = bag(ids, off)
        np.testing.assert_allclose(base, want, rtol=1e-5, atol=1e-4)
        for threads, ahead in itertools.product((1, 2), (0, 1, 32 << 10, 1 << 20)):
            ce.set_num_threads(threads)
            _testing.set_cpu_lookahead(ahead)
            np.testing.assert_array_equal(bag(ids, off), base)
    finally:
        _testing.set_cpu_lookahead(old)
        ce.set_num_threads(old_threads)

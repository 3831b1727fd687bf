"""The ids' per-call copy lives in an allocation each thread keeps for its next call
(``bindings/python/src/arrays/snapshot.rs``). These calls change the width, the length (odd
byte counts that end inside a word), the layout and the thread from one call to the next, and
nest two index arrays in one call (bag ids and offsets), so that a kept allocation is reused
for values of another type and size; every result is NumPy indexing of the table's own copy."""

from __future__ import annotations

import threading

import candle_embed as ce
import numpy as np

WIDTHS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


def table(v: int = 100, d: int = 8) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((v, d)).astype(np.float32)


def test_lookups_reuse_the_copy_across_widths_lengths_and_layouts() -> None:
    w = table()
    emb = ce.Embedding.from_pretrained(w)
    rng = np.random.default_rng(2)
    for n in [0, 1, 3, 7, 9, 1000, 5, 20011, 2, 64]:
        for dt in WIDTHS:
            ids = rng.integers(0, 100, n).astype(dt)
            np.testing.assert_array_equal(emb(ids), w[ids.astype(np.int64)])
            strided = rng.integers(0, 100, (2 * n, 3)).astype(dt)[::2, 1]
            np.testing.assert_array_equal(emb(strided), w[strided.astype(np.int64)])


def test_bags_with_two_index_arrays_in_one_call() -> None:
    w = table()
    rng = np.random.default_rng(3)
    for mode in ["sum", "mean"]:
        bag = ce.EmbeddingBag.from_pretrained(w, mode=mode)
        for n, per in [(4096, 32), (33, 3), (10, 10), (70000, 7)]:
            ids = rng.integers(0, 100, n)
            offsets = np.arange(0, n, per, dtype=np.int32)
            want = np.stack(
                [
                    getattr(w[ids[s : s + per]].astype(np.float64), mode)(axis=0)
                    for s in range(0, n, per)
                ]
            )
            np.testing.assert_allclose(bag(ids, offsets), want, rtol=1e-5, atol=1e-5)


def test_threads_each_keep_their_own_copy() -> None:
    w = table()
    emb = ce.Embedding.from_pretrained(w)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for k in range(60):
                ids = rng.integers(0, 100, 1 + (k * 997) % 5000).astype(WIDTHS[k % 8])
                np.testing.assert_array_equal(emb(ids), w[ids.astype(np.int64)])
        except BaseException as e:  # reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]

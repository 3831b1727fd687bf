"""RSS over many lookup + backward (+ optimizer step) calls: memory must stay flat.

    python benches/bench_leaks.py [calls]     (default 100000)

RSS is read from /proc/self/statm at checkpoints after a warm-up; growth is last minus first."""

from __future__ import annotations

import os
import sys
import time

import candle_embed as ce
import numpy as np
from candle_embed import optim

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def measure(calls: int = 100_000, checkpoints: int = 10) -> tuple[float, list[float]]:
    """Run ``calls`` iterations of lookup + backward (and an optimizer step every 10th, an error
    every 100th); return (growth in MiB from the first checkpoint to the last, the readings)."""
    emb = ce.Embedding(10_000, 32, seed=1, max_norm=5.0)
    opt = optim.SparseAdam(emb, 1e-3)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 10_000, size=(8, 16))
    g = np.ones(ids.shape + (32,), np.float32)
    out = np.empty(ids.shape + (32,), np.float32)
    bad = np.array([1, 10_000])

    def one(i: int) -> None:
        emb(ids)
        emb(ids, out=out)
        sg = emb.backward(ids, g)
        if i % 10 == 0:
            opt.step(sg)
        if i % 100 == 0:
            try:
                emb(bad)
            except IndexError:
                pass

    for i in range(min(2000, calls)):  # warm-up: pools, allocator arenas
        one(i)
    readings = [rss_mib()]
    per = max(1, calls // checkpoints)
    for c in range(checkpoints):
        for i in range(per):
            one(c * per + i)
        readings.append(rss_mib())
    return readings[-1] - readings[0], readings


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    t = time.perf_counter()
    growth, readings = measure(calls)
    dt = time.perf_counter() - t
    print(
        f"{calls} x (2 lookups + backward, step every 10th, IndexError every 100th) in {dt:.1f} s"
    )
    print("RSS MiB at checkpoints: " + " ".join(f"{r:.1f}" for r in readings))
    print(f"growth after warm-up: {growth:+.2f} MiB")


if __name__ == "__main__":
    main()

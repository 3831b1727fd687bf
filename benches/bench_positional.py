"""Positional encodings: candle_embed against NumPy (and PyTorch when importable), same run.

Interleaved rounds (ours, then each peer, repeated), medians, ratio = ours / peer (< 1: faster).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable

import candle_embed as ce
import numpy as np
from peers import settled


def np_sinusoidal(max_len: int, dim: int) -> np.ndarray:
    pos = np.arange(max_len, dtype=np.float64)[:, None]
    w = 10000.0 ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    ang = pos * w
    out = np.empty((max_len, dim), np.float32)
    out[:, 0::2] = np.sin(ang)
    out[:, 1::2] = np.cos(ang)
    return out


def np_alibi(h: int, q: int, k: int) -> np.ndarray:
    def pow2(m: int) -> list[float]:
        return [2.0 ** (-8.0 * (i + 1) / m) for i in range(m)]

    c = 2 ** math.floor(math.log2(h))
    s = pow2(c) + pow2(2 * c)[0::2][: h - c]
    d = np.abs(np.arange(q, dtype=np.float32)[:, None] - np.arange(k, dtype=np.float32)[None, :])
    return -np.asarray(s, np.float32)[:, None, None] * d[None]


def bench(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            times[name].append(settled(fn))  # after an untimed call of fn (peers.py)
    return {k: statistics.median(v) for k, v in times.items()}


def report(title: str, med: dict[str, float]) -> None:
    ours = med["candle_embed"]
    print(f"\n{title}")
    for name, t in med.items():
        ratio = "" if name == "candle_embed" else f"  ours/peer = {ours / t:.2f}"
        print(f"  {name:<14} {t * 1e3:9.3f} ms{ratio}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    print(f"threads: {ce.get_num_threads()}, numpy {np.__version__}")

    np.testing.assert_allclose(
        ce.SinusoidalPositionalEncoding(512, max_len=8192).table,
        np_sinusoidal(8192, 512),
        atol=1e-6,
    )
    report(
        "sinusoidal table 8192 x 512 (float64 math, float32 out)",
        bench(
            {
                "candle_embed": lambda: ce.SinusoidalPositionalEncoding(512, max_len=8192).table,
                "numpy": lambda: np_sinusoidal(8192, 512),
            },
            args.rounds,
        ),
    )
    # without the .table copy (the encoder keeps the table in Rust)
    report(
        "sinusoidal table 8192 x 512, construction only (table stays in Rust)",
        bench(
            {
                "candle_embed": lambda: ce.SinusoidalPositionalEncoding(512, max_len=8192),
                "numpy": lambda: np_sinusoidal(8192, 512),
            },
            args.rounds,
        ),
    )
    pe = ce.SinusoidalPositionalEncoding(512, max_len=2048)
    tab = pe.table
    x = np.random.default_rng(0).standard_normal((8, 2048, 512)).astype(np.float32)
    report(
        "pe(x): x (8, 2048, 512) float32 + table rows",
        bench({"candle_embed": lambda: pe(x), "numpy": lambda: x + tab[:2048]}, args.rounds),
    )
    np.testing.assert_allclose(ce.alibi_bias(16, 1024, 1024), np_alibi(16, 1024, 1024), rtol=1e-6)
    report(
        "alibi_bias(16, 1024, 1024) float32",
        bench(
            {
                "candle_embed": lambda: ce.alibi_bias(16, 1024, 1024),
                "numpy": lambda: np_alibi(16, 1024, 1024),
            },
            args.rounds,
        ),
    )
    rpb = ce.RelativePositionBias(16, seed=0)
    w = rpb.weight
    rel = np.arange(1024)[None, :] - np.arange(1024)[:, None]
    buckets = ce.relative_position_bucket(rel)
    report(
        "T5 bias (16, 1024, 1024) float32 (numpy: gather with precomputed buckets)",
        bench(
            {
                "candle_embed": lambda: rpb(1024, 1024),
                "numpy": lambda: np.ascontiguousarray(w[buckets].transpose(2, 0, 1)),
            },
            args.rounds,
        ),
    )


if __name__ == "__main__":
    main()

"""most_similar over a large table: candle_embed.KeyedVectors against gensim's KeyedVectors,
same vectors, same queries, same run.

The table is random Gaussian ``--rows x --dim`` float32 (default 1M x 300, 1.2 GB; both
libraries hold it, so ~2.4 GB of RAM). Norms are filled once before timing (both cache them).
Each query is one word (``most_similar(word, topn=10)``) or an analogy (two positives, one
negative); rounds are interleaved (ours, gensim, ours, ...), times are medians per query. The
answers of both are compared (same keys) so a fast wrong answer cannot pass.

    python benches/bench_keyed_vectors.py [--rows 1000000] [--dim 300] [--queries 20]
    python benches/bench_keyed_vectors.py --rows 20000 --dim 50 --queries 3   # a quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import candle_embed as ce
import numpy as np


def _seconds(kv: Any, queries: list[dict[str, Any]]) -> float:
    """Wall time of every query of ``queries`` on ``kv``, one after another."""
    t0 = time.perf_counter()
    for q in queries:
        kv.most_similar(**q)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=300)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import gensim
    from gensim.models import KeyedVectors as GKV

    rng = np.random.default_rng(0)
    vectors = np.empty((args.rows, args.dim), np.float32)
    for i in range(0, args.rows, 100_000):
        vectors[i : i + 100_000] = rng.standard_normal(
            (min(100_000, args.rows - i), args.dim), dtype=np.float32
        )
    keys = [f"w{i}" for i in range(args.rows)]
    ours = ce.KeyedVectors(keys, vectors)
    theirs = GKV(args.dim, count=0)
    theirs.add_vectors(keys, vectors)
    ours.fill_norms()
    theirs.fill_norms()
    print(f"{args.rows} x {args.dim} float32; gensim {gensim.__version__}, "
          f"candle_embed {ce.__version__}, cpus {os.cpu_count()}")  # fmt: skip

    picks = rng.integers(0, args.rows, size=(args.queries, 3))
    cases: dict[str, list[dict[str, Any]]] = {
        "most_similar(word)": [{"positive": [keys[a]]} for a, _, _ in picks],
        "analogy (2 pos, 1 neg)": [
            {"positive": [keys[a], keys[b]], "negative": [keys[c]]} for a, b, c in picks
        ],
    }
    for name, queries in cases.items():
        for q in queries:  # same answers, or the timing means nothing
            a = [k for k, _ in ours.most_similar(**q, topn=10)]
            b = [k for k, _ in theirs.most_similar(**q, topn=10)]
            assert a == b, (name, q, a, b)
        t_ours, t_theirs = [], []
        for _ in range(args.rounds):
            t_ours.append(_seconds(ours, queries))
            t_theirs.append(_seconds(theirs, queries))
        per_ours = statistics.median(t_ours) / len(queries) * 1e3
        per_theirs = statistics.median(t_theirs) / len(queries) * 1e3
        print(f"{name:>24}: candle_embed {per_ours:8.2f} ms/query   gensim {per_theirs:8.2f} "
              f"ms/query   (x{per_theirs / per_ours:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()

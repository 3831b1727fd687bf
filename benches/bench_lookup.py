"""Embedding lookup: candle-embed against NumPy and (when importable) torch, from the same run.

    python benches/bench_lookup.py            # full grid, 1 and 2 threads
    python benches/bench_lookup.py --quick    # smoke run
    python benches/bench_lookup.py --v 1000000 --d 128 --threads 1 2

Peers, float32 table, int64 ids, N = 16384 ids per call cycled through 32 distinct batches:

- fresh output: ours ``emb(ids)`` vs ``np.take(table, ids, axis=0)`` and ``F.embedding(ids, W)``
- reused output: ours ``emb(ids, out=buf)`` vs ``np.take(table, ids, axis=0, out=buf)`` and
  ``torch.index_select(W, 0, ids, out=buf)``

torch shares the NumPy table's memory (``torch.from_numpy``); ours holds its own copy. NumPy's
take is single-threaded at every thread count.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import candle_embed as ce  # noqa: E402
from peers import (  # noqa: E402
    Bench,
    Peer,
    Row,
    arg_parser,
    check,
    describe_env,
    print_table,
    ratio_rows,
    set_threads,
    torch_or_none,
)

N_IDS = 16384
N_BATCHES = 32
ZIPF_S = 1.1

PAIRS_FRESH = [("ours emb(ids)", "np.take"), ("ours emb(ids)", "F.embedding")]
PAIRS_OUT = [
    ("ours emb(ids, out=)", "np.take(out=)"),
    ("ours emb(ids, out=)", "index_select(out=)"),
]


def make_ids(
    v: int, dist: str, rng: np.random.Generator, n: int = N_IDS, batches: int = N_BATCHES
) -> list[np.ndarray]:
    """``batches`` batches of ``n`` int64 ids in ``0..v``: uniform, or Zipf(``ZIPF_S``) over
    ranks with the ranks scattered over the table by a fixed permutation."""
    if dist == "uniform":
        return [rng.integers(0, v, n, dtype=np.int64) for _ in range(batches)]
    w = 1.0 / np.arange(1, v + 1, dtype=np.float64) ** ZIPF_S
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    perm = rng.permutation(v).astype(np.int64)
    out = []
    for _ in range(batches):
        ranks = np.searchsorted(cdf, rng.random(n), side="right")
        out.append(perm[np.minimum(ranks, v - 1)])
    return out


def lookup_peers(
    table: np.ndarray,
    emb: ce.Embedding,
    batches: list[np.ndarray],
    torch: ModuleType | None,
    *,
    numpy_peers: bool = True,
) -> dict[str, Peer]:
    """The lookup peers over ``batches``, each checked against ``table[ids]``: ours (fresh
    output and ``out=``), NumPy's take (both, unless ``numpy_peers`` is False) and, when torch
    is importable, ``F.embedding`` and ``index_select(out=)`` on a tensor sharing ``table``."""
    n, d, nb = batches[0].shape[0], table.shape[1], len(batches)
    buf_ours = np.empty((n, d), np.float32)
    peers: dict[str, Peer] = {
        "ours emb(ids)": lambda i: emb(batches[i % nb]),
        "ours emb(ids, out=)": lambda i: emb(batches[i % nb], out=buf_ours),
    }
    if numpy_peers:
        buf_np = np.empty((n, d), np.float32)
        peers["np.take"] = lambda i: np.take(table, batches[i % nb], axis=0)
        peers["np.take(out=)"] = lambda i: np.take(table, batches[i % nb], axis=0, out=buf_np)
    if torch is not None:
        w = torch.from_numpy(table)
        tb = [torch.from_numpy(b) for b in batches]
        buf_t = torch.empty((n, d), dtype=torch.float32)
        f_emb = torch.nn.functional.embedding
        peers["F.embedding"] = lambda i: f_emb(tb[i % nb], w)
        peers["index_select(out=)"] = lambda i: torch.index_select(w, 0, tb[i % nb], out=buf_t)
    for name, fn in peers.items():
        check(name, fn(0), table[batches[0]])
    return peers


def main() -> None:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--v", type=int, nargs="+", default=None, help="table rows")
    p.add_argument("--d", type=int, nargs="+", default=None, help="embedding dims")
    p.add_argument("--dist", nargs="+", default=["uniform", "zipf"], choices=["uniform", "zipf"])
    args = p.parse_args()
    torch = None if args.no_torch else torch_or_none()
    vs = args.v or ([50_000] if args.quick else [50_000, 1_000_000])
    ds = args.d or ([128] if args.quick else [64, 128, 512])
    rounds = args.rounds or (3 if args.quick else 15)
    bench = Bench(rounds=rounds, per_round=4, warmup=2)
    print(f"# lookup: {describe_env(torch)}")
    print(f"# N={N_IDS} ids x {N_BATCHES} batches, float32, int64 ids, {rounds} rounds x 4 calls,")
    print("# median (and min) ms per call; ours/peer < 1 means ours is faster", flush=True)
    rng = np.random.default_rng(0)
    all_rows: dict[int, list[Row]] = {t: [] for t in args.threads}
    for v in vs:
        for d in ds:
            table = rng.standard_normal((v, d), dtype=np.float32)
            emb = ce.Embedding.from_pretrained(table)
            for dist in args.dist:
                batches = make_ids(v, dist, rng)
                peers = lookup_peers(table, emb, batches, torch)
                for t in args.threads:
                    set_threads(t, torch)
                    times = bench.run(peers)
                    cfg = f"V={v // 1000}k D={d} {dist}"
                    rows = ratio_rows(cfg, times, PAIRS_FRESH + PAIRS_OUT, bench.mins())
                    all_rows[t] += rows
                    print_table(rows, title=f"\n## {cfg}, {t} thread(s)")
            del emb, table
    for t, rows in all_rows.items():
        print_table(rows, title=f"\n## Summary, {t} thread(s)", markdown=args.markdown)


if __name__ == "__main__":
    main()

"""EmbeddingBag peers: candle_embed against NumPy (np.add.reduceat(np.take)) and, if importable,
torch F.embedding_bag. Interleaved rounds, medians, ratios (peer / ours; > 1 means we are faster).

    python benches/bench_bag.py [--threads 1 2] [--vocab 1000000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import candle_embed as ce
import numpy as np
from peers import settled

try:
    import torch
    import torch.nn.functional as tF
except ImportError:  # torch is optional and never a dependency
    torch = None


def timed(f: Callable[[], Any]) -> float:
    return settled(f) * 1e3  # after an untimed call of f (peers.py)


def run(
    vocab: int,
    dim: int,
    bags: int,
    per: int,
    dist: str,
    threads: int,
    rounds: int,
    with_numpy: bool = True,
) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((vocab, dim), dtype=np.float32)
    n = bags * per
    if dist == "zipf":
        ids = (rng.zipf(1.1, size=n) - 1) % vocab
    else:
        ids = rng.integers(0, vocab, size=n)
    ids = ids.astype(np.int64)
    offsets = np.arange(0, n, per, dtype=np.int64)
    ce.set_num_threads(threads)
    out = np.empty((bags, dim), np.float32)
    contenders: dict[str, Callable[[], Any]] = {}
    for mode in ("sum", "mean"):
        bag = ce.EmbeddingBag.from_pretrained(w, mode=mode)
        contenders[f"ours {mode}"] = lambda bag=bag: bag(ids, offsets, out=out)
    if with_numpy:
        contenders["numpy reduceat(take) sum"] = lambda: np.add.reduceat(
            np.take(w, ids, axis=0), offsets, axis=0
        )
    if torch is not None:
        torch.set_num_threads(threads)
        tw, ti, to = torch.from_numpy(w), torch.from_numpy(ids), torch.from_numpy(offsets)
        for mode in ("sum", "mean"):
            contenders[f"torch embedding_bag {mode}"] = lambda mode=mode: tF.embedding_bag(
                ti, tw, to, mode=mode
            )
    # Check before timing: ours == NumPy.
    ref = np.add.reduceat(np.take(w, ids, axis=0).astype(np.float64), offsets, axis=0)
    np.testing.assert_allclose(contenders["ours sum"](), ref, rtol=1e-4, atol=1e-4)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for f in contenders.values():
        f()  # warm up
    for _ in range(rounds):
        for k, f in contenders.items():
            times[k].append(timed(f))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nV={vocab} D={dim} B={bags}x{per} {dist}, {threads} thread(s), median of {rounds}:")
    for k, m in med.items():
        mode = "mean" if "mean" in k else "sum"
        ratio = m / med[f"ours {mode}"]
        print(f"  {k:32s} {m:9.3f} ms   {ratio:6.2f}x ours {mode}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--vocab", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--bags", type=int, default=4096)
    p.add_argument("--per", type=int, default=32)
    p.add_argument("--dist", choices=["uniform", "zipf"], nargs="+", default=["uniform", "zipf"])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument(
        "--no-numpy",
        action="store_true",
        help="leave NumPy out: on a VM that returns freed memory to the host, its 67 MB "
        "temporaries per call slow the peers timed after it down 1.5-2.5x",
    )
    a = p.parse_args()
    for dist in a.dist:
        for t in a.threads:
            run(a.vocab, a.dim, a.bags, a.per, dist, t, a.rounds, not a.no_numpy)


if __name__ == "__main__":
    main()

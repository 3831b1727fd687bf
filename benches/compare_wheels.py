"""Two builds of candle_embed in one run: is any op slower than before a change?

Two versions of one extension module cannot live in one process, so each build is installed into
its own folder (``pip install --no-deps --target``) and timed in its own worker process; the
workers alternate (old, new, new, old, old, new, ...: an ABBA order, so a slow drift of the shared
machine hits both builds alike) for ``--rounds`` rounds. Every worker times the same ops on the
same seeded inputs with ``peers.Bench`` (median per call) and prints JSON; the report gives, per
op, the median over rounds of each build's figure and their ratio (new / old: below 1 means the
new build is faster), with the spread of the per-round ratios.

Usage::

    python benches/compare_wheels.py --old /path/old.whl --new dist/candle_embed-*.whl
    python benches/compare_wheels.py --old A.whl --new B.whl --rounds 8 --threads 1 --quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def install(wheel: str, into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(into), wheel],
        check=True,
    )
    return into


def ops(quick: bool) -> dict[str, Any]:
    """The ops timed: lookup (fresh and out=), bag sum/mean, sparse backward, SparseAdam step."""
    import candle_embed as ce
    import numpy as np

    v, d, n, bags = (20_000, 64, 4096, 512) if quick else (1_000_000, 128, 16_384, 2048)
    rng = np.random.default_rng(0)
    emb = ce.Embedding(v, d, seed=0)
    ids = [rng.integers(0, v, n, dtype=np.int64) for _ in range(4)]
    out = np.empty((n, d), np.float32)
    grad = rng.standard_normal((n, d)).astype(np.float32)
    offsets = np.arange(0, n, n // bags, dtype=np.int64)
    bag_sum = ce.EmbeddingBag(v, d, mode="sum", seed=0)
    bag_mean = ce.EmbeddingBag(v, d, mode="mean", seed=0)
    trained = ce.Embedding(v, d, seed=1)
    adam = ce.optim.SparseAdam([trained], lr=1e-3)
    sparse = trained.backward(ids[0], grad)

    return {
        f"lookup V={v} D={d} N={n}": lambda i: emb(ids[i % 4]),
        f"lookup out= V={v} D={d} N={n}": lambda i: emb(ids[i % 4], out=out),
        f"bag sum {bags} bags": lambda i: bag_sum(ids[i % 4], offsets),
        f"bag mean {bags} bags": lambda i: bag_mean(ids[i % 4], offsets),
        f"sparse backward N={n}": lambda i: emb.backward(ids[i % 4], grad),
        f"SparseAdam step {n} ids": lambda i: adam.step([sparse]),
    }


def worker(quick: bool, threads: int) -> None:
    sys.path.insert(0, str(HERE))
    import candle_embed as ce
    from peers import Bench

    ce.set_num_threads(threads)
    figures: dict[str, float] = {}
    for name, f in ops(quick).items():
        figures[name] = Bench(rounds=5 if quick else 9, per_round=3).run({name: f})[name]
    print(json.dumps({"version_file": ce.__file__, "figures": figures}))


def run_worker(folder: Path, quick: bool, threads: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(folder), OMP_NUM_THREADS=str(threads))
    args = [sys.executable, __file__, "--worker", "--threads", str(threads)]
    done = subprocess.run(
        args + (["--quick"] if quick else []), env=env, check=True, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["version_file"].startswith(str(folder)), result["version_file"]
    return dict(result["figures"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", help="wheel of the build before the change")
    p.add_argument("--new", help="wheel of the build after the change")
    p.add_argument("--rounds", type=int, default=6, help="worker runs per build (ABBA order)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="small sizes, few calls (smoke run)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a.quick, a.threads)
        return
    if not (a.old and a.new):
        p.error("--old and --new are required")
    with tempfile.TemporaryDirectory() as tmp:
        builds = {
            "old": install(a.old, Path(tmp, "old")),
            "new": install(a.new, Path(tmp, "new")),
        }
        runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
        for r in range(a.rounds):
            order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
            for which in order:
                runs[which].append(run_worker(builds[which], a.quick, a.threads))
    print(f"old: {a.old}\nnew: {a.new}\nthreads={a.threads}, {a.rounds} rounds (ABBA)\n")
    print(f"{'op':<34} {'old ms':>9} {'new ms':>9} {'new/old':>8} {'ratio range':>14}")
    for op in runs["old"][0]:
        old = statistics.median(run[op] for run in runs["old"])
        new = statistics.median(run[op] for run in runs["new"])
        per_round = [n[op] / o[op] for o, n in zip(runs["old"], runs["new"])]
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}"
        print(f"{op:<34} {old * 1e3:>9.3f} {new * 1e3:>9.3f} {new / old:>8.2f} {spread:>14}")


if __name__ == "__main__":
    main()

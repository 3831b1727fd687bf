"""The alternating-process measurement: what our op costs right after a PyTorch op in the same
process, with torch's OpenMP workers left spinning (the default) or sleeping at once
(``OMP_WAIT_POLICY=PASSIVE``), against the same op after one of ours.

    LD_LIBRARY_PATH=/work/bench-venv/cudastub /work/bench-venv/bin/python \\
        benches/bench_alternating.py [--quick] [--threads 1 2] [--rounds 200]

Each policy runs in a child process of its own (OpenMP reads the variable once, at start).
In the child, for every round: one torch call, then one of ours timed at once ("after torch");
then one of ours and one of ours timed ("after ours"); the same for torch. Ops: lookup into a
reused buffer (``emb(ids, out=)`` / ``index_select(out=)``) and bag sum, V = 1M, D = 128,
N = 16384. Printed: medians per op and policy, and the penalty after torch / after ours.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import arg_parser  # noqa: E402

POLICIES = {"default": None, "PASSIVE": "PASSIVE"}


def timed(f: Callable[[int], object], k: int) -> float:
    t0 = time.perf_counter()
    f(k)
    return time.perf_counter() - t0


def child(threads: int, rounds: int, quick: bool) -> None:
    import candle_embed as ce
    import torch

    v, n, d, per = (20_000, 1024, 128, 16) if quick else (1_000_000, 16384, 128, 32)
    rng = np.random.default_rng(0)
    table = rng.standard_normal((v, d), dtype=np.float32)
    ids = [rng.integers(0, v, n, dtype=np.int64) for _ in range(8)]
    offsets = np.arange(0, n, per, dtype=np.int64)
    emb, bag = (
        ce.Embedding.from_pretrained(table),
        ce.EmbeddingBag.from_pretrained(table, mode="sum"),
    )
    w, tids = torch.from_numpy(table), [torch.from_numpy(i) for i in ids]
    toff = torch.from_numpy(offsets)
    buf, tbuf = np.empty((n, d), np.float32), torch.empty((n, d))
    ce.set_num_threads(threads)
    torch.set_num_threads(threads)
    ops = {
        "lookup out=": (
            lambda k: emb(ids[k % 8], out=buf),
            lambda k: torch.index_select(w, 0, tids[k % 8], out=tbuf),
        ),
        "bag sum": (
            lambda k: bag(ids[k % 8], offsets),
            lambda k: torch.nn.functional.embedding_bag(tids[k % 8], w, toff, mode="sum"),
        ),
    }
    res = {}
    for name, (ours, theirs) in ops.items():
        np.testing.assert_allclose(ours(0), theirs(0).numpy(), rtol=1e-5, atol=1e-5)
        s: dict[str, list[float]] = {k: [] for k in ("after torch", "after ours", "torch")}
        for k in range(rounds):
            theirs(k)
            s["after torch"].append(timed(ours, k))
            ours(k + 1)
            s["after ours"].append(timed(ours, k + 2))
            theirs(k + 3)
            s["torch"].append(timed(theirs, k + 4))
        res[name] = {k: statistics.median(x) for k, x in s.items()}
    print(json.dumps(res))


def main() -> None:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    rounds = a.rounds or (3 if a.quick else 200)
    if a.child:
        child(a.threads[0], rounds, a.quick)
        return
    print("# median ms; penalty = ours after torch / ours after ours")
    for t in a.threads:
        for label, policy in POLICIES.items():
            env = dict(os.environ)
            env.pop("OMP_WAIT_POLICY", None)
            if policy is not None:
                env["OMP_WAIT_POLICY"] = policy
            cmd = [sys.executable, __file__, "--child", "--threads", str(t), "--rounds"]
            cmd += [str(rounds)] + (["--quick"] if a.quick else [])
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"child ({label}, {t}T) failed:\n{out.stderr}")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            for op, m in res.items():
                pen = m["after torch"] / m["after ours"]
                print(
                    f"{t}T OMP_WAIT_POLICY={label:8s} {op:12s} ours after torch "
                    f"{m['after torch'] * 1e3:8.3f}  after ours {m['after ours'] * 1e3:8.3f}  "
                    f"torch {m['torch'] * 1e3:8.3f}  penalty {pen:5.2f}x",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""A recommendation-style click model trained data-parallel on Ray with sharded embedding tables.

Three sparse features, each a ``ShardedEmbeddingBag`` whose rows live on shard actors:
``user`` (one id per example), ``item`` (one id) and ``history`` (the categories of the items
the user saw before, a bag of variable length, mean-pooled). A small dense head in NumPy
(DLRM-style element-wise interactions ``[user * item, history * item] -> Linear -> ReLU ->
Linear -> sigmoid``) predicts the click.

Each step, ``--workers`` Ray tasks take one micro-batch each. A task receives copies of the
table handles (they look rows up straight from the shard actors) and the dense weights, runs
the forward and backward passes, and returns its dense gradients and, per table, a
``ShardedGrad`` (coalesced rows, split by shard). The driver averages the dense gradients and
calls ``table.step(grads)`` on each table: every shard sums its part of the workers' gradients
in worker order and applies Adagrad. The run is deterministic: ``--kill-at STEP`` kills a shard
actor mid-run (Ray restarts it; the table rolls its shards back to the last checkpoint and
replays) and the final checksum is the same as without the kill.

    python examples/recsys_ray.py                       # local loopback cluster, ~1 minute
    python examples/recsys_ray.py --kill-at 150         # same checksum, one recovery
    python examples/recsys_ray.py --address auto        # an existing cluster (ray start ...)

Needs ``pip install "candle-embed[ray]"``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

# Before Ray is imported or started: no usage report from this process or its workers.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import ray  # noqa: E402
from candle_embed.distributed import (  # noqa: E402
    ShardedEmbeddingBag,
    ShardUnavailableError,
    init_local_cluster,
)

FEATURES = ("user", "item", "history")


def make_data(n: int, users: int, items: int, categories: int, seed: int) -> dict[str, Any]:
    """``n`` synthetic clicks (sampled with ``seed``) from one hidden model: a user likes items
    close to their own taste and to the categories they saw before."""
    hidden = np.random.default_rng(0)
    taste_u = hidden.standard_normal((users, 4))
    taste_i = hidden.standard_normal((items, 4))
    taste_c = hidden.standard_normal((categories, 4))
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, n)
    item = rng.integers(0, items, n)
    lengths = rng.integers(0, 6, n)  # some histories are empty bags
    history = rng.integers(0, categories, int(lengths.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    seen = np.zeros((n, 4))
    np.add.at(seen, np.repeat(np.arange(n), lengths), taste_c[history])
    seen /= np.maximum(lengths, 1)[:, None]
    score = np.sum((taste_u[user] + seen) * taste_i[item], axis=1)
    click = (rng.random(n) < 1 / (1 + np.exp(-score))).astype(np.float32)
    return {"user": user, "item": item, "history": history, "offsets": offsets, "y": click}


def batch(data: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """The examples ``rows`` as bag inputs: (ids, offsets) per feature, and the labels."""
    off = data["offsets"]
    starts, ends = off[rows], off[rows + 1]
    hist = np.concatenate([data["history"][s:e] for s, e in zip(starts, ends)])
    hist_off = np.concatenate([[0], np.cumsum(ends - starts)[:-1]]).astype(np.int64)
    single = np.arange(len(rows))
    return {
        "user": (data["user"][rows], single),
        "item": (data["item"][rows], single),
        "history": (hist, hist_off),
        "y": data["y"][rows],
    }


def init_head(dim: int, hidden: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    d_in = 2 * dim
    return {
        "w1": (rng.standard_normal((d_in, hidden)) / np.sqrt(d_in)).astype(np.float32),
        "b1": np.zeros(hidden, np.float32),
        "w2": (rng.standard_normal(hidden) / np.sqrt(hidden)).astype(np.float32),
        "b2": np.zeros((), np.float32),
    }


def forward(tables: dict[str, Any], head: dict[str, np.ndarray], b: dict[str, Any]) -> Any:
    """DLRM-style: the pooled rows ``u, i, h`` interact by element-wise products
    ``z = [u * i, h * i]``, then ``p = sigmoid(relu(z W1 + b1) w2 + b2)``."""
    e = {f: tables[f](*b[f]) for f in FEATURES}
    z = np.concatenate([e["user"] * e["item"], e["history"] * e["item"]], axis=1)
    a = np.maximum(z @ head["w1"] + head["b1"], 0)
    p = 1 / (1 + np.exp(-(a @ head["w2"] + head["b2"])))
    return e, z, a, p


@ray.remote(num_cpus=1)
def train_micro_batch(
    tables: dict[str, Any], head: dict[str, np.ndarray], b: dict[str, Any], scale: float
) -> tuple[float, dict[str, np.ndarray], dict[str, Any]]:
    """Forward and backward of one micro-batch (binary cross-entropy, mean over the batch,
    times ``scale`` = 1 / number of workers). Returns (loss, dense grads, table grads)."""
    e, z, a, p = forward(tables, head, b)
    y = b["y"]
    eps = 1e-7
    loss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
    d_logit = ((p - y) / len(y) * scale).astype(np.float32)
    da = np.outer(d_logit, head["w2"]) * (a > 0)
    grads = {"w1": z.T @ da, "b1": da.sum(0), "w2": a.T @ d_logit, "b2": d_logit.sum()}
    dz = da @ head["w1"].T
    dim = dz.shape[1] // 2
    d_ui, d_hi = dz[:, :dim], dz[:, dim:]
    d_rows = {
        "user": d_ui * e["item"],
        "item": d_ui * e["user"] + d_hi * e["history"],
        "history": d_hi * e["item"],
    }
    table_grads = {
        f: tables[f].backward(b[f][0], d_rows[f].astype(np.float32), b[f][1]) for f in FEATURES
    }
    return loss, grads, table_grads


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = make_data(args.examples, args.users, args.items, args.categories, seed=0)
    test = make_data(2000, args.users, args.items, args.categories, seed=1)
    sizes = {"user": args.users, "item": args.items, "history": args.categories}
    # Small initial rows (N(0, 0.1^2)): the products of N(0, 1) rows would start the head off
    # memorising instead of learning tastes.
    init = np.random.default_rng(7)
    tables = {
        f: ShardedEmbeddingBag.from_pretrained(
            (0.1 * init.standard_normal((sizes[f], args.dim))).astype(np.float32),
            args.shards,
            mode="mean",
            optimizer="Adagrad",
            optimizer_kwargs={"lr": args.lr},
        )
        for f in FEATURES
    }
    head = init_head(args.dim, args.hidden, seed=3)
    head_sum = {k: np.zeros_like(v) for k, v in head.items()}  # Adagrad state of the head
    ckpt_root = tempfile.mkdtemp(prefix="recsys-ckpt-")
    rng = np.random.default_rng(5)
    losses = []
    start = time.perf_counter()
    for step in range(args.steps):
        if step % args.checkpoint_every == 0:
            for f, t in tables.items():  # bounds the replay log; on shared storage in a cluster
                t.checkpoint(os.path.join(ckpt_root, f))
        if step == args.kill_at:
            ray.kill(tables["item"].shards[0], no_restart=False)
            print(f"step {step}: killed shard 0 of the item table (Ray restarts it)")
        rows = rng.integers(0, args.examples, (args.workers, args.batch))
        micro = [batch(data, r) for r in rows]

        def submit(micro: list[dict[str, Any]] = micro) -> list[Any]:
            return [train_micro_batch.remote(tables, head, m, 1 / args.workers) for m in micro]

        try:
            results = ray.get(submit())
        except ShardUnavailableError:  # a worker met a restarted shard: the driver recovers
            for t in tables.values():
                t.recover()
            results = ray.get(submit())
        for f, t in tables.items():
            t.step([tg[f] for _, _, tg in results])
        for k in head:
            g = sum(r[1][k] for r in results)
            head_sum[k] += g * g
            head[k] = (head[k] - args.lr * g / (np.sqrt(head_sum[k]) + 1e-10)).astype(np.float32)
        losses.append(float(np.mean([r[0] for r in results])))
        if step % max(args.steps // 10, 1) == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {np.mean(losses[-10:]):.4f}")
    elapsed = time.perf_counter() - start
    *_, p = forward(tables, head, batch(test, np.arange(2000)))
    accuracy = float(np.mean((p > 0.5) == (test["y"] > 0.5)))
    checksum = float(sum(t.gather_weight().astype(np.float64).sum() for t in tables.values()))
    recoveries = sum(t.recoveries for t in tables.values())
    print(
        f"{args.steps} steps x {args.workers} workers in {elapsed:.1f} s; held-out accuracy "
        f"{accuracy:.3f}; recoveries {recoveries}; table checksum {checksum!r}"
    )
    for t in tables.values():
        t.close()
    return {"losses": losses, "accuracy": accuracy, "checksum": checksum, "recoveries": recoveries}


# The run's sizes and schedule: each flag with its default (the flag's type is the default's).
SIZES: dict[str, int | float] = {
    "shards": 4,
    "workers": 4,
    "steps": 300,
    "batch": 256,
    "examples": 300_000,
    "users": 1_000,
    "items": 500,
    "categories": 100,
    "dim": 8,
    "hidden": 32,
    "lr": 0.1,
    "checkpoint-every": 100,
}


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", help="join a running cluster (e.g. auto); default: a local one")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local cluster")
    for flag, default in SIZES.items():
        ap.add_argument(f"--{flag}", type=type(default), default=default)
    ap.add_argument("--kill-at", type=int, default=-1, help="kill a shard at this step")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if not ray.is_initialized():
        if args.address:
            ray.init(address=args.address)
        else:
            init_local_cluster(num_cpus=args.cpus)
    return run(args)


if __name__ == "__main__":
    main()

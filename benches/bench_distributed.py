"""Row-sharded tables on a local loopback Ray cluster against one local table: lookups and
training steps (backward + Adagrad step) for 1, 2, 4 and 8 shards.

On one machine a sharded table can only lose to the local one (every lookup crosses process
boundaries through Ray's object store); the figures measure that fixed cost per call and how it
grows with the shard count, which the cost model in the README ("Beyond one machine") takes
as its per-call overhead. Ids are Zipf-distributed (recommendation traffic: a few hot rows).

Interleaved rotated rounds (peers.py), medians, ours/peer = sharded/local.
Run: python benches/bench_distributed.py [--rows 1000000] [--dim 64] [--batch 16384]
     [--shards 1 2 4 8] [--cpus 2] [--quick]
"""

from __future__ import annotations

import os

# Before Ray is imported or started: no usage report from this process or its workers.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import candle_embed as ce  # noqa: E402
import numpy as np  # noqa: E402
from candle_embed.distributed import ShardedEmbedding, init_local_cluster  # noqa: E402
from peers import Bench, Row, arg_parser, describe_env, print_table, ratio_rows  # noqa: E402

BATCHES = 16  # distinct batches cycled through, so no call sees the previous one's ids


def main() -> None:
    p = arg_parser(__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--batch", type=int, default=16_384, help="ids per lookup / step")
    p.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    a = p.parse_args()
    rows, batch, shards, rounds = a.rows, a.batch, a.shards, a.rounds or 7
    if a.quick:
        rows, batch, shards, rounds = 20_000, 1_024, [1, 2], 2
    # Room for the replay log: every step keeps its per-shard gradient in the object store
    # until the next checkpoint (none here), about batch * dim * 4 bytes per step.
    init_local_cluster(num_cpus=a.cpus, object_store_memory=1 << 30)
    print(describe_env(None), f"| ray cluster: {a.cpus} CPUs, loopback", flush=True)

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((rows, a.dim)).astype(np.float32)
    ids = [(rng.zipf(1.1, batch) - 1) % rows for _ in range(BATCHES)]
    grads = [rng.standard_normal((batch, a.dim)).astype(np.float32) for _ in range(BATCHES)]
    local = ce.Embedding.from_pretrained(weight, freeze=False)
    local_opt = ce.optim.Adagrad(local, lr=0.01)

    def local_step(i: int) -> None:
        k = i % BATCHES
        local_opt.step(local.backward(ids[k], grads[k]))

    table_rows: list[Row] = []
    throughput = []
    for n in shards:
        table = ShardedEmbedding.from_pretrained(
            weight, n, optimizer="Adagrad", optimizer_kwargs={"lr": 0.01}
        )

        def sharded_step(i: int, table: ShardedEmbedding = table) -> None:
            k = i % BATCHES
            table.apply_gradients(ids[k], grads[k])

        bench = Bench(rounds=rounds, per_round=3, warmup=1)
        times = bench.run(
            {
                "sharded lookup": lambda i, table=table: table(ids[i % BATCHES]),
                "local lookup": lambda i: local(ids[i % BATCHES]),
                "sharded step": sharded_step,
                "local step": local_step,
            }
        )
        config = f"{n} shard{'s' if n > 1 else ''}"
        pairs = [("sharded lookup", "local lookup"), ("sharded step", "local step")]
        table_rows += ratio_rows(config, times, pairs, bench.mins())
        throughput.append((n, times, table.step_count))
        table.close()
    print_table(
        table_rows,
        title=f"\n{rows} x {a.dim} float32, {batch} Zipf ids per call (median ms)",
        markdown=a.markdown,
    )
    print("\nper second (the local table's in brackets, from the same rounds):")
    for n, times, done in throughput:
        print(
            f"  {n} shards: {batch / times['sharded lookup']:.3g} ids looked up "
            f"[{batch / times['local lookup']:.3g}], {1 / times['sharded step']:.3g} steps "
            f"[{1 / times['local step']:.3g}] ({done} sharded steps run)"
        )


if __name__ == "__main__":
    main()

"""Row-sharded embedding tables trained with sparse gradients on a Ray cluster.

``pip install "candle-embed[ray]"`` (Ray is an optional extra)::

    import ray
    from candle_embed.distributed import ShardedEmbedding, ShardedEmbeddingBag

    ray.init(address="auto")        # or ray.init() for a local cluster
    t = ShardedEmbedding(10_000_000, 64, num_shards=8, optimizer="Adagrad",
                         optimizer_kwargs={"lr": 0.1})
    y = t(ids)                        # ids of any shape -> ids.shape + (64,)
    t.backward(ids, grad_y); t.step() # or t.apply_gradients(ids, grad_y)
    t.checkpoint("/shared/ckpt")      # every shard, then the manifest; t.restore(...)

Each shard is a Ray actor holding a ``candle_embed.Embedding`` with its rows and a sparse
optimizer over them; lookups and gradients are split by owner and sent to the shards in
parallel. A shard that dies is restarted by Ray and the table rolls every shard back to the
last checkpoint and replays the steps since, so training ends bit-identical to a run without
the failure. See the README's "Beyond one machine".
"""

from __future__ import annotations

try:
    import ray  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised by a test in a process without Ray
    raise ImportError(
        "candle_embed.distributed needs Ray, an optional dependency: "
        "pip install 'candle-embed[ray]' (or: pip install ray)"
    ) from e

from candle_embed.distributed.bag import ShardedEmbeddingBag
from candle_embed.distributed.cluster import init_local_cluster
from candle_embed.distributed.embedding import ShardedEmbedding
from candle_embed.distributed.grad import ShardedGrad
from candle_embed.distributed.routing import ROUTINGS
from candle_embed.distributed.shard import ShardRestartedError
from candle_embed.distributed.table import DEFAULT_ACTOR_OPTIONS, ShardUnavailableError

__all__ = [
    "DEFAULT_ACTOR_OPTIONS",
    "ROUTINGS",
    "ShardRestartedError",
    "ShardUnavailableError",
    "ShardedEmbedding",
    "ShardedEmbeddingBag",
    "ShardedGrad",
    "init_local_cluster",
]

"""``ShardedEmbedding``: an ``Embedding`` whose rows live on ``num_shards`` Ray actors.

Lookup: the ids are validated here (by a zero-width local ``Embedding`` of the same size: the
local rules and messages, no rows), deduplicated, split by owner (``routing.py``), fetched from
the shards in parallel, and scattered back in the ids' order: ``y[i] = W[ids[i]]``, shape
``ids.shape + (embedding_dim,)``.

Backward: ``dL/dW[u] = sum_{i : ids[i] = u} g[i]`` (the padding row gets nothing), computed by
the local ``Embedding.backward`` on a *compact* table with one row per distinct id (ids
renumbered in sorted order, which keeps every row's summation order), so the rows are
bit-identical to a local table's gradient and coalesced before they travel. The result is split
by shard, returned as a ``ShardedGrad`` and queued for ``step()``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

import candle_embed as ce
from candle_embed._errors import typed_methods
from candle_embed.distributed.grad import ShardedGrad
from candle_embed.distributed.state import ShardedTable
from candle_embed.distributed.table import shared_options

__all__ = ["ShardedEmbedding", "compact_ids"]

S = TypeVar("S", bound="ShardedEmbedding")


def compact_ids(
    arr: npt.NDArray[Any], padding_idx: int | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int | None, tuple[int, ...]]:
    """Integer ids -> (sorted unique ids, each position's index in them (same shape as ids),
    the padding row's index in them or None, ids' shape)."""
    flat = arr.astype(np.int64, copy=False).reshape(-1)
    unique, inverse = np.unique(flat, return_inverse=True)
    pad = None
    if padding_idx is not None:
        at = int(np.searchsorted(unique, padding_idx))
        if at < len(unique) and unique[at] == padding_idx:
            pad = at
    return unique, inverse.reshape(arr.shape).astype(np.int64), pad, arr.shape


@typed_methods
class ShardedEmbedding(ShardedTable):
    """A ``(num_embeddings, embedding_dim)`` table sharded by rows over Ray actors.

    ``ShardedEmbedding(num_embeddings, embedding_dim, num_shards, *, optimizer=None,
    optimizer_kwargs=None, padding_idx=None, dtype="float32", seed=None, routing="mod")``:
    rows drawn from N(0, 1) like ``Embedding`` (the padding row zero), each shard from its own
    seed derived from ``seed``, so the table is a function of ``(seed, num_shards, routing)``
    (it is not ``Embedding(seed=seed)``'s table; use ``from_pretrained`` for a given table).
    ``optimizer``: a name in ``candle_embed.optim`` ("SGD", "Adagrad", "RowWiseAdagrad",
    "SparseAdam", ...), built on every shard with ``optimizer_kwargs``. ``routing``: "mod"
    (row ``r`` on shard ``r % num_shards``) or "range" (contiguous blocks).
    ``actor_options``: extra ``ray.remote`` options for the shard actors (resources,
    scheduling strategy, ``max_restarts``), merged over ``DEFAULT_ACTOR_OPTIONS``.
    Needs a running Ray (``ray.init`` / ``ray.init(address=...)``).
    """

    @classmethod
    def from_pretrained(
        cls: type[S],
        weight: npt.ArrayLike,
        num_shards: int,
        *,
        optimizer: str | None = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        padding_idx: int | None = None,
        routing: str = "mod",
        actor_options: dict[str, Any] | None = None,
    ) -> S:
        """A sharded table with the rows of ``weight`` (``(num_embeddings, dim)``, its dtype;
        the padding row is kept as given, like ``Embedding.from_pretrained``)."""
        return cls._from_rows(
            weight,
            num_shards,
            shared_options(optimizer, optimizer_kwargs, padding_idx, routing, actor_options),
        )

    def __call__(self, ids: npt.ArrayLike) -> npt.NDArray[Any]:
        """Rows at ``ids`` (any integer dtype, any shape): ``ids.shape + (embedding_dim,)``."""
        self._validator(ids)
        unique, inverse, _, shape = compact_ids(self._id_array(ids), None)
        rows = self._rows(unique)
        return rows[inverse.reshape(-1)].reshape(shape + (self.embedding_dim,))

    def backward(self, ids: npt.ArrayLike, grad_output: npt.ArrayLike) -> ShardedGrad:
        """The table's gradient for ``grad_output`` (``ids.shape + (embedding_dim,)``), split
        by shard and coalesced; also queued for the next ``step()``. Nothing is sent."""
        # The local backward's checks, in its order (ids dtype, grad dtype and shape, id
        # range), each made by a local call: a zero-length view of the ids through the
        # zero-width table (dtype only), the compact table's backward (the gradient), then the
        # zero-width table's backward (the range, with the local backward's message).
        arr = self._id_array(ids)
        self._validator(arr[:0] if arr.ndim else arr.reshape(1)[:0])
        unique, inverse, pad, _ = compact_ids(arr, self.padding_idx)
        compact = ce.Embedding.from_pretrained(
            np.zeros((len(unique), self.embedding_dim), dtype=self.dtype), padding_idx=pad
        )
        g = compact.backward(inverse, grad_output)
        self._validator.backward(arr, np.empty(arr.shape + (0,), dtype=self.dtype))
        return self._sharded_grad(unique[g.indices], g.values)

    def apply_gradients(self, ids: npt.ArrayLike, grad_output: npt.ArrayLike) -> None:
        """``backward(ids, grad_output)`` then ``step()``."""
        self._require_trainable()
        self.backward(ids, grad_output)
        self.step()

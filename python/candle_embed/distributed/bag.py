"""``ShardedEmbeddingBag``: an ``EmbeddingBag`` whose rows live on ``num_shards`` Ray actors.

Forward: ids, offsets and per-sample weights are validated here by a zero-width local
``EmbeddingBag`` of the same size and mode (the local rules and messages, no rows). The
distinct ids' rows are fetched from the shards (as ``ShardedEmbedding`` does), and the bags are
pooled here by a local ``EmbeddingBag`` over those rows (ids renumbered in sorted order), so
every bag's sum, mean or max runs over the same values in the same order as one local table's:
bit-identical. Only distinct rows travel; a bag spanning several shards needs no cross-shard
reduction.

Backward: the local ``EmbeddingBag.backward`` on the same compact table (its rows are needed
only for mode "max", whose gradient goes to each column's argmax row), coalesced, split by
shard, returned as a ``ShardedGrad`` and queued for ``step()``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

import candle_embed as ce
from candle_embed._errors import typed_methods
from candle_embed.distributed.embedding import compact_ids
from candle_embed.distributed.grad import ShardedGrad
from candle_embed.distributed.state import ShardedTable
from candle_embed.distributed.table import shared_options

__all__ = ["ShardedEmbeddingBag"]

B = TypeVar("B", bound="ShardedEmbeddingBag")


@typed_methods
class ShardedEmbeddingBag(ShardedTable):
    """Pooled lookups over a table sharded by rows (``EmbeddingBag`` semantics: ``mode``
    "sum", "mean" or "max", 2-D ids or 1-D ids with offsets, ``include_last_offset``,
    ``per_sample_weights`` for "sum", ``padding_idx`` left out of every bag).

    ``ShardedEmbeddingBag(num_embeddings, embedding_dim, num_shards, *, mode="mean",
    optimizer=None, optimizer_kwargs=None, padding_idx=None, include_last_offset=False,
    dtype="float32", seed=None, routing="mod")``; the other arguments as ``ShardedEmbedding``.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        num_shards: int,
        *,
        mode: str = "mean",
        optimizer: str | None = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        padding_idx: int | None = None,
        include_last_offset: bool = False,
        dtype: str = "float32",
        seed: int | None = None,
        routing: str = "mod",
        actor_options: dict[str, Any] | None = None,
    ) -> None:
        self._set_bag(num_embeddings, mode, padding_idx, include_last_offset)
        super().__init__(
            num_embeddings,
            embedding_dim,
            num_shards,
            optimizer=optimizer,
            optimizer_kwargs=optimizer_kwargs,
            padding_idx=padding_idx,
            dtype=dtype,
            seed=seed,
            routing=routing,
            actor_options=actor_options,
        )

    @classmethod
    def from_pretrained(
        cls: type[B],
        weight: npt.ArrayLike,
        num_shards: int,
        *,
        mode: str = "mean",
        optimizer: str | None = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        padding_idx: int | None = None,
        include_last_offset: bool = False,
        routing: str = "mod",
        actor_options: dict[str, Any] | None = None,
    ) -> B:
        """A sharded bag with the rows of ``weight`` (``(num_embeddings, dim)``, its dtype)."""
        rows = np.asarray(weight)
        table = cls.__new__(cls)
        table._set_bag(rows.shape[0] if rows.ndim else 0, mode, padding_idx, include_last_offset)
        made = cls._from_rows(
            rows,
            num_shards,
            shared_options(optimizer, optimizer_kwargs, padding_idx, routing, actor_options),
        )
        made._restore_extra_state(table._extra_state())
        return made

    def _set_bag(
        self, num_embeddings: int, mode: str, padding_idx: int | None, include_last_offset: bool
    ) -> None:
        # A zero-width local bag checks mode and include_last_offset now and every call's ids,
        # offsets and per-sample weights later, with the local rules and messages.
        self._bag_validator = ce.EmbeddingBag(
            num_embeddings,
            0,
            mode=mode,
            padding_idx=padding_idx,
            include_last_offset=include_last_offset,
        )
        self._mode = self._bag_validator.mode
        self._include_last_offset = bool(include_last_offset)

    def _extra_state(self) -> dict[str, Any]:
        return {
            "mode": self._mode,
            "include_last_offset": self._include_last_offset,
        }

    def _restore_extra_state(self, extra: dict[str, Any]) -> None:
        self._set_bag(
            self.num_embeddings, extra["mode"], self.padding_idx, extra["include_last_offset"]
        )

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def include_last_offset(self) -> bool:
        return self._include_last_offset

    def _compact_bag(
        self, ids: Any, offsets: Any, per_sample_weights: Any, need_rows: bool
    ) -> tuple[ce.EmbeddingBag, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        self._bag_validator(ids, offsets, per_sample_weights)
        unique, inverse, pad, _ = compact_ids(self._id_array(ids), self.padding_idx)
        if need_rows:
            rows = self._rows(unique)
        else:
            rows = np.zeros((len(unique), self.embedding_dim), dtype=self.dtype)
        bag = ce.EmbeddingBag.from_pretrained(
            rows, mode=self._mode, padding_idx=pad, include_last_offset=self._include_last_offset
        )
        return bag, unique, inverse

    def __call__(
        self,
        ids: npt.ArrayLike,
        offsets: npt.ArrayLike | None = None,
        per_sample_weights: npt.ArrayLike | None = None,
    ) -> npt.NDArray[Any]:
        """One pooled row per bag: ``(B, embedding_dim)``."""
        bag, _, inverse = self._compact_bag(ids, offsets, per_sample_weights, True)
        return bag(inverse, offsets, per_sample_weights)

    def backward(
        self,
        ids: npt.ArrayLike,
        grad_output: npt.ArrayLike,
        offsets: npt.ArrayLike | None = None,
        per_sample_weights: npt.ArrayLike | None = None,
    ) -> ShardedGrad:
        """The table's gradient for ``grad_output`` ``(B, embedding_dim)``, split by shard and
        coalesced; also queued for the next ``step()``. Mode "max" reads the current rows."""
        need_rows = self._mode == "max"
        bag, unique, inverse = self._compact_bag(ids, offsets, per_sample_weights, need_rows)
        g = bag.backward(inverse, grad_output, offsets, per_sample_weights)
        return self._sharded_grad(unique[g.indices], g.values)

    def apply_gradients(
        self,
        ids: npt.ArrayLike,
        grad_output: npt.ArrayLike,
        offsets: npt.ArrayLike | None = None,
        per_sample_weights: npt.ArrayLike | None = None,
    ) -> None:
        """``backward(...)`` then ``step()``."""
        self._require_trainable()
        self.backward(ids, grad_output, offsets, per_sample_weights)
        self.step()

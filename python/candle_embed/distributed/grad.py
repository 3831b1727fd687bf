"""``ShardedGrad``: the gradient of a sharded table, already split by shard and coalesced.

``backward`` returns one (and queues it for the next ``step``). Each shard's part is
``(local row ids, summed rows)`` with sorted unique local ids, so what travels to a shard is one
row per touched row, never one per lookup. It is plain data (two NumPy arrays per shard): a
Ray worker task can return it to the driver, which passes it to ``step(grads)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from candle_embed._errors import CandleEmbedTypeError, CandleEmbedValueError, typed_methods

__all__ = ["ShardedGrad", "merge"]

Piece = tuple[npt.NDArray[np.int64], npt.NDArray[Any]]


@typed_methods
class ShardedGrad:
    """Per-shard coalesced gradient rows of one sharded table."""

    def __init__(self, table_id: str, pieces: Sequence[Piece], dim: int, dtype: str) -> None:
        self._table_id = table_id
        self._pieces = list(pieces)
        self._dim = dim
        self._dtype = dtype

    @property
    def table_id(self) -> str:
        """The identity of the table this gradient belongs to."""
        return self._table_id

    @property
    def num_shards(self) -> int:
        return len(self._pieces)

    @property
    def pieces(self) -> list[Piece]:
        """Per shard: ``(local row ids (nnz_s,) int64, rows (nnz_s, dim))``."""
        return list(self._pieces)

    @property
    def nnz(self) -> int:
        """Rows present, over all shards."""
        return sum(len(ids) for ids, _ in self._pieces)

    def __repr__(self) -> str:
        per = [len(ids) for ids, _ in self._pieces]
        return f"ShardedGrad(nnz={self.nnz}, per_shard={per}, dim={self._dim})"


def merge(
    grads: Iterable[Any], table_id: str, num_shards: int, dim: int, dtype: str
) -> list[Piece]:
    """Concatenate several gradients of one table, shard by shard, in the order given (the
    shard sums duplicate rows in that order). A shard no gradient touches gets an empty part.
    Raises before anything is sent when a gradient belongs to another table."""
    parts: list[list[Piece]] = [[] for _ in range(num_shards)]
    for g in grads:
        if not isinstance(g, ShardedGrad):
            raise CandleEmbedTypeError(
                f"gradients must be ShardedGrad (from backward), got {type(g).__name__}"
            )
        if g.table_id != table_id:
            raise CandleEmbedValueError("this ShardedGrad belongs to another sharded table")
        for s, piece in enumerate(g.pieces):
            if len(piece[0]):
                parts[s].append(piece)
    out: list[Piece] = []
    for shard_parts in parts:
        if not shard_parts:
            out.append((np.empty(0, np.int64), np.empty((0, dim), dtype)))
        elif len(shard_parts) == 1:
            out.append(shard_parts[0])
        else:
            ids = np.concatenate([p[0] for p in shard_parts])
            rows = np.concatenate([p[1] for p in shard_parts])
            out.append((ids, rows))
    return out

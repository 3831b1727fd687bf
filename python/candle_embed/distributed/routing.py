"""Which shard owns which row of a row-sharded table, and under which local row id.

A table of ``num_rows`` rows is split across ``num_shards`` shards by one of two rules:

- ``"mod"``: row ``r`` lives on shard ``r % S`` as local row ``r // S`` (TorchRec's and
  PERSIA's default: hot ids spread evenly whatever their order).
- ``"range"``: contiguous blocks, the first ``num_rows % S`` shards one row longer
  (``numpy.array_split``'s split): row ``r`` lives on the shard whose block holds it, as local
  row ``r - start``. Keeps id locality (ids sorted by frequency load the first shards more).

Every shard owns at least one row (``num_shards <= num_rows``). All maps are vectorised NumPy
over int64 ids that were already validated against ``num_rows``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from candle_embed._errors import CandleEmbedValueError

__all__ = ["ROUTINGS", "Routing"]

ROUTINGS = ("mod", "range")

Ids = npt.NDArray[np.int64]


class Routing:
    """The row -> (shard, local row) map of one table."""

    def __init__(self, kind: str, num_rows: int, num_shards: int) -> None:
        if kind not in ROUTINGS:
            raise CandleEmbedValueError(f"routing must be one of {ROUTINGS}, got {kind!r}")
        if num_shards < 1 or num_shards > num_rows:
            raise CandleEmbedValueError(
                f"num_shards must be in 1..=num_embeddings ({num_rows}), got {num_shards}"
            )
        self.kind = kind
        self.num_rows = num_rows
        self.num_shards = num_shards
        base, extra = divmod(num_rows, num_shards)
        sizes = [base + (1 if s < extra else 0) for s in range(num_shards)]
        # Block starts for "range" (len S + 1, the last is num_rows).
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def rows(self, shard: int) -> int:
        """How many rows shard ``shard`` holds."""
        if self.kind == "mod":
            return (self.num_rows - shard + self.num_shards - 1) // self.num_shards
        return int(self._starts[shard + 1] - self._starts[shard])

    def owner(self, ids: Ids) -> Ids:
        """The shard of each id."""
        if self.kind == "mod":
            return ids % self.num_shards
        return np.searchsorted(self._starts, ids, side="right").astype(np.int64) - 1

    def local(self, ids: Ids, owner: Ids) -> Ids:
        """The local row of each id on its shard (``owner`` from :meth:`owner`)."""
        if self.kind == "mod":
            return ids // self.num_shards
        return ids - self._starts[owner]

    def global_ids(self, shard: int) -> Ids:
        """Every global row id shard ``shard`` holds, in local row order."""
        if self.kind == "mod":
            return np.arange(shard, self.num_rows, self.num_shards, dtype=np.int64)
        return np.arange(self._starts[shard], self._starts[shard + 1], dtype=np.int64)

    def split(self, ids: Ids) -> list[tuple[Ids, Ids]]:
        """For sorted unique ``ids``: per shard, ``(positions in ids, local rows)``.

        Both maps are monotonic in the id within a shard, so each shard's local rows come out
        sorted and unique as well (what the shards' coalesced gradients need)."""
        owner = self.owner(ids)
        local = self.local(ids, owner)
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(self.num_shards + 1))
        out = []
        for s in range(self.num_shards):
            pos = order[bounds[s] : bounds[s + 1]]
            out.append((pos, local[pos]))
        return out

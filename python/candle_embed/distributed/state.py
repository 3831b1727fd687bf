"""State dicts and checkpoints of a sharded table (the part of the driver that reads and
writes whole-table state; ``table.py`` has the rest).

``state_dict`` gathers every shard's rows and optimizer state into global-row arrays, so it
loads into a table of any shard count or routing. ``checkpoint`` makes each shard write its own
files and then writes the manifest (``checkpoint.py``: the layout and why it survives a crash at
any point); it becomes the baseline that recovery rolls back to. ``restore`` and
``load_state_dict`` change every shard or none (two-phase, see ``shard.py``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import ray

from candle_embed._errors import CandleEmbedKeyError, CandleEmbedValueError, typed_methods
from candle_embed.distributed import checkpoint as ckpt
from candle_embed.distributed.table import TableCore, get_results

__all__ = ["ShardedTable"]


@typed_methods
class ShardedTable(TableCore):
    """Common base of ``ShardedEmbedding`` and ``ShardedEmbeddingBag``."""

    # --- state ---
    def state_dict(self) -> dict[str, Any]:
        """The whole table as plain data: ``{"config", "step", "weight" (N, D), "optimizer"
        (None or the optimizer's state_dict with every row array over global rows)}``. Loads
        into a table of any number of shards or routing."""
        states = self._with_recovery(lambda: get_results([s.state.remote() for s in self._shards]))
        opt = None
        if states[0]["optimizer"] is not None:
            first = states[0]["optimizer"]
            names = list(first["state"][0])
            glued = {
                n: self._assemble([st["optimizer"]["state"][0][n] for st in states]) for n in names
            }
            opt = {"kind": first["kind"], "step": list(first["step"]), "state": [glued]}
        return {
            "config": dict(self._config),
            "step": int(states[0]["step"]),
            "weight": self._assemble([st["weight"] for st in states]),
            "optimizer": opt,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a ``state_dict`` (checked here, then applied to every shard or to none)."""
        with self._lock:
            self._require_owner("load_state_dict")
            missing = [k for k in ("weight", "step", "optimizer") if k not in state]
            if missing:
                raise CandleEmbedKeyError(f"state dict lacks {missing}")
            weight = np.asarray(state["weight"])
            want = (self.num_embeddings, self.embedding_dim)
            if weight.shape != want:
                raise CandleEmbedValueError(f"weight has shape {weight.shape}, expected {want}")
            opt = state.get("optimizer")
            if (opt is None) != (self.optimizer is None) or (
                opt is not None and opt.get("kind") != self.optimizer
            ):
                got = None if opt is None else opt.get("kind")
                raise CandleEmbedValueError(
                    f"state has optimizer {got!r}, this table has {self.optimizer!r}"
                )
            if opt is not None:
                for name, value in opt["state"][0].items():
                    if np.shape(value)[:1] != (self.num_embeddings,):
                        raise CandleEmbedValueError(
                            f"optimizer state {name!r} has shape {np.shape(value)}, expected "
                            f"{self.num_embeddings} rows"
                        )
            per_shard = []
            for s in range(self.num_shards):
                shard_opt = None
                if opt is not None:
                    rows = {
                        n: self._split_rows(np.asarray(a), s) for n, a in opt["state"][0].items()
                    }
                    shard_opt = {"kind": opt["kind"], "step": opt["step"], "state": [rows]}
                part = {
                    "weight": self._split_rows(weight, s),
                    "optimizer": shard_opt,
                    "step": int(state["step"]),
                }
                per_shard.append(ray.put(part))
            self._rebase(("state", per_shard, int(state["step"])))

    def checkpoint(self, directory: str | os.PathLike[str]) -> str:
        """Write every shard's table and optimizer state, then the manifest (last, atomically).
        ``directory`` must be visible at the same path from every node. Returns its path."""
        with self._lock:
            self._require_owner("checkpoint")
            path = os.path.abspath(os.fspath(directory))
            os.makedirs(path, exist_ok=True)
            step = self._step
            self._with_recovery(
                lambda: get_results([s.save.remote(path, step) for s in self._shards])
            )
            ckpt.write_manifest(path, {**self._config, "kind": type(self).__name__, "step": step})
            self._baseline, self._log = ("checkpoint", path, step), []
            try:  # older steps' files are garbage now; a failure here loses nothing
                ray.get([s.prune.remote(path, step) for s in self._shards])
            except Exception:  # noqa: BLE001
                pass
            return path

    def restore(self, directory: str | os.PathLike[str]) -> int:
        """Roll every shard back to the checkpoint in ``directory`` (all or none); returns its
        step. The table must have the checkpoint's configuration (sizes, shards, routing,
        dtype, padding_idx, optimizer); the optimizer's hyperparameters are this table's."""
        with self._lock:
            self._require_owner("restore")
            path = os.path.abspath(os.fspath(directory))
            manifest = ckpt.read_manifest(path)
            keys = [
                "num_embeddings",
                "embedding_dim",
                "num_shards",
                "routing",
                "dtype",
                "padding_idx",
                "optimizer",
            ]
            diff = {
                k: (manifest.get(k), self._config[k])
                for k in keys
                if manifest.get(k) != self._config[k]
            }
            if diff:
                raise CandleEmbedValueError(
                    f"checkpoint in {path} does not match this table (saved, here): {diff}"
                )
            step = int(manifest["step"])
            self._rebase(("checkpoint", path, step))
            return step

"""One shard of a row-sharded table: the Ray actor that owns a block of rows.

A shard holds a plain ``candle_embed.Embedding`` with its rows (local row ids, see
``routing.py``) and, when the table trains, one ``candle_embed.optim`` optimizer over it. It
answers lookups of local rows, applies coalesced gradients one step at a time, and writes or
reads its own checkpoint files. It uses only candle_embed's public Python API.

Rolling back (to the initial table, a checkpoint or a state dict) is two-phase so that a table
of many shards changes all together or not at all: ``stage_*`` builds the new table and
optimizer beside the live ones (and fails without touching them), ``commit`` swaps them in,
``discard`` drops them.

When Ray restarts a shard after a crash it re-runs ``__init__``; the shard then knows it lost
its state (``was_current_actor_reconstructed``) and refuses every call that reads or changes
rows with :class:`ShardRestartedError` until the driver rolls it back. Without that, a lookup
that happened to reach a freshly restarted shard would silently read its initial rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import ray

import candle_embed as ce
from candle_embed import optim
from candle_embed._errors import CandleEmbedError, CandleEmbedValueError
from candle_embed.distributed import checkpoint as ckpt
from candle_embed.distributed.routing import Routing

__all__ = ["ShardActor", "ShardRestartedError", "ShardSpec", "make_optimizer", "shard_spec"]


class ShardRestartedError(CandleEmbedError, RuntimeError):
    """A shard was restarted by Ray and has not been rolled back yet (its rows are gone)."""


@dataclass(frozen=True)
class ShardSpec:
    """What a shard needs to build its initial table (everything but pretrained rows)."""

    index: int
    num_shards: int
    rows: int
    dim: int
    dtype: str
    padding_idx: int | None  # local row id, on the one shard that owns the padding row
    seed: int | None  # None: the rows come from a pretrained table
    optimizer: str | None
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)


def shard_spec(config: dict[str, Any], routing: Routing, shard: int, seed: int | None) -> ShardSpec:
    """Shard ``shard``'s spec for a table ``config``; ``seed`` is the table's (None:
    pretrained rows). Each shard draws its rows from its own seed, a function of both."""
    pad = config["padding_idx"]
    local_pad = None
    if pad is not None:
        p = np.array([pad], dtype=np.int64)
        owner = routing.owner(p)
        if int(owner[0]) == shard:
            local_pad = int(routing.local(p, owner)[0])
    shard_seed = None
    if seed is not None:
        a, b = np.random.SeedSequence([seed, shard]).generate_state(2, dtype=np.uint32)
        shard_seed = (int(a) << 31) ^ int(b)  # 63 bits
    return ShardSpec(
        index=shard,
        num_shards=config["num_shards"],
        rows=routing.rows(shard),
        dim=config["embedding_dim"],
        dtype=config["dtype"],
        padding_idx=local_pad,
        seed=shard_seed,
        optimizer=config["optimizer"],
        optimizer_kwargs=config["optimizer_kwargs"],
    )


def make_optimizer(
    name: str | None, kwargs: dict[str, Any], table: ce.Embedding
) -> optim.SparseOptimizer | None:
    """``candle_embed.optim.<name>(table, **kwargs)``, or None without an optimizer."""
    if name is None:
        return None
    cls = getattr(optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, optim.SparseOptimizer)) or (
        cls is optim.SparseOptimizer
    ):
        known = [n for n in optim.__all__ if n != "SparseOptimizer"]
        raise CandleEmbedValueError(f"optimizer must be one of {known}, got {name!r}")
    made: optim.SparseOptimizer = cls(table, **kwargs)
    return made


class _Live:
    """A table, its optimizer and the number of steps applied to them."""

    def __init__(self, table: ce.Embedding, opt: optim.SparseOptimizer | None, step: int):
        self.table = table
        self.opt = opt
        self.step = step


class ShardActor:
    """The shard's state and methods (``ray.remote`` wraps this class; see ``table.py``)."""

    def __init__(self, spec: ShardSpec, initial: list[Any] | None) -> None:
        # ``initial`` is ``[ObjectRef]`` of the pretrained rows (a list, so that Ray passes
        # the reference instead of resolving it: a reset fetches the rows again).
        self._spec = spec
        self._initial = initial
        self._staged: _Live | None = None
        self._live: _Live | None = None
        if not ray.get_runtime_context().was_current_actor_reconstructed:
            self._live = self._fresh()

    # --- building ---
    def _fresh(self) -> _Live:
        s = self._spec
        if self._initial is None:
            table = ce.Embedding(
                s.rows, s.dim, padding_idx=s.padding_idx, dtype=s.dtype, seed=s.seed
            )
        else:
            rows = ray.get(self._initial[0])
            table = ce.Embedding.from_pretrained(rows, freeze=False, padding_idx=s.padding_idx)
        return _Live(table, make_optimizer(s.optimizer, s.optimizer_kwargs, table), 0)

    def _check_table(self, table: ce.Embedding, what: str) -> None:
        s = self._spec
        got = (table.num_embeddings, table.embedding_dim, table.dtype, table.padding_idx)
        want = (s.rows, s.dim, s.dtype, s.padding_idx)
        if got != want:
            raise CandleEmbedValueError(
                f"{what}: shard {s.index} holds (rows, dim, dtype, padding_idx) = {got}, "
                f"this table expects {want}"
            )

    def _ready(self) -> _Live:
        if self._live is None:
            raise ShardRestartedError(
                f"shard {self._spec.index} was restarted and has not been rolled back"
            )
        return self._live

    # --- serving ---
    def ping(self) -> dict[str, Any]:
        """Liveness and position: ``{"index", "step", "restarted", "pid"}``."""
        live = self._live
        return {
            "index": self._spec.index,
            "step": None if live is None else live.step,
            "restarted": live is None,
            "pid": os.getpid(),
        }

    def lookup(self, local_ids: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        """Rows at ``local_ids`` (validated by the driver)."""
        return self._ready().table(local_ids)

    def apply(self, step: int, piece: tuple[npt.NDArray[np.int64], npt.NDArray[Any]]) -> int:
        """Apply step number ``step``: the gradient rows ``piece = (local ids, rows)`` (sorted
        unique ids, possibly none) summed into a coalesced gradient, then one optimizer step.

        Every shard steps on every table step, with an empty gradient when none of its rows
        was touched: step counts (SparseAdam's bias correction, Adagrad's lr decay) then match
        those of one unsharded table."""
        live = self._ready()
        if live.opt is None:
            raise CandleEmbedValueError("this table has no optimizer (optimizer=None)")
        if step != live.step:
            raise CandleEmbedValueError(
                f"shard {self._spec.index} is at step {live.step}, asked to apply step {step}"
            )
        ids, rows = piece
        live.opt.step(live.table.backward(ids, rows))
        live.step += 1
        return live.step

    def weight(self) -> npt.NDArray[Any]:
        """A copy of the shard's rows, ``(rows, dim)``."""
        return self._ready().table.weight

    def state(self) -> dict[str, Any]:
        """``{"weight", "optimizer" (state_dict or None), "step"}``."""
        live = self._ready()
        opt = None if live.opt is None else live.opt.state_dict()
        return {"weight": live.table.weight, "optimizer": opt, "step": live.step}

    # --- checkpoints ---
    def save(self, directory: str, step: int) -> list[str]:
        """Write this shard's table and optimizer state for ``step`` (each file atomically)."""
        live = self._ready()
        if step != live.step:
            raise CandleEmbedValueError(
                f"shard {self._spec.index} is at step {live.step}, asked to save step {step}"
            )
        table_path, opt_path = ckpt.shard_files(
            directory, self._spec.index, self._spec.num_shards, step
        )
        live.table.save(table_path)
        ckpt.save_optimizer_state(opt_path, None if live.opt is None else live.opt.state_dict())
        return [table_path, opt_path]

    def prune(self, directory: str, keep_step: int) -> None:
        """Delete this shard's checkpoint files of other steps."""
        ckpt.remove_other_steps(directory, self._spec.index, self._spec.num_shards, keep_step)

    # --- two-phase roll back ---
    def stage_reset(self) -> None:
        """Stage the initial table (the constructor's seed or pretrained rows), step 0."""
        self._staged = self._fresh()

    def stage_checkpoint(self, directory: str, step: int) -> None:
        """Stage the table and optimizer state saved by :meth:`save` for ``step``."""
        table_path, opt_path = ckpt.shard_files(
            directory, self._spec.index, self._spec.num_shards, step
        )
        table = ce.Embedding.load(table_path)
        self._check_table(table, table_path)
        self._staged = self._with_state(table, ckpt.load_optimizer_state(opt_path), step)

    def stage_state(self, state: dict[str, Any]) -> None:
        """Stage ``{"weight", "optimizer", "step"}`` (this shard's part of a state dict)."""
        table = self._fresh_like(np.asarray(state["weight"]))
        self._staged = self._with_state(table, state["optimizer"], int(state["step"]))

    def _fresh_like(self, weight: npt.NDArray[Any]) -> ce.Embedding:
        s = self._spec
        table = ce.Embedding.from_pretrained(
            weight.astype(s.dtype, copy=False), freeze=False, padding_idx=s.padding_idx
        )
        self._check_table(table, "state dict")
        return table

    def _with_state(
        self, table: ce.Embedding, opt_state: dict[str, Any] | None, step: int
    ) -> _Live:
        s = self._spec
        opt = make_optimizer(s.optimizer, s.optimizer_kwargs, table)
        if (opt is None) != (opt_state is None):
            have = "no optimizer" if opt is None else f"optimizer {s.optimizer}"
            raise CandleEmbedValueError(
                f"shard {s.index}: the saved state {'has' if opt is None else 'lacks'} "
                f"optimizer state but this table has {have}"
            )
        if opt is not None and opt_state is not None:
            opt.load_state_dict(opt_state)
        return _Live(table, opt, step)

    def commit(self) -> int:
        """Make the staged state live; returns its step."""
        if self._staged is None:
            raise CandleEmbedValueError(f"shard {self._spec.index}: nothing staged")
        self._live, self._staged = self._staged, None
        return self._live.step

    def discard(self) -> None:
        """Drop a staged state (the roll back was abandoned)."""
        self._staged = None

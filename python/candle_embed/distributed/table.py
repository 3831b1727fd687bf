"""The driver side of a row-sharded table: shard actors, routing, steps, checkpoints, recovery.

``TableCore`` (with ``state.ShardedTable`` on top: state dicts and checkpoints) is the common
base of ``ShardedEmbedding`` and ``ShardedEmbeddingBag``. It
owns ``num_shards`` Ray actors (``shard.ShardActor``), each holding the rows that the routing
(``routing.py``) gives it, and keeps what recovery needs:

- ``step``: the number of optimizer steps applied to the table;
- the *baseline*: the last state every shard can be rolled back to (the initial table, the last
  checkpoint, or the last ``load_state_dict``), and
- the *replay log*: each step's per-shard gradient since the baseline, as objects put in Ray's
  object store by this process (so they outlive any shard actor).

Fault tolerance: shard actors are created with ``max_restarts``, so Ray restarts a shard that
dies. The next call that reaches it fails (``RayActorError`` while it restarts,
``ShardRestartedError`` once it is back without its rows); the table then waits until every
shard answers, rolls *every* shard back to the baseline (two-phase: all or none), replays the
logged steps in order and retries the call. Each step is a deterministic function of the state
before it and its logged gradient, so the finished run is bit-identical to one that never
failed. Memory: the log holds every step since the baseline; call ``checkpoint`` regularly.

Only the process that created the table (the driver) steps, checkpoints, restores and
recovers. Copies sent to Ray tasks (pickled) look rows up and compute gradients; their
``backward`` result goes back to the driver's ``step(grads)``.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import ray
from ray.exceptions import RayActorError

import candle_embed as ce
from candle_embed._errors import CandleEmbedError, CandleEmbedValueError, typed_methods
from candle_embed.distributed.grad import ShardedGrad, merge
from candle_embed.distributed.routing import Routing
from candle_embed.distributed.shard import (
    ShardActor,
    ShardRestartedError,
    make_optimizer,
    shard_spec,
)

__all__ = ["DEFAULT_ACTOR_OPTIONS", "ShardUnavailableError", "TableCore"]

T = TypeVar("T")

# Shards need no CPU reservation of their own (a lookup is a memory copy) and spread over the
# nodes; Ray restarts a crashed shard, the table rolls it back.
DEFAULT_ACTOR_OPTIONS: dict[str, Any] = {
    "num_cpus": 0,
    "max_restarts": -1,
    "scheduling_strategy": "SPREAD",
}

# Typed as Any: Ray types actor method handles as the plain methods (no ``.remote``).
_ShardRemote: Any = ray.remote(ShardActor)


class ShardUnavailableError(CandleEmbedError, RuntimeError):
    """A shard did not come back (Ray gave up restarting it, or the recovery timed out), or a
    copy of the table in a worker met a restarted shard (only the driver recovers)."""


class _ShardDown(Exception):
    """Internal: some shard is dead, restarting, or restarted without its rows."""


def get_results(refs: Sequence[Any]) -> list[Any]:
    """``ray.get`` where a dead or restarted shard becomes ``_ShardDown``."""
    try:
        return list(ray.get(list(refs)))
    except (RayActorError, ShardRestartedError) as e:
        raise _ShardDown(str(e)) from e


def shared_options(
    optimizer: str | None,
    optimizer_kwargs: dict[str, Any] | None,
    padding_idx: int | None,
    routing: str,
    actor_options: dict[str, Any] | None,
) -> dict[str, Any]:
    """The options ``__init__`` and ``from_pretrained`` share, by the names ``_setup`` reads."""
    return {
        "optimizer": optimizer,
        "optimizer_kwargs": optimizer_kwargs,
        "padding_idx": padding_idx,
        "routing": routing,
        "actor_options": actor_options,
    }


@typed_methods
class TableCore:
    """Shards, routing, lookups, steps and recovery (``state.ShardedTable`` adds state dicts
    and checkpoints)."""

    recovery_timeout_s = 120.0
    """How long a recovery waits for restarted shards before ShardUnavailableError."""
    max_recoveries = 3
    """How many recoveries one call may go through before it gives up."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        num_shards: int,
        *,
        optimizer: str | None = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        padding_idx: int | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        routing: str = "mod",
        actor_options: dict[str, Any] | None = None,
    ) -> None:
        options = shared_options(optimizer, optimizer_kwargs, padding_idx, routing, actor_options)
        self._setup(
            num_embeddings, embedding_dim, num_shards, seed, {**options, "dtype": dtype}, None
        )

    @classmethod
    def _from_rows(
        cls: type[T],
        weight: Any,
        num_shards: int,
        options: dict[str, Any],
    ) -> T:
        # Validate the rows exactly as a local table would, without copying them: a zero-row
        # view goes through Embedding.from_pretrained (dimension, dtype).
        w = np.asarray(weight)
        probe = ce.Embedding.from_pretrained(w[:0] if w.ndim else w)
        w = np.ascontiguousarray(w, dtype=probe.dtype)
        table = cls.__new__(cls)
        assert isinstance(table, TableCore)
        table._setup(w.shape[0], w.shape[1], num_shards, 0, {**options, "dtype": probe.dtype}, w)
        return table

    # --- construction ---
    def _setup(
        self,
        num_embeddings: int,
        embedding_dim: int,
        num_shards: int,
        seed: int | None,
        options: dict[str, Any],
        pretrained: npt.NDArray[Any] | None,
    ) -> None:
        """Validate and build. ``options``: optimizer, optimizer_kwargs, padding_idx, dtype,
        routing, actor_options (absent: the defaults)."""
        optimizer = options.get("optimizer")
        padding_idx = options.get("padding_idx")
        dtype = options.get("dtype", "float32")
        routing = options.get("routing", "mod")
        # Every check runs here, on the driver, through local candle_embed calls, before any
        # actor exists: a zero-width local table checks the sizes, padding_idx and dtype with
        # the local rules and messages, and a one-row table checks the optimizer arguments.
        validator = ce.Embedding(num_embeddings, 0, padding_idx=padding_idx, dtype=dtype)
        probe = ce.Embedding(1, embedding_dim, dtype=dtype)
        if dtype == "bfloat16":
            raise CandleEmbedValueError(
                "dtype bfloat16 is not available for sharded tables (rows travel as NumPy "
                "arrays, which have no bfloat16); use float32"
            )
        kwargs = dict(options.get("optimizer_kwargs") or {})
        make_optimizer(optimizer, kwargs, probe)
        if not isinstance(num_shards, int) or isinstance(num_shards, bool):
            raise ce.CandleEmbedTypeError(f"num_shards must be an int, got {num_shards!r}")
        self._routing = Routing(routing, num_embeddings, num_shards)
        if seed is None:
            seed = secrets.randbits(63)  # drawn here, so that a restarted shard redraws it
        ce.Embedding(1, 0, seed=seed)  # the local rules for a seed
        self._config: dict[str, Any] = {
            "num_embeddings": num_embeddings,
            "embedding_dim": embedding_dim,
            "num_shards": num_shards,
            "routing": routing,
            "dtype": validator.dtype,
            "padding_idx": validator.padding_idx,
            "optimizer": optimizer,
            "optimizer_kwargs": kwargs,
        }
        self._table_id = uuid.uuid4().hex
        self._validator = validator
        actor = {**DEFAULT_ACTOR_OPTIONS, **(options.get("actor_options") or {})}
        actor["max_task_retries"] = 0  # a retry on a restarted shard would read lost rows
        # The pretrained rows stay referenced here: a restarted shard fetches them again.
        self._initial_rows = (
            []
            if pretrained is None
            else [ray.put(self._split_rows(pretrained, s)) for s in range(num_shards)]
        )
        self._shards: list[Any] = [
            _ShardRemote.options(**actor).remote(
                shard_spec(
                    self._config, self._routing, s, None if pretrained is not None else seed
                ),
                [self._initial_rows[s]] if self._initial_rows else None,
            )
            for s in range(num_shards)
        ]
        self._init_driver_state()
        # Wait until every shard has built its table (errors surface here, not later).
        self._with_recovery(lambda: get_results([s.ping.remote() for s in self._shards]))

    def _init_driver_state(self) -> None:
        self._owner = True
        self._lock = threading.RLock()
        self._step = 0
        self._baseline: tuple[str, Any, int] = ("initial", None, 0)
        self._log: list[list[Any]] = []
        self._pending: list[ShardedGrad] = []
        self._recoveries = 0

    # --- pickling: copies for Ray tasks look up and compute gradients, nothing else ---
    def __getstate__(self) -> dict[str, Any]:
        return {
            "config": self._config,
            "table_id": self._table_id,
            "shards": self._shards,
            "extra": self._extra_state(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        c = state["config"]
        self._config = c
        self._table_id = state["table_id"]
        self._shards = state["shards"]
        self._routing = Routing(c["routing"], c["num_embeddings"], c["num_shards"])
        self._validator = ce.Embedding(
            c["num_embeddings"], 0, padding_idx=c["padding_idx"], dtype=c["dtype"]
        )
        self._init_driver_state()
        self._owner = False
        self._restore_extra_state(state["extra"])

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _restore_extra_state(self, extra: dict[str, Any]) -> None:
        pass

    # --- properties ---
    @property
    def num_embeddings(self) -> int:
        return int(self._config["num_embeddings"])

    @property
    def embedding_dim(self) -> int:
        return int(self._config["embedding_dim"])

    @property
    def num_shards(self) -> int:
        return int(self._config["num_shards"])

    @property
    def routing(self) -> str:
        return str(self._config["routing"])

    @property
    def padding_idx(self) -> int | None:
        pad = self._config["padding_idx"]
        return None if pad is None else int(pad)

    @property
    def dtype(self) -> str:
        return str(self._config["dtype"])

    @property
    def optimizer(self) -> str | None:
        """The optimizer's name in ``candle_embed.optim`` (None: the table does not train)."""
        name = self._config["optimizer"]
        return None if name is None else str(name)

    @property
    def step_count(self) -> int:
        """Optimizer steps applied so far (restored with checkpoints and state dicts)."""
        return self._step

    @property
    def recoveries(self) -> int:
        """How many times this table rolled its shards back and replayed (after failures)."""
        return self._recoveries

    @property
    def shards(self) -> list[Any]:
        """The shard actors' handles, shard ``s`` holding the rows the routing gives it."""
        return list(self._shards)

    # --- rows ---
    def _id_array(self, ids: Any) -> npt.NDArray[Any]:
        """``ids`` (any array-like the local table takes: NumPy, buffer protocol,
        ``__array_interface__``, DLPack) as a NumPy array; call it after the local checks
        passed. What NumPy cannot convert is refused by the local table (its error)."""
        try:
            if hasattr(ids, "__dlpack__") and not isinstance(ids, np.ndarray):
                return np.from_dlpack(ids)
            return np.asarray(ids)
        except (TypeError, ValueError, BufferError, RuntimeError):
            self._validator(ids)
            raise

    def _rows(self, unique_ids: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        """Rows of sorted unique validated global ids, ``(len(ids), dim)``, fetched from the
        shards in parallel and scattered back in order."""
        parts = self._routing.split(unique_ids)

        def fetch() -> npt.NDArray[Any]:
            asked = [
                (pos, self._shards[s].lookup.remote(local))
                for s, (pos, local) in enumerate(parts)
                if len(pos)
            ]
            out = np.empty((len(unique_ids), self.embedding_dim), dtype=self.dtype)
            for (pos, _), rows in zip(asked, get_results([ref for _, ref in asked])):
                out[pos] = rows
            return out

        return self._with_recovery(fetch)

    def _split_rows(self, table: npt.NDArray[Any], shard: int) -> npt.NDArray[Any]:
        return np.ascontiguousarray(table[self._routing.global_ids(shard)])

    def _assemble(self, parts: Sequence[npt.NDArray[Any]]) -> npt.NDArray[Any]:
        """Per-shard arrays (first axis: local rows) -> one array over global rows."""
        first = parts[0]
        out = np.empty((self.num_embeddings,) + first.shape[1:], dtype=first.dtype)
        for s, part in enumerate(parts):
            out[self._routing.global_ids(s)] = part
        return out

    def gather_weight(self) -> npt.NDArray[Any]:
        """The whole table, ``(num_embeddings, embedding_dim)`` (small tables and tests)."""
        return self._assemble(
            self._with_recovery(lambda: get_results([s.weight.remote() for s in self._shards]))
        )

    def _sharded_grad(
        self, global_ids: npt.NDArray[np.int64], values: npt.NDArray[Any]
    ) -> ShardedGrad:
        """A coalesced gradient over sorted unique global ids, split by shard and queued."""
        pieces = [
            (local, np.ascontiguousarray(values[pos]))
            for pos, local in self._routing.split(global_ids)
        ]
        grad = ShardedGrad(self._table_id, pieces, self.embedding_dim, self.dtype)
        with self._lock:
            self._pending.append(grad)
        return grad

    # --- training ---
    def zero_grad(self) -> None:
        """Drop the gradients queued by ``backward`` since the last ``step``."""
        with self._lock:
            self._pending.clear()

    def step(self, grads: ShardedGrad | Sequence[ShardedGrad] | None = None) -> None:
        """One optimizer step on every shard with the gradients queued by ``backward`` since
        the last step, followed by ``grads`` (e.g. returned by worker tasks), summed row by row
        in that order. Every shard steps, touched or not (step counts stay those of one
        table). Bad ``grads`` raise before anything is sent."""
        with self._lock:
            self._require_trainable()
            extra = [] if grads is None else [grads] if isinstance(grads, ShardedGrad) else grads
            pieces = merge(
                [*self._pending, *extra],
                self._table_id,
                self.num_shards,
                self.embedding_dim,
                self.dtype,
            )
            refs = [ray.put(p) for p in pieces]
            step = self._step
            self._mutate(
                lambda: get_results(
                    [s.apply.remote(step, refs[i]) for i, s in enumerate(self._shards)]
                )
            )
            self._log.append(refs)
            self._step += 1
            self._pending.clear()

    # --- recovery ---
    def _require_trainable(self) -> None:
        self._require_owner("step")
        if self.optimizer is None:
            raise CandleEmbedValueError("this table has no optimizer (optimizer=None)")

    def _require_owner(self, what: str) -> None:
        if not self._owner:
            raise CandleEmbedValueError(
                f"{what}() runs only in the process that created the table; copies in Ray "
                "tasks look rows up and compute gradients (return them to the driver's step)"
            )

    def _rebase(self, baseline: tuple[str, Any, int]) -> None:
        """Roll every shard to ``baseline`` and make it the new baseline (empty log)."""
        self._with_recovery(lambda: self._roll_back(baseline))
        self._baseline, self._log, self._step = baseline, [], baseline[2]
        self._pending.clear()

    def _roll_back(self, baseline: tuple[str, Any, int]) -> None:
        kind, arg, step = baseline
        if kind == "initial":
            staged = [s.stage_reset.remote() for s in self._shards]
        elif kind == "checkpoint":
            staged = [s.stage_checkpoint.remote(arg, step) for s in self._shards]
        else:
            staged = [s.stage_state.remote(arg[i]) for i, s in enumerate(self._shards)]
        try:
            get_results(staged)
        except BaseException:
            ray.wait([s.discard.remote() for s in self._shards], num_returns=len(self._shards))
            raise
        get_results([s.commit.remote() for s in self._shards])

    def _with_recovery(self, call: Callable[[], T]) -> T:
        """Run ``call``; when a shard is down, recover (driver only) and run it again."""
        for _ in range(self.max_recoveries + 1):
            try:
                return call()
            except _ShardDown as e:
                if not self._owner:
                    raise ShardUnavailableError(
                        f"a shard is down or was restarted ({e}); the driver recovers it"
                    ) from None
                self.recover()
        raise ShardUnavailableError(f"shards kept failing after {self.max_recoveries} recoveries")

    def _mutate(self, call: Callable[[], T]) -> T:
        """Like ``_with_recovery`` for calls that change rows: any other failure may have
        changed some shards and not others, so it is followed by a recovery before it is
        raised (the table is then exactly as before the call)."""
        try:
            return self._with_recovery(call)
        except ShardUnavailableError:
            raise
        except Exception:
            self.recover()
            raise

    def recover(self) -> None:
        """Wait until every shard answers, roll every shard back to the baseline (last
        checkpoint, last ``load_state_dict`` or the initial table) and replay the logged steps.
        Runs by itself when a call meets a failed shard; call it after a worker task raised
        ``ShardUnavailableError``."""
        with self._lock:
            self._require_owner("recover")
            deadline = time.monotonic() + self.recovery_timeout_s
            while True:
                try:
                    self._wait_alive(deadline)
                    self._roll_back(self._baseline)
                    base = self._baseline[2]
                    for k, refs in enumerate(self._log):
                        get_results(
                            [s.apply.remote(base + k, refs[i]) for i, s in enumerate(self._shards)]
                        )
                    self._step = base + len(self._log)
                    self._recoveries += 1
                    return
                except _ShardDown:
                    if time.monotonic() > deadline:
                        raise ShardUnavailableError(
                            f"shards did not come back within {self.recovery_timeout_s} s"
                        ) from None

    def _wait_alive(self, deadline: float) -> None:
        while True:
            try:
                left = max(deadline - time.monotonic(), 0.1)
                ray.get([s.ping.remote() for s in self._shards], timeout=left)
                return
            except (RayActorError, ray.exceptions.GetTimeoutError) as e:
                if time.monotonic() > deadline:
                    raise ShardUnavailableError(f"a shard did not come back: {e}") from None
                time.sleep(0.05)

    def close(self) -> None:
        """Stop the shard actors (their rows are gone; checkpoint first to keep them)."""
        for s in self._shards:
            ray.kill(s, no_restart=True)

    def __repr__(self) -> str:
        c = self._config
        return (
            f"{type(self).__name__}({c['num_embeddings']}, {c['embedding_dim']}, "
            f"num_shards={c['num_shards']}, routing={c['routing']!r}, dtype={c['dtype']!r}, "
            f"optimizer={c['optimizer']!r})"
        )

"""Fault tolerance on a real local Ray cluster: shard actors killed with ``ray.kill`` (Ray
restarts them) before a checkpoint, before a lookup, between ``backward`` and ``step`` and while
idle; the finished run equals one local table that never failed, bit for bit, for every
optimizer. A shard that never comes back, and a worker copy that meets a restarted shard, raise
``ShardUnavailableError``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from candle_embed.distributed import ShardedEmbedding, ShardUnavailableError
from distributed_support import OPTIMIZERS, LocalTwin, assert_same_state, batches, ray, train_both

pytestmark = pytest.mark.usefixtures("ray_cluster")

RNG = np.random.default_rng(1616)
ROWS, DIM, SHARDS = 48, 4, 3


def kill(table: ShardedEmbedding, shard: int) -> int:
    """Kill one shard's process the way a crash would; Ray restarts it. Returns its pid."""
    pid = ray.get(table.shards[shard].ping.remote())["pid"]
    ray.kill(table.shards[shard], no_restart=False)
    return int(pid)


def wait_restarted(table: ShardedEmbedding, shard: int, old_pid: int) -> None:
    """Poll the actor directly (not through the table) until Ray has restarted it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            info = ray.get(table.shards[shard].ping.remote(), timeout=5)
            if info["pid"] != old_pid:
                assert info["restarted"]  # back without its rows
                return
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError("Ray did not restart the shard")


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS)
def test_killed_shards_finish_bit_identical(
    name: str, kwargs: dict[str, Any], tmp_path: Path
) -> None:
    weight = RNG.standard_normal((ROWS, DIM)).astype(np.float32)
    table = ShardedEmbedding.from_pretrained(
        weight, SHARDS, optimizer=name, optimizer_kwargs=kwargs, padding_idx=1
    )
    twin = LocalTwin(weight, name, kwargs, pad=1)
    try:
        for k, (ids, grad) in enumerate(batches(21, 9, ROWS, DIM)):
            if k == 3:
                kill(table, 0)  # the checkpoint meets it: roll back to the initial table
                table.checkpoint(tmp_path)
            if k == 5:
                kill(table, 1)  # the lookup meets it: roll back to the checkpoint
            np.testing.assert_array_equal(table(ids), twin.table(ids))
            table.backward(ids, grad)
            if k == 7:
                kill(table, 2)  # between backward and step: the queued gradient survives
            table.step()
            twin.step(ids, grad)
        assert table.recoveries == 3 and table.step_count == 9
        assert_same_state(table, twin)
    finally:
        table.close()


def test_restarted_idle_shard_is_never_read_stale() -> None:
    """A shard that died and came back between calls holds its initial rows; the next call must
    notice (the shard refuses until rolled back) instead of reading them."""
    weight = RNG.standard_normal((ROWS, DIM)).astype(np.float32)
    kw = {"lr": 0.5}
    table = ShardedEmbedding.from_pretrained(weight, SHARDS, optimizer="SGD", optimizer_kwargs=kw)
    twin = LocalTwin(weight, "SGD", kw)
    try:
        data = batches(22, 4, ROWS, DIM)
        train_both(table, twin, data)
        wait_restarted(table, 2, kill(table, 2))
        assert table.recoveries == 0
        every = np.arange(ROWS)
        np.testing.assert_array_equal(table(every), twin.table(every))
        assert table.recoveries == 1
        assert_same_state(table, twin)
    finally:
        table.close()


@ray.remote(num_cpus=0)
def _lookup(table: ShardedEmbedding, ids: np.ndarray) -> np.ndarray:
    out: np.ndarray = table(ids)
    return out


def test_worker_copy_meets_restarted_shard_and_driver_recovers() -> None:
    weight = RNG.standard_normal((ROWS, DIM)).astype(np.float32)
    table = ShardedEmbedding.from_pretrained(
        weight, SHARDS, optimizer="Adagrad", optimizer_kwargs={"lr": 0.1}
    )
    twin = LocalTwin(weight, "Adagrad", {"lr": 0.1})
    try:
        ids, grad = batches(23, 1, ROWS, DIM)[0]
        table.apply_gradients(ids, grad)
        twin.step(ids, grad)
        wait_restarted(table, 0, kill(table, 0))
        every = np.arange(ROWS)
        with pytest.raises(ShardUnavailableError, match="driver recovers"):
            ray.get(_lookup.remote(table, every))
        table.recover()
        np.testing.assert_array_equal(ray.get(_lookup.remote(table, every)), twin.table.weight)
    finally:
        table.close()


def test_shard_gone_for_good_raises_unavailable() -> None:
    table = ShardedEmbedding(ROWS, DIM, 2, seed=3, actor_options={"max_restarts": 0})
    table.recovery_timeout_s = 2.0
    try:
        ray.kill(table.shards[1], no_restart=True)
        with pytest.raises(ShardUnavailableError):
            table(np.arange(ROWS))
    finally:
        table.close()

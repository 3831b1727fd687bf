"""Shared pieces of the ``test_distributed*`` modules: one loopback-only local Ray cluster per
test session, the optimizers every parity test runs, and the local reference trainer.

The reference for a sharded table is one local table (``candle_embed.Embedding`` and its
optimizer, tested on its own against float64 NumPy formulas in test_sparse.py) fed the same
initial rows and the same batches: the sharded table must match it bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import candle_embed as ce
import numpy as np
import pytest

# Before Ray starts (and before anything imports it): no usage report from the driver or from
# any worker it spawns (they inherit the environment), loopback only (see cluster.py).
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

ray = pytest.importorskip("ray")

from candle_embed.distributed import init_local_cluster  # noqa: E402

# (name, kwargs): every sparse optimizer, with its optional features switched on where that
# makes the update depend on more state (momentum, weight decay, lr decay).
OPTIMIZERS: list[Any] = [
    pytest.param("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}, id="SGD"),
    pytest.param("Adagrad", {"lr": 0.1, "lr_decay": 0.01}, id="Adagrad"),
    pytest.param("RowWiseAdagrad", {"lr": 0.1}, id="RowWiseAdagrad"),
    pytest.param("SparseAdam", {"lr": 0.01}, id="SparseAdam"),
    pytest.param(
        "AdamW",
        {"lr": 0.01, "weight_decay": 0.1},
        id="AdamW",
        marks=pytest.mark.skipif(not hasattr(ce.optim, "AdamW"), reason="no optim.AdamW yet"),
    ),
]


def local_cluster() -> Iterator[None]:
    """A 2-CPU local cluster bound to 127.0.0.1, dashboard off; shard actors take no CPU, so
    8 shards fit. Behind conftest.py's session fixture ``ray_cluster``: started once."""
    if not ray.is_initialized():
        init_local_cluster(num_cpus=2)
    yield
    if ray.is_initialized():
        ray.shutdown()


class LocalTwin:
    """One local table and optimizer: what a sharded table must equal after every step."""

    def __init__(self, weight: np.ndarray, name: str, kwargs: dict[str, Any], pad: Any = None):
        self.table = ce.Embedding.from_pretrained(weight, freeze=False, padding_idx=pad)
        self.opt = getattr(ce.optim, name)(self.table, **kwargs)

    def step(self, ids: np.ndarray, grad: np.ndarray) -> None:
        self.opt.step(self.table.backward(ids, grad))


def batches(seed: int, n: int, rows: int, dim: int, shape: tuple[int, ...] = (4, 6)) -> list:
    """``n`` (ids, grad_output) batches with repeated ids (ids drawn from fewer rows than
    lookups), from their own generator so that another process can draw the same ones."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = rng.integers(0, rows, size=shape)
        out.append((ids, rng.standard_normal(shape + (dim,)).astype(np.float32)))
    return out


def train_both(table: Any, twin: LocalTwin, data: list) -> None:
    """Apply each (ids, grad_output) batch to the sharded table and to its local twin."""
    for ids, grad in data:
        table.apply_gradients(ids, grad)
        twin.step(ids, grad)


def assert_same_state(sharded: Any, twin: LocalTwin) -> None:
    """Rows and optimizer state of a sharded table equal the local twin's, bit for bit."""
    np.testing.assert_array_equal(sharded.gather_weight(), twin.table.weight)
    state = sharded.state_dict()
    local = twin.opt.state_dict()
    assert state["optimizer"]["kind"] == local["kind"]
    assert state["optimizer"]["step"] == local["step"]
    for name, value in local["state"][0].items():
        np.testing.assert_array_equal(state["optimizer"]["state"][0][name], value, err_msg=name)

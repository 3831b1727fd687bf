"""Hostile values in every argument of the sharded tables (issue 19's classes, on a real local
Ray cluster): each call either works or raises a ``CandleEmbedError``, and a refused call
leaves the table as it was.

The child-process sweep (``test_hostile.py``) cannot reach ``candle_embed.distributed``: each
child would need its own Ray cluster. These calls run in the test process instead; that is
safe because the sharded tables check every argument on the driver through the local
``candle_embed`` classes (the same extractors and allocation checks the sweep covers) before
any actor is asked for anything.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed.distributed import ShardedEmbedding, ShardedEmbeddingBag

sys.path.insert(0, str(Path(__file__).parent))
import hostile_sweep as hs  # noqa: E402

pytestmark = pytest.mark.usefixtures("ray_cluster")

# The values of the child sweep that found bugs once, and one of each other kind; a FIFO path
# is left to the loaders' own test (test_files.py), it needs no cluster.
VALUES = [
    "H.deep(200_000)",
    "H.selfref()",
    "10**400",
    "2**64 - 1",
    "-1",
    "float('nan')",
    "'\\ud800'",
    "object()",
    "np.broadcast_to(np.float32(1), (2**40, 4))",
    "np.zeros((1,) * 32, np.int64)",
    "[[1, 2], [3]]",
    "b'abc'",
]

GOOD_TABLE: dict[str, Any] = {"num_embeddings": 20, "embedding_dim": 4, "num_shards": 2}
TABLE_KEYWORDS = ["optimizer", "optimizer_kwargs", "padding_idx", "dtype", "seed", "routing"]


def _value(expr: str) -> Any:
    return eval(expr, hs.namespace())  # noqa: S307  (our own list)


REFUSED = object()


def _ours_or_fine(call: Any) -> Any:
    """``call()``'s result, or ``REFUSED`` when it raised a ``CandleEmbedError``."""
    try:
        return call()
    except ce.CandleEmbedError:
        return REFUSED
    except BaseException as e:  # noqa: BLE001
        pytest.fail(f"untyped {type(e).__module__}.{type(e).__qualname__}: {str(e)[:300]}")


@pytest.mark.parametrize("param", [*GOOD_TABLE, *TABLE_KEYWORDS])
@pytest.mark.parametrize("expr", VALUES)
def test_constructor_arguments(param: str, expr: str) -> None:
    value = _value(expr)
    kwargs = {**GOOD_TABLE, param: value}
    table = _ours_or_fine(lambda: ShardedEmbedding(**kwargs))
    if table is not REFUSED:
        table.close()


@pytest.fixture(scope="module")
def tables() -> Any:
    emb = ShardedEmbedding(20, 4, 2, optimizer="SGD", optimizer_kwargs={"lr": 0.1}, seed=0)
    bag = ShardedEmbeddingBag(20, 4, 2, mode="sum", optimizer="SGD", optimizer_kwargs={"lr": 0.1})
    yield emb, bag
    emb.close()
    bag.close()


CALLS = {
    "lookup ids": lambda e, b, v: e(v),
    "backward ids": lambda e, b, v: e.backward(v, np.ones((2, 4), np.float32)),
    "backward grad": lambda e, b, v: e.backward([1, 2], v),
    "apply_gradients grad": lambda e, b, v: e.apply_gradients([1, 2], v),
    "step grads": lambda e, b, v: e.step(v),
    "load_state_dict": lambda e, b, v: e.load_state_dict(v),
    "checkpoint path": lambda e, b, v: e.checkpoint(v),
    "restore path": lambda e, b, v: e.restore(v),
    "bag ids": lambda e, b, v: b(v, [0, 1]),
    "bag offsets": lambda e, b, v: b([1, 2, 3], v),
    "bag per_sample_weights": lambda e, b, v: b([1, 2, 3], [0, 1], per_sample_weights=v),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("expr", VALUES)
def test_method_arguments_leave_the_table_unchanged(tables: Any, call: str, expr: str) -> None:
    emb, bag = tables
    before = (emb.gather_weight(), bag.gather_weight(), emb.step_count)
    value = _value(expr)
    result = _ours_or_fine(lambda: CALLS[call](emb, bag, value))
    if result is REFUSED:
        after = (emb.gather_weight(), bag.gather_weight(), emb.step_count)
        np.testing.assert_array_equal(after[0], before[0])
        np.testing.assert_array_equal(after[1], before[1])
        assert after[2] == before[2]

"""Row-sharded tables on a real local Ray cluster: sharded training equals one local table bit
for bit (every optimizer, both routings, Embedding and every EmbeddingBag mode), routing maps,
seeded initialisation, copies in Ray tasks, the optional-dependency ImportError."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed.distributed import ShardedEmbedding, ShardedEmbeddingBag, ShardedGrad
from candle_embed.distributed.routing import Routing
from distributed_support import OPTIMIZERS, LocalTwin, assert_same_state, batches, ray
from test_array_likes import id_forms

pytestmark = pytest.mark.usefixtures("ray_cluster")

RNG = np.random.default_rng(16)


# ----------------------------------------------------------------------------- routing


@pytest.mark.parametrize("rows,shards", [(10, 1), (10, 3), (10, 10), (97, 8), (8, 5)])
def test_routing_places_every_row_once(rows: int, shards: int) -> None:
    ids = np.arange(rows, dtype=np.int64)
    # "mod": the formula; "range": numpy.array_split's blocks.
    blocks = np.array_split(ids, shards)
    expected = {
        "mod": (ids % shards, ids // shards),
        "range": (
            np.concatenate([np.full(len(b), s) for s, b in enumerate(blocks)]),
            np.concatenate([b - b[0] for b in blocks]),
        ),
    }
    for kind, (owner, local) in expected.items():
        r = Routing(kind, rows, shards)
        got_owner = r.owner(ids)
        np.testing.assert_array_equal(got_owner, owner)
        np.testing.assert_array_equal(r.local(ids, got_owner), local)
        for s in range(shards):
            np.testing.assert_array_equal(r.global_ids(s), ids[owner == s])
            assert r.rows(s) == int((owner == s).sum()) >= 1
        pieces = r.split(ids)
        assert sorted(np.concatenate([p for p, _ in pieces]).tolist()) == ids.tolist()


def test_routing_rejects_bad_shard_counts() -> None:
    for shards in (0, 11):
        with pytest.raises(ValueError, match="num_shards") as e:
            Routing("mod", 10, shards)
        assert isinstance(e.value, ce.CandleEmbedError)
    with pytest.raises(ValueError, match="routing"):
        Routing("hash", 10, 2)


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS)
@pytest.mark.parametrize("routing", ["mod", "range"])
def test_sharded_training_equals_local_bit_for_bit(
    name: str, kwargs: dict[str, Any], routing: str
) -> None:
    rows, dim = 40, 5
    weight = RNG.standard_normal((rows, dim)).astype(np.float32)
    table = ShardedEmbedding.from_pretrained(
        weight, 3, optimizer=name, optimizer_kwargs=kwargs, padding_idx=7, routing=routing
    )
    twin = LocalTwin(weight, name, kwargs, pad=7)
    try:
        data = batches(1, 6, rows, dim)
        data[0][0][0, :3] = 7  # the padding row is looked up and gets no gradient
        for ids, grad in data:
            np.testing.assert_array_equal(table(ids), twin.table(ids))
            table.apply_gradients(ids, grad)
            twin.step(ids, grad)
        assert table.step_count == len(data)
        assert_same_state(table, twin)
    finally:
        table.close()


def test_backward_then_step_sums_queued_gradients_in_order() -> None:
    """Two backward calls before one step act as the local sum of the two gradients (the
    shard sums each row's parts in call order, as the local coalesce of both batches)."""
    rows, dim = 30, 4
    weight = RNG.standard_normal((rows, dim)).astype(np.float32)
    table = ShardedEmbedding.from_pretrained(weight, 2, optimizer="SGD", optimizer_kwargs={"lr": 1})
    try:
        (ids1, g1), (ids2, g2) = batches(2, 2, rows, dim, shape=(5,))
        parts = [table.backward(ids1, g1), table.backward(ids2, g2)]
        assert all(isinstance(p, ShardedGrad) for p in parts)
        table.step()
        one = ce.Embedding.from_pretrained(weight, freeze=False)
        both = np.concatenate([ids1, ids2])
        # Local: each call's coalesced rows, then the two summed per row in call order.
        local = ce.SparseGrad.from_rows(
            np.concatenate([np.unique(ids1), np.unique(ids2)]),
            np.concatenate([one.backward(ids1, g1).values, one.backward(ids2, g2).values]),
            rows,
        )
        ce.optim.SGD(one, lr=1).step(local)
        np.testing.assert_array_equal(table.gather_weight(), one.weight)
        # and, up to float32 rounding, the float64 gradient of both batches together
        ref = weight.astype(np.float64)
        np.add.at(ref, both, -np.concatenate([g1, g2]).astype(np.float64))
        np.testing.assert_allclose(table.gather_weight(), ref, rtol=1e-5, atol=1e-5)
    finally:
        table.close()


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_sharded_bag_training_equals_local(mode: str) -> None:
    rows, dim, pad = 50, 4, 3
    weight = RNG.standard_normal((rows, dim)).astype(np.float32)
    bag = ShardedEmbeddingBag.from_pretrained(
        weight,
        4,
        mode=mode,
        optimizer="Adagrad",
        optimizer_kwargs={"lr": 0.1},
        padding_idx=pad,
        include_last_offset=(mode == "mean"),
        routing="range",
    )
    local_bag = ce.EmbeddingBag.from_pretrained(
        weight, mode=mode, padding_idx=pad, include_last_offset=(mode == "mean")
    )
    twin = LocalTwin(weight, "Adagrad", {"lr": 0.1}, pad=pad)
    rng = np.random.default_rng(3)
    try:
        for _ in range(4):
            ids = rng.integers(0, rows, size=14)
            ids[2] = pad
            offsets = np.array([0, 3, 3, 9] + ([14] if mode == "mean" else []))  # an empty bag
            psw = rng.standard_normal(14).astype(np.float32) if mode == "sum" else None
            grad = rng.standard_normal((4, dim)).astype(np.float32)
            np.testing.assert_array_equal(bag(ids, offsets, psw), local_bag(ids, offsets, psw))
            bag.apply_gradients(ids, grad, offsets, psw)
            twin.opt.step(local_bag.backward(ids, grad, offsets, psw))
            local_bag.weight = twin.table.weight
        # 2-D ids: fixed-size bags (no offsets)
        ids2 = rng.integers(0, rows, size=(3, 5))
        if mode != "mean":
            np.testing.assert_array_equal(bag(ids2), local_bag(ids2))
        assert_same_state(bag, twin)
        assert (bag.mode, bag.include_last_offset) == (mode, mode == "mean")
    finally:
        bag.close()


def test_ids_of_any_shape_and_integer_dtype() -> None:
    weight = RNG.standard_normal((20, 3))  # float64 table
    table = ShardedEmbedding.from_pretrained(weight, 3)
    try:
        shapes = [
            np.array(4),
            np.arange(20, dtype=np.uint8)[::-2],
            [[1, 2], [3, 19]],
            np.zeros((2, 0, 3), np.int32),
            np.asfortranarray(np.arange(6).reshape(2, 3)),
        ]
        for ids in shapes:
            got = table(ids)
            np.testing.assert_array_equal(got, weight[np.asarray(ids, dtype=np.int64)])
            assert got.dtype == np.float64
        # every array-like the local table takes (test_array_likes.py's forms)
        for _, form in id_forms(np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])):
            np.testing.assert_array_equal(table(form), weight[[3, 1, 4, 1, 5, 9, 2, 6, 5, 3]])
        assert table.dtype == "float64" and table.optimizer is None
        with pytest.raises(ValueError, match="no optimizer"):
            table.apply_gradients([1], np.ones((1, 3)))
    finally:
        table.close()


# ----------------------------------------------------------------------------- construction


def test_seeded_table_is_reproducible_normal_and_zero_padded() -> None:
    a = ShardedEmbedding(400, 8, 4, seed=5, padding_idx=-1)
    b = ShardedEmbedding(400, 8, 4, seed=5, padding_idx=-1)
    c = ShardedEmbedding(400, 8, 4, seed=6)
    try:
        wa = a.gather_weight()
        np.testing.assert_array_equal(wa, b.gather_weight())
        assert not np.array_equal(wa, c.gather_weight())
        assert a.padding_idx == 399 and not wa[399].any()  # negative padding_idx as locally
        body = wa[:399].astype(np.float64)
        assert abs(body.mean()) < 0.05 and abs(body.std() - 1.0) < 0.05  # N(0, 1) like Embedding
        assert len({tuple(r) for r in wa[:399]}) == 399  # shards draw different rows
    finally:
        for t in (a, b, c):
            t.close()


def test_bad_constructor_arguments_raise_before_any_actor() -> None:
    cases: list[tuple[type[BaseException], dict[str, Any], tuple[Any, ...]]] = [
        (ValueError, {}, (10, 4, 0)),
        (ValueError, {}, (10, 4, 11)),
        (ValueError, {"routing": "hash"}, (10, 4, 2)),
        (ValueError, {"optimizer": "Adam"}, (10, 4, 2)),
        (TypeError, {"optimizer": "SGD"}, (10, 4, 2)),  # SGD needs lr, as locally
        (ValueError, {"optimizer": "SGD", "optimizer_kwargs": {"lr": -1.0}}, (10, 4, 2)),
        (ValueError, {"dtype": "bfloat16"}, (10, 4, 2)),  # NumPy has no bfloat16 to carry rows
        (TypeError, {"dtype": "int8"}, (10, 4, 2)),
        (IndexError, {"padding_idx": 10}, (10, 4, 2)),
    ]
    for kind, kwargs, args in cases:
        local_kwargs = {k: v for k, v in kwargs.items() if k in ("dtype", "padding_idx")}
        if (
            local_kwargs and kwargs.get("dtype") != "bfloat16"
        ):  # the local table raises the same class for the same argument
            with pytest.raises(kind):
                ce.Embedding(args[0], args[1], **local_kwargs)
        with pytest.raises(kind):
            ShardedEmbedding(*args, **kwargs)


# ----------------------------------------------------------------------------- copies in tasks


@ray.remote(num_cpus=0)
def _worker_grad(table: ShardedEmbedding, ids: np.ndarray, grad: np.ndarray) -> Any:
    assert np.array_equal(table(ids), table(ids))  # a copy looks rows up from the shards
    try:
        table.step()
    except ValueError as e:  # only the driver steps
        refused = str(e)
    return table.backward(ids, grad), refused


def test_worker_tasks_compute_gradients_the_driver_applies() -> None:
    rows, dim = 32, 4
    weight = RNG.standard_normal((rows, dim)).astype(np.float32)
    table = ShardedEmbedding.from_pretrained(
        weight, 2, optimizer="SparseAdam", optimizer_kwargs={"lr": 0.01}
    )
    twin = LocalTwin(weight, "SparseAdam", {"lr": 0.01})
    try:
        data = batches(4, 2, rows, dim)
        results = ray.get([_worker_grad.remote(table, ids, g) for ids, g in data])
        assert all("only in the process that created" in r for _, r in results)
        table.step([g for g, _ in results])
        local = [twin.table.backward(ids, g) for ids, g in data]
        merged = ce.SparseGrad.from_rows(
            np.concatenate([x.indices for x in local]),
            np.concatenate([x.values for x in local]),
            rows,
        )
        twin.opt.step(merged)
        assert_same_state(table, twin)
        other = ShardedEmbedding(rows, dim, 2, optimizer="SGD", optimizer_kwargs={"lr": 1.0})
        try:  # a gradient of another table is refused before anything changes
            with pytest.raises(ValueError, match="another sharded table"):
                other.step(results[0][0])
            assert other.step_count == 0
        finally:
            other.close()
    finally:
        table.close()


def test_import_without_ray_says_how_to_install() -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "try:\n    import candle_embed.distributed\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'candle-embed[ray]'" in out.stdout, out.stdout + out.stderr
    import candle_embed  # the package itself does not need Ray

    assert "distributed" not in candle_embed.__all__

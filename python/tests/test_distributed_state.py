"""Sharded tables on a real local Ray cluster: bad input raises as one local table would and
changes no shard; state dicts (across shard counts and routings); checkpoints: atomic layout,
roll back, restore in another process joining the cluster by address, refusal of mismatched or
damaged checkpoints without a change."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import candle_embed as ce
import numpy as np
import pytest
from candle_embed.distributed import ShardedEmbedding, ShardedEmbeddingBag
from distributed_support import LocalTwin, assert_same_state, batches, ray, train_both

pytestmark = pytest.mark.usefixtures("ray_cluster")

RNG = np.random.default_rng(160)
ROWS, DIM = 24, 3


def snapshot(table: Any) -> dict[str, Any]:
    return table.state_dict()


def assert_unchanged(table: Any, before: dict[str, Any]) -> None:
    after = table.state_dict()
    assert after["step"] == before["step"] == table.step_count
    np.testing.assert_array_equal(after["weight"], before["weight"])
    for name, value in before["optimizer"]["state"][0].items():
        np.testing.assert_array_equal(after["optimizer"]["state"][0][name], value)


def raised(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as e:
        call()
    return e.value


def same_error(local: Callable[..., Any], sharded: Callable[..., Any], *args: Any) -> None:
    """Both calls raise, the same class with the same message, a CandleEmbedError."""
    want, got = raised(lambda: local(*args)), raised(lambda: sharded(*args))
    assert type(got) is type(want) and str(got) == str(want), (got, want)
    assert isinstance(got, ce.CandleEmbedError)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises_as_locally_and_changes_no_shard() -> None:
    weight = RNG.standard_normal((ROWS, DIM)).astype(np.float32)
    table = ShardedEmbedding.from_pretrained(
        weight, 3, optimizer="SparseAdam", optimizer_kwargs={"lr": 0.01}
    )
    twin = LocalTwin(weight, "SparseAdam", {"lr": 0.01})
    local = twin.table
    good_ids = np.array([[1, 5], [5, 23]])
    good_grad = np.ones((2, 2, DIM), np.float32)
    bad_ids: list[Any] = [
        np.array([1, ROWS]),  # out of range
        np.array([[-1, 2]]),  # negative
        np.array([1.0, 2.0]),  # float ids
        np.array(["a", "b"]),  # strings
        [[1, 2], [3]],  # ragged
        np.array([2**40], dtype=np.uint64),
    ]
    bad_grads: list[Any] = [
        np.ones((2, 2, DIM + 1), np.float32),  # wrong width
        np.ones((4, DIM), np.float32),  # wrong leading shape
        np.ones((2, 2, DIM), np.complex64),  # not real
    ]
    try:
        before = snapshot(table)
        for ids in bad_ids:
            ragged = isinstance(ids, list)
            g = good_grad if ragged else np.ones(np.shape(ids) + (DIM,), np.float32)
            same_error(local, table, ids)
            same_error(local.backward, table.backward, ids, g)
            same_error(local.backward, table.apply_gradients, ids, g)
        for g in bad_grads:
            same_error(local.backward, table.apply_gradients, good_ids, g)
            # two faults: the one the local table reports first is reported
            same_error(local.backward, table.apply_gradients, bad_ids[0], g)
        assert_unchanged(table, before)
        # nothing was queued by the failed calls: one good step equals one local step
        table.apply_gradients(good_ids, good_grad)
        twin.step(good_ids, good_grad)
        assert_same_state(table, twin)
    finally:
        table.close()


def test_bad_bag_input_raises_as_locally_and_changes_no_shard() -> None:
    weight = RNG.standard_normal((ROWS, DIM)).astype(np.float32)
    bag = ShardedEmbeddingBag.from_pretrained(
        weight, 2, mode="mean", optimizer="Adagrad", optimizer_kwargs={"lr": 0.1}
    )
    local = ce.EmbeddingBag.from_pretrained(weight, mode="mean")
    ids = np.array([1, 2, 3, 4])
    grad = np.ones((2, DIM), np.float32)
    three = np.ones((3, DIM), np.float32)
    # (ids, offsets, per_sample_weights, grad_output); the forward is checked too except for
    # the last case, whose only fault is the gradient's shape.
    cases: list[tuple[Any, Any, Any, Any]] = [
        (ids, np.array([1, 2]), None, grad),  # offsets[0] != 0
        (ids, np.array([0, 3, 2]), None, three),  # decreasing
        (ids, np.array([0, 5]), None, grad),  # past the end
        (ids, np.array([0.0, 2.0]), None, grad),  # float offsets
        (ids.reshape(2, 2), np.array([0, 1]), None, grad),  # 2-D ids with offsets
        (ids, None, None, grad),  # 1-D ids without offsets
        (ids, np.array([0, 2]), np.ones(4, np.float32), grad),  # weights need mode "sum"
        (np.array([1, ROWS, 3, 4]), np.array([0, 2]), None, grad),  # out of range
        (ids, np.array([0, 2]), None, three),  # grad_output of 3 bags for 2
    ]
    try:
        before = snapshot(bag)
        for k, (i, o, w, g) in enumerate(cases):
            if k < len(cases) - 1:
                same_error(local, bag, i, o, w)
            same_error(local.backward, bag.apply_gradients, i, g, o, w)
        assert_unchanged(bag, before)
    finally:
        bag.close()


# ----------------------------------------------------------------------------- state dicts


def test_state_dict_moves_between_shard_counts_and_routings() -> None:
    weight = RNG.standard_normal((ROWS, DIM)).astype(np.float32)
    kw = {"lr": 0.05}
    a = ShardedEmbedding.from_pretrained(weight, 3, optimizer="Adagrad", optimizer_kwargs=kw)
    b = ShardedEmbedding(ROWS, DIM, 2, optimizer="Adagrad", optimizer_kwargs=kw, routing="range")
    twin = LocalTwin(weight, "Adagrad", kw)
    try:
        data = batches(7, 5, ROWS, DIM)
        train_both(a, twin, data[:3])
        state = a.state_dict()
        b.load_state_dict(state)
        assert b.step_count == 3
        train_both(b, twin, data[3:])
        assert_same_state(b, twin)
        # a state of the wrong size or optimizer is refused with nothing changed
        before = snapshot(b)
        bad_shape = {**state, "weight": state["weight"][:-1]}
        with pytest.raises(ValueError, match="shape"):
            b.load_state_dict(bad_shape)
        with pytest.raises(ValueError, match="optimizer"):
            b.load_state_dict({**state, "optimizer": None})
        bad_rows = {**state, "optimizer": {**state["optimizer"], "state": [{"sum": np.ones(3)}]}}
        with pytest.raises(ValueError):
            b.load_state_dict(bad_rows)
        assert_unchanged(b, before)
    finally:
        a.close()
        b.close()


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoint_layout_roll_back_and_crash_leftovers(tmp_path: Path) -> None:
    weight = RNG.standard_normal((ROWS, DIM)).astype(np.float32)
    kw = {"lr": 0.01}
    table = ShardedEmbedding.from_pretrained(weight, 3, optimizer="SparseAdam", optimizer_kwargs=kw)
    twin = LocalTwin(weight, "SparseAdam", kw)
    ckpt = tmp_path / "ckpt"
    try:
        data = batches(9, 6, ROWS, DIM)
        for k, (ids, g) in enumerate(data):
            if k in (2, 4):
                table.checkpoint(ckpt)
                saved_twin = twin.table.weight, twin.opt.state_dict()
            table.apply_gradients(ids, g)
            twin.step(ids, g)
        names = sorted(os.listdir(ckpt))
        # only the last checkpoint's files remain: 3 shards x (table, optimizer) + manifest
        assert names[0] == "manifest.json" and len(names) == 7
        assert all(".step-000000000004." in n for n in names[1:])
        # leftovers of a checkpoint that crashed before its manifest: ignored by restore
        for n in names[1:3]:
            (ckpt / n.replace("step-000000000004", "step-000000000006")).write_bytes(b"torn")
        assert table.restore(ckpt) == 4 and table.step_count == 4
        np.testing.assert_array_equal(table.gather_weight(), saved_twin[0])
        state = table.state_dict()["optimizer"]
        for name, value in saved_twin[1]["state"][0].items():
            np.testing.assert_array_equal(state["state"][0][name], value)
        assert state["step"] == saved_twin[1]["step"] == [4]
    finally:
        table.close()


def test_restore_refuses_mismatch_and_damage_without_change(tmp_path: Path) -> None:
    weight = RNG.standard_normal((ROWS, DIM)).astype(np.float32)
    kw = {"lr": 0.1}
    table = ShardedEmbedding.from_pretrained(
        weight, 3, optimizer="RowWiseAdagrad", optimizer_kwargs=kw
    )
    other = ShardedEmbedding(ROWS, DIM, 2, optimizer="RowWiseAdagrad", optimizer_kwargs=kw)
    try:
        ids, g = batches(11, 1, ROWS, DIM)[0]
        table.apply_gradients(ids, g)
        table.checkpoint(tmp_path / "good")
        table.apply_gradients(ids, g)
        before = snapshot(table)
        with pytest.raises(ValueError, match="num_shards"):
            other.restore(tmp_path / "good")
        with pytest.raises(FileNotFoundError) as e:
            table.restore(tmp_path / "missing")
        assert isinstance(e.value, ce.CandleEmbedError)
        # a damaged shard file: every shard stays as it was (the others are not committed)
        damaged = tmp_path / "damaged"
        table.checkpoint(damaged)
        before = snapshot(table)
        victim = sorted(damaged.glob("shard-00001-*.safetensors"))[0]
        victim.write_bytes(victim.read_bytes()[:40])
        table.apply_gradients(ids, g)
        moved = snapshot(table)
        with pytest.raises(Exception) as e:
            table.restore(damaged)
        assert isinstance(e.value, (OSError, ValueError)), e.value
        assert_unchanged(table, moved)
        (damaged / "manifest.json").write_text("{not json")
        with pytest.raises(ValueError, match="JSON"):
            table.restore(damaged)
        assert_unchanged(table, moved)
        assert before["step"] == moved["step"] - 1
    finally:
        table.close()
        other.close()


SUBPROCESS = """
import sys, numpy as np, ray
from candle_embed.distributed import ShardedEmbedding
ray.init(address=sys.argv[1])
data = np.load(sys.argv[3])
t = ShardedEmbedding(int(data["rows"]), int(data["dim"]), 3, optimizer="SGD",
                     optimizer_kwargs={"lr": 0.1, "momentum": 0.9}, routing="range")
step = t.restore(sys.argv[2])
for k in range(len(data["ids"])):
    t.apply_gradients(data["ids"][k], data["grads"][k])
np.save(sys.argv[4], t.gather_weight())
print("restored at", step, "now at", t.step_count)
"""


def test_restore_in_another_process_joining_by_address(tmp_path: Path) -> None:
    weight = RNG.standard_normal((ROWS, DIM)).astype(np.float32)
    kw = {"lr": 0.1, "momentum": 0.9}
    table = ShardedEmbedding.from_pretrained(
        weight, 3, optimizer="SGD", optimizer_kwargs=kw, routing="range"
    )
    twin = LocalTwin(weight, "SGD", kw)
    try:
        data = batches(13, 5, ROWS, DIM)
        train_both(table, twin, data[:3])
        table.checkpoint(tmp_path / "ckpt")
    finally:
        table.close()
    for ids, g in data[3:]:
        twin.step(ids, g)
    rest = tmp_path / "rest.npz"
    ids = np.stack([d[0] for d in data[3:]])
    np.savez(rest, rows=ROWS, dim=DIM, ids=ids, grads=np.stack([d[1] for d in data[3:]]))
    script = tmp_path / "restore.py"
    script.write_text(textwrap.dedent(SUBPROCESS))
    out_path = tmp_path / "weight.npy"
    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:")  # the test cluster is loopback-only
    done = subprocess.run(
        [sys.executable, str(script), address, str(tmp_path / "ckpt"), str(rest), str(out_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "restored at 3 now at 5" in done.stdout
    np.testing.assert_array_equal(np.load(out_path), twin.table.weight)

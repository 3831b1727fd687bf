"""The worked example (examples/recsys_ray.py) runs with tiny sizes on the test cluster: a
data-parallel step over Ray worker tasks sharing three sharded tables, and a run with a shard
killed mid-way that ends on exactly the same tables."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("ray_cluster")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "recsys_ray.py"
TINY = ["--steps", "8", "--workers", "2", "--shards", "2", "--batch", "64", "--examples",
        "4000", "--users", "200", "--items", "100", "--categories", "20", "--checkpoint-every",
        "3"]  # fmt: skip


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("recsys_ray", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_trains_and_survives_a_killed_shard() -> None:
    example = load_example()
    clean = example.main(TINY)
    assert len(clean["losses"]) == 8 and all(math.isfinite(x) for x in clean["losses"])
    assert 0.6 < clean["losses"][0] < 0.8  # a fresh click model starts near log(2)
    assert clean["recoveries"] == 0
    killed = example.main([*TINY, "--kill-at", "5"])
    assert killed["recoveries"] >= 1
    assert killed["checksum"] == clean["checksum"]  # bit-identical tables after the recovery
    assert killed["losses"] == clean["losses"]

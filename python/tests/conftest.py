"""Shared pytest fixtures.

``device``: every test that takes it runs once per device name: "cpu" always, "cuda:0" and
"metal:0" too, skipped when this build or machine lacks them (so a GPU machine runs the same
tests on the GPU). Use it as ``def test_x(device: str) -> None`` and pass ``device=device``.
"""

from __future__ import annotations

from collections.abc import Iterator

import candle_embed as ce
import pytest

DEVICES = ["cpu", "cuda:0", "metal:0"]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name not in ce.devices():
        kind = name.split(":")[0]
        pytest.skip(f"{name} unavailable (needs a build with the `{kind}` feature and a device)")
    return name


@pytest.fixture
def gpu_device(device: str) -> str:
    """Like ``device`` but only GPU names: for tests that compare a GPU result with the CPU."""
    if device == "cpu":
        pytest.skip("GPU-only test")
    return device


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One loopback-only local Ray cluster per session, for the modules that ask for it with
    ``pytestmark = pytest.mark.usefixtures("ray_cluster")``. distributed_support is imported
    here, not at the top: it skips its importer when Ray is absent, which must not skip all."""
    from distributed_support import local_cluster

    yield from local_cluster()

"""Shared pytest fixtures.

``device``: every test that takes it runs once per device name: "cpu" always, "cuda:0" and
"metal:0" too, skipped when this build or machine lacks them (so a GPU machine runs the same
tests on the GPU). Use it as ``def test_x(device: str) -> None`` and pass ``device=device``.

``kv`` / ``gkv``: gensim's KeyedVectors test setUp (its ``euclidean_vectors.bin``) loaded by
candle_embed and by gensim, for the KeyedVectors tests (skipped without gensim).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def _euclidean_vectors() -> str:
    """gensim's ``euclidean_vectors.bin`` test file (skip without gensim)."""
    utils = pytest.importorskip("gensim.test.utils")
    path: str = utils.datapath("euclidean_vectors.bin")
    return path


@pytest.fixture()
def kv() -> ce.KeyedVectors:
    """gensim's setUp: ``euclidean_vectors.bin`` (fresh for each test: some tests add keys)."""
    return ce.KeyedVectors.load_word2vec_format(_euclidean_vectors(), binary=True)


@pytest.fixture(scope="module")
def gkv() -> Any:
    """The same file in gensim's own KeyedVectors."""
    models = pytest.importorskip("gensim.models")
    return models.KeyedVectors.load_word2vec_format(_euclidean_vectors(), binary=True)

"""pytest plugin of the GPU bundle: ``--only-device NAME`` keeps only the tests parametrised by
the ``device`` fixture (python/tests/conftest.py) with that device, so a GPU run spends its time
on the GPU cases and not again on the CPU ones. Loaded with ``-p only_device``."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--only-device", default=None, help="keep only tests run on this device")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    name = config.getoption("--only-device")
    if not name:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_device = callspec is not None and callspec.params.get("device") == name
        (keep if on_device else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep

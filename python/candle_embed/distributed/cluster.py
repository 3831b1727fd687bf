"""Start or join Ray with nothing leaving the machine: for tests, benchmarks and examples.

``init_local_cluster`` starts a one-machine Ray cluster that talks only over loopback:

- ``RAY_USAGE_STATS_ENABLED=0`` is put in the process environment *before* Ray starts, so
  neither the driver nor any worker process it spawns (they inherit the environment) reports
  usage statistics.
- the dashboard is off (``include_dashboard=False``);
- the node's address is ``127.0.0.1``. Ray replaces a loopback ``node_ip_address`` by the
  machine's routable address when multi-machine clusters are enabled
  (``ray._private.services.resolve_ip_for_localhost``); ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
  (Ray's switch for that, whatever the platform) keeps it on loopback. Ray reads that variable
  once, when it is imported, into ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``; when Ray
  was imported before this call, that constant is set too. The cluster's address is checked
  after the start: anything but 127.0.0.1 shuts it down and raises.

On a real cluster, call ``ray.init(address=...)`` yourself (see the README's "Beyond one
machine"); nothing in ``candle_embed.distributed`` assumes one machine.
"""

from __future__ import annotations

import os
from typing import Any

import ray

from candle_embed._errors import CandleEmbedError, typed

__all__ = ["LOOPBACK_ENV", "NotLoopbackError", "init_local_cluster"]


class NotLoopbackError(CandleEmbedError, RuntimeError):
    """The local Ray cluster came up on an address other than 127.0.0.1 (it has been shut
    down)."""


LOOPBACK_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


@typed
def init_local_cluster(
    num_cpus: int = 2, *, object_store_memory: int | None = 256 << 20, **kwargs: Any
) -> Any:
    """``ray.init`` of a loopback-only local cluster with ``num_cpus`` CPUs (set explicitly:
    Ray would otherwise take every core). Returns what ``ray.init`` returns."""
    os.environ.update(LOOPBACK_ENV)
    try:  # Ray already imported: the constant it read the variable into at import time
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    except (ImportError, AttributeError):  # pragma: no cover - other Ray layouts
        pass
    options: dict[str, Any] = {
        "num_cpus": num_cpus,
        "include_dashboard": False,
        "_node_ip_address": "127.0.0.1",
        "object_store_memory": object_store_memory,
        "log_to_driver": False,
    }
    options.update(kwargs)
    context = ray.init(**options)
    address = ray.get_runtime_context().gcs_address
    if not address.startswith("127.0.0.1:"):
        ray.shutdown()
        raise NotLoopbackError(
            f"the local Ray cluster came up at {address}, not on loopback; set "
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 in the environment before Python starts"
        )
    return context

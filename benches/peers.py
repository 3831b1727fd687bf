"""Shared harness for the Python peer benchmarks (``benches/bench_*.py``).

Method (see ``shared/reference/perf-baseline.md``): every peer of one configuration is timed in
*interleaved, rotated rounds* (round ``r`` starts with peer ``r mod n``), so slow drifts of a
shared machine hit every peer alike; each call is timed on its own and the figure reported is
the **median** per call. Each peer's block of calls starts with an untimed call (see
``settled``), so that no peer pays for the previous one's spinning thread pool. Callables take
the call counter ``i`` so that a benchmark can cycle its inputs through several batches
(``batches[i % len(batches)]``) instead of re-reading one batch that sits in the cache.

Typical use::

    from peers import Bench, ratio_rows, print_table, set_threads, torch_or_none

    torch = torch_or_none()
    set_threads(1, torch)
    times = Bench(rounds=15, per_round=4).run({"ours": lambda i: f(i), "np.take": ...})
    print_table(ratio_rows("V=1M D=128", times, ours="ours", peers=["np.take"]), threads=1)

Run any bench with ``--quick`` for a smoke run (few rounds, small grid).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

Peer = Callable[[int], object]


def settled(f: Callable[[], object]) -> float:
    """Seconds taken by one call of ``f``, run right after an untimed call of ``f``.

    The untimed call absorbs what switching from another peer costs: torch's OpenMP workers
    busy-wait for a while after every op, so on a 2-core machine whatever runs next shares the
    cores with them (measured: SparseAdam step 4.4 ms right after a torch op, 2.0 ms in steady
    state), and after the previous peer the caches and TLB hold its data. Sleeping instead is
    worse: an idle vCPU comes back slow (every peer measured 1.5-2.5x slower after 5-20 ms idle).
    """
    f()
    t0 = time.perf_counter()
    res = f()
    t1 = time.perf_counter()
    del res
    return t1 - t0


def torch_or_none() -> ModuleType | None:
    """``torch`` if it is importable (it is never a dependency), else ``None``.

    ``CANDLE_EMBED_BENCH_NO_TORCH=1`` skips it even when installed.
    """
    if os.environ.get("CANDLE_EMBED_BENCH_NO_TORCH"):
        return None
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except Exception:  # ImportError, or a broken install (missing shared libraries)
        return None
    return torch  # type: ignore[no-any-return, unused-ignore]


def set_threads(n: int, torch: ModuleType | None = None) -> None:
    """Use ``n`` threads in candle-embed's pool and in torch's intra-op pool (NumPy's take and
    copy are single-threaded whatever this says)."""
    import candle_embed as ce

    ce.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


@dataclass
class Bench:
    """Interleaved rotated rounds of per-call timings."""

    rounds: int = 15
    per_round: int = 4
    warmup: int = 2
    untimed: int = 1  # untimed calls that open each peer's block (see ``settled``)
    # Bytes streamed through (read and written) before each peer's block, 0 for none: more than
    # the last-level cache, so every block starts cold whichever peer ran before it. Without it
    # a table that fits the L3 (260 MB here) is warm or cold by the order of the rotation (a
    # peer after another reading the same bytes finds them cached, one after a peer with a
    # larger table does not).
    flush_bytes: int = 0
    samples: dict[str, list[float]] = field(default_factory=dict)

    def run(self, peers: dict[str, Peer]) -> dict[str, float]:
        """Time every peer; return the median seconds per call of each."""
        names = list(peers)
        counters = dict.fromkeys(names, 0)
        self.samples = {n: [] for n in names}
        for name in names:  # warm-up: page in tables, JIT-free but caches and allocators
            for _ in range(self.warmup):
                peers[name](counters[name])
                counters[name] += 1
        flush = _flush_buffer(self.flush_bytes)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for r in range(self.rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for name in order:
                    fn = peers[name]
                    out = self.samples[name]
                    if flush is not None:
                        flush += 1.0
                    for _ in range(self.untimed):  # absorb the switch from the last peer
                        fn(counters[name])
                        counters[name] += 1
                    for _ in range(self.per_round):
                        i = counters[name]
                        t0 = time.perf_counter()
                        res = fn(i)
                        t1 = time.perf_counter()
                        del res  # freeing a fresh result is not part of the call
                        out.append(t1 - t0)
                        counters[name] = i + 1
        finally:
            if gc_was_enabled:
                gc.enable()
        return {n: statistics.median(s) for n, s in self.samples.items()}

    def mins(self) -> dict[str, float]:
        """The fastest call of each peer in the last ``run``: on a loaded machine (other
        tenants preempting us) the minimum is the steadier estimate of what the code costs."""
        return {n: min(s) for n, s in self.samples.items() if s}


def _flush_buffer(nbytes: int) -> Any:
    """A float32 NumPy array of ``nbytes`` (``None`` for 0): ``+= 1`` streams it through the
    caches."""
    if nbytes <= 0:
        return None
    import numpy as np

    return np.ones(nbytes // 4, np.float32)


def check(name: str, got: object, want: Any, exact: bool = True) -> None:
    """Refuse to time a peer that computes something else: ``got`` (a NumPy array, or a tensor
    with ``.numpy()``) must equal ``want`` exactly, or within 1e-4 when ``exact`` is False."""
    import numpy as np

    g = np.asarray(got.numpy() if hasattr(got, "numpy") else got)
    ok = np.array_equal(g, want) if exact else np.allclose(g, want, rtol=1e-4, atol=1e-4)
    if not ok:
        raise AssertionError(f"{name} disagrees with the NumPy reference")


@dataclass
class Row:
    """One line of a comparison table: ours against one peer in one configuration."""

    config: str
    ours_name: str
    ours_s: float
    peer_name: str
    peer_s: float | None
    note: str = ""
    ours_min: float | None = None
    peer_min: float | None = None

    @property
    def ratio(self) -> float | None:
        """ours / peer: below 1 means ours is faster."""
        if self.peer_s is None or self.peer_s == 0:
            return None
        return self.ours_s / self.peer_s

    @property
    def ratio_min(self) -> float | None:
        if self.ours_min is None or not self.peer_min:
            return None
        return self.ours_min / self.peer_min


def ratio_rows(
    config: str,
    times: dict[str, float],
    pairs: Sequence[tuple[str, str]],
    mins: dict[str, float] | None = None,
) -> list[Row]:
    """Rows for the ``(ours, peer)`` pairs in ``times`` (a peer that did not run is left out)."""
    return [
        Row(
            config,
            ours,
            times[ours],
            peer,
            times[peer],
            ours_min=None if mins is None else mins.get(ours),
            peer_min=None if mins is None else mins.get(peer),
        )
        for ours, peer in pairs
        if ours in times and peer in times
    ]


def fmt_ms(s: float | None) -> str:
    if s is None:
        return "-"
    ms = s * 1e3
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def table_lines(rows: Sequence[Row], *, title: str = "", markdown: bool = False) -> list[str]:
    """Format rows as an aligned text table (or a Markdown table)."""
    with_min = any(r.ours_min is not None for r in rows)
    head = ["config", "ours", "ms", "peer", "ms", "ours/peer"]
    if with_min:
        head += ["min ours", "min peer", "ratio of mins"]
    body = []
    for r in rows:
        ratio = r.ratio
        line = [
            r.config,
            r.ours_name,
            fmt_ms(r.ours_s),
            r.peer_name + (f" ({r.note})" if r.note else ""),
            fmt_ms(r.peer_s),
            "-" if ratio is None else f"{ratio:.2f}x",
        ]
        if with_min:
            rm = r.ratio_min
            line += [fmt_ms(r.ours_min), fmt_ms(r.peer_min), "-" if rm is None else f"{rm:.2f}x"]
        body.append(line)
    lines = [title] if title else []
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return lines
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = "  ".join(f"{{:<{w}}}" if j in (0, 1, 3) else f"{{:>{w}}}" for j, w in enumerate(widths))
    lines.append(fmt.format(*head))
    lines += [fmt.format(*b) for b in body]
    return lines


def print_table(rows: Sequence[Row], *, title: str = "", markdown: bool = False) -> None:
    print("\n".join(table_lines(rows, title=title, markdown=markdown)), flush=True)


def arg_parser(description: str) -> argparse.ArgumentParser:
    """The common command line: ``--quick``, ``--threads``, ``--rounds``, ``--markdown``,
    ``--no-torch``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smoke run: few rounds, small grid")
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="thread counts to run (candle-embed and torch)",
    )
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per config")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--no-torch", action="store_true", help="leave torch out even if importable")
    return p


def describe_env(torch: ModuleType | None) -> str:
    """One line naming the versions that produced the figures."""
    import candle_embed as ce
    import numpy as np

    parts = [
        f"python {sys.version.split()[0]}",
        f"numpy {np.__version__}",
        f"candle_embed {ce.__version__}",
        f"torch {torch.__version__}" if torch is not None else "torch: not importable",
        f"cpus {os.cpu_count()}",
    ]
    return ", ".join(parts)

"""The CPU speed table of issue #18 from one quiet run: lookup and EmbeddingBag against PyTorch
at 1 and 2 threads, the random-row gather ceiling beside them, 2-thread scaling, and a sweep of
the gather/bag tuning (prefetch distance, streaming-store threshold).

    LD_LIBRARY_PATH=/work/bench-venv/cudastub /work/bench-venv/bin/python benches/bench_speed.py
    ... benches/bench_speed.py --quick            # smoke run: tiny sizes, every section
    ... benches/bench_speed.py --sections lookup bag ceiling --markdown

Sections (``--sections``, default all but ``sweep``):

- ``lookup``: float32 table V x D (D = 64, 128, 512), N = 16384 int64 ids per call, cycled
  through 32 batches; ours ``emb(ids)`` vs ``F.embedding`` (fresh output) and ours
  ``emb(ids, out=)`` vs ``torch.index_select(out=)`` (reused output).
- ``bag``: B = 4096 bags of 32 ids, D = 128; ours ``bag(ids, offsets)`` vs ``F.embedding_bag``,
  sum and mean; ids ``uniform``, ``zipf`` (Zipf(1.1) ranks scattered over the table) and
  ``repeated`` (only 1024 distinct rows, so the rows sit in the caches and the accumulation,
  not the memory, is timed).
- ``ceiling``: ``examples/gather_ceiling.rs`` (build it first: ``cargo build --release
  --example gather_ceiling``) on the same V, N, D, and ours / torch against it.
- ``sweep``: the lookup (``out=`` and fresh, D = 128 and 512) and bag sum under each
  ``_testing.set_cpu_tuning`` setting, interleaved, to check the defaults of
  ``src/kernels/cpu/tuning.rs``.

Method (``peers.py``): peers of one configuration in interleaved rotated blocks, each block
opened by two untimed calls (``--untimed``), medians (and mins), ratios ours / peer (< 1: ours is
faster). Every peer is checked against NumPy before it is timed. The 2-thread scaling is
t(1 thread) / t(2 threads) of the same peer. The alternating-process measurement is
``bench_alternating.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import candle_embed as ce  # noqa: E402
from bench_lookup import lookup_peers, make_ids  # noqa: E402
from candle_embed._native import _testing  # noqa: E402
from peers import (  # noqa: E402
    Bench,
    Peer,
    Row,
    arg_parser,
    check,
    describe_env,
    fmt_ms,
    print_table,
    ratio_rows,
    set_threads,
    torch_or_none,
)

ROOT = Path(__file__).resolve().parent.parent
CEILING_BIN = ROOT / "target" / "release" / "examples" / "gather_ceiling"
N_BATCHES = 32
LOOKUP_PAIRS = [
    ("ours emb(ids)", "F.embedding"),
    ("ours emb(ids, out=)", "index_select(out=)"),
]
# (prefetch_bytes, stream_min_bytes) for the sweep; -1 never streams.
SWEEP = [(0, -1), (2048, -1), (4096, -1), (8192, -1), (16384, -1), (32768, -1), (8192, 0)]
SWEEP += [(8192, 4 << 20)]


def bag_ids(v: int, n: int, dist: str, rng: np.random.Generator) -> list[np.ndarray]:
    if dist == "repeated":
        hot = rng.choice(v, size=min(1024, v), replace=False).astype(np.int64)
        return [hot[rng.integers(0, hot.size, n)] for _ in range(N_BATCHES)]
    return make_ids(v, dist, rng, n=n, batches=N_BATCHES)


def bag_peers(
    table: np.ndarray,
    batches: list[np.ndarray],
    per: int,
    torch: ModuleType | None,
) -> dict[str, Peer]:
    n, nb = batches[0].shape[0], len(batches)
    offsets = np.arange(0, n, per, dtype=np.int64)
    peers: dict[str, Peer] = {}
    for mode in ("sum", "mean"):
        bag = ce.EmbeddingBag.from_pretrained(table, mode=mode)
        peers[f"ours {mode}"] = lambda i, bag=bag: bag(batches[i % nb], offsets)
    if torch is not None:
        w, to = torch.from_numpy(table), torch.from_numpy(offsets)
        tb = [torch.from_numpy(b) for b in batches]
        f_bag = torch.nn.functional.embedding_bag
        for mode in ("sum", "mean"):
            peers[f"embedding_bag {mode}"] = lambda i, m=mode: f_bag(tb[i % nb], w, to, mode=m)
    rows = table[batches[0]].astype(np.float64).reshape(-1, per, table.shape[1])
    for name, fn in peers.items():
        want = rows.mean(axis=1) if "mean" in name else rows.sum(axis=1)
        check(name, fn(0), want, exact=False)
    return peers


def run_section(
    title: str,
    peers: dict[str, Peer],
    pairs: list[tuple[str, str]],
    bench: Bench,
    threads: list[int],
    torch: ModuleType | None,
    times_by_t: dict[int, dict[str, float]],
) -> list[Row]:
    rows: list[Row] = []
    for t in threads:
        set_threads(t, torch)
        times = bench.run(peers)
        times_by_t[t] = times
        rows += ratio_rows(f"{title}, {t}T", times, pairs, bench.mins())
    print_table(rows, title=f"\n## {title}")
    return rows


def scaling_lines(label: str, times_by_t: dict[int, dict[str, float]]) -> list[str]:
    if 1 not in times_by_t or 2 not in times_by_t:
        return []
    one, two = times_by_t[1], times_by_t[2]
    return [f"{label:34s} {name:24s} {one[name] / two[name]:5.2f}x" for name in one if name in two]


def ceiling(v: int, n: int, dims: list[int], threads: list[int], calls: int) -> dict:
    if not CEILING_BIN.exists():
        print(
            f"\n(ceiling skipped: build {CEILING_BIN.name} with "
            "`cargo build --release --example gather_ceiling`)"
        )
        return {}
    cmd = [str(CEILING_BIN), "--v", str(v), "--n", str(n), "--calls", str(calls), "--d"]
    cmd += [str(d) for d in dims] + ["--threads"] + [str(t) for t in threads]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        kv = dict(re.findall(r"(\w+)=([\d.]+)", line))
        res[(int(kv["d"]), int(kv["threads"]))] = float(kv["median_ms"]) / 1e3
    return res


def sweep(table: np.ndarray, batches: list[np.ndarray], bench: Bench, threads: list[int]) -> None:
    emb = ce.Embedding.from_pretrained(table)
    bag = ce.EmbeddingBag.from_pretrained(table, mode="sum")
    n, d, nb = batches[0].shape[0], table.shape[1], len(batches)
    buf = np.empty((n, d), np.float32)
    offsets = np.arange(0, n, 32, dtype=np.int64)
    peers: dict[str, Peer] = {}
    for p, s in SWEEP:

        def tuned(f: Peer, p: int = p, s: int = s) -> Peer:
            def call(i: int) -> object:
                _testing.set_cpu_tuning(prefetch_bytes=p, stream_min_bytes=s)
                return f(i)

            return call

        tag = f"pf={p} stream>={'never' if s < 0 else s}"
        peers[f"out= {tag}"] = tuned(lambda i: emb(batches[i % nb], out=buf))
        peers[f"fresh {tag}"] = tuned(lambda i: emb(batches[i % nb]))
        peers[f"bag sum {tag}"] = tuned(lambda i: bag(batches[i % nb], offsets))
    old = _testing.set_cpu_tuning()
    try:
        for t in threads:
            ce.set_num_threads(t)
            times = bench.run(peers)
            print(f"\n## tuning sweep D={d}, {t} thread(s): median (min) ms")
            for name, s in times.items():
                print(f"  {name:44s} {fmt_ms(s):>8} ({fmt_ms(bench.mins()[name])})")
    finally:
        _testing.set_cpu_tuning(prefetch_bytes=old[0], stream_min_bytes=old[1])


def main() -> None:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--v", type=int, default=None, help="table rows (default 1M)")
    p.add_argument("--d", type=int, nargs="+", default=[64, 128, 512], help="lookup dims")
    p.add_argument("--bag-d", type=int, default=128)
    p.add_argument("--untimed", type=int, default=2, help="untimed calls opening each block")
    p.add_argument(
        "--sections",
        nargs="+",
        default=["lookup", "bag", "ceiling"],
        choices=["lookup", "bag", "ceiling", "sweep"],
    )
    a = p.parse_args()
    torch = None if a.no_torch else torch_or_none()
    v = a.v or (20_000 if a.quick else 1_000_000)
    n, bags, per = (1024, 64, 16) if a.quick else (16384, 4096, 32)
    rounds = a.rounds or (2 if a.quick else 15)
    bench = Bench(rounds=rounds, per_round=2 if a.quick else 4, warmup=2, untimed=a.untimed)
    rng = np.random.default_rng(0)
    print(f"# speed: {describe_env(torch)}; V={v} N={n} bags={bags}x{per}, {rounds} rounds")
    print("# median ms per call (min); ours/peer < 1 means ours is faster", flush=True)
    summary: list[Row] = []
    scaling: list[str] = []
    lookup_t: dict[int, dict[int, dict[str, float]]] = {}
    if "lookup" in a.sections:
        for d in a.d:
            table = rng.standard_normal((v, d), dtype=np.float32)
            batches = make_ids(v, "uniform", rng, n=n, batches=N_BATCHES)
            emb = ce.Embedding.from_pretrained(table)
            peers = lookup_peers(table, emb, batches, torch, numpy_peers=False)
            lookup_t[d] = {}
            title = f"lookup V={v // 1000}k D={d} uniform"
            summary += run_section(title, peers, LOOKUP_PAIRS, bench, a.threads, torch, lookup_t[d])
            scaling += scaling_lines(title, lookup_t[d])
            del peers, emb, table
    if "bag" in a.sections:
        table = rng.standard_normal((v, a.bag_d), dtype=np.float32)
        pairs = [("ours sum", "embedding_bag sum"), ("ours mean", "embedding_bag mean")]
        for dist in ("uniform", "zipf", "repeated"):
            peers = bag_peers(table, bag_ids(v, bags * per, dist, rng), per, torch)
            title = f"bag V={v // 1000}k D={a.bag_d} {bags}x{per} {dist}"
            by_t: dict[int, dict[str, float]] = {}
            summary += run_section(title, peers, pairs, bench, a.threads, torch, by_t)
            scaling += scaling_lines(title, by_t)
        del table
    if "ceiling" in a.sections:
        ceil = ceiling(v, n, a.d, a.threads, calls=10 if a.quick else 400)
        if ceil:
            print("\n## random-row gather ceiling (examples/gather_ceiling.rs): x = t / ceiling")
            for (d, t), s in sorted(ceil.items()):
                line = f"  D={d:<4d} {t}T  ceiling {fmt_ms(s):>8} ms"
                for name in ("ours emb(ids, out=)", "index_select(out=)", "ours emb(ids)"):
                    got = lookup_t.get(d, {}).get(t, {}).get(name)
                    if got is not None:
                        line += f"   {name} {got / s:5.2f}x"
                print(line)
    if "sweep" in a.sections:
        for d in (128, 512):
            table = rng.standard_normal((v, d), dtype=np.float32)
            sweep(table, make_ids(v, "uniform", rng, n=n, batches=N_BATCHES), bench, a.threads)
            del table
    if scaling:
        print("\n## 2-thread scaling: t(1 thread) / t(2 threads)  (goal >= 1.6x)")
        print("\n".join("  " + s for s in scaling))
    if summary:
        print_table(
            summary, title="\n## Summary (goals: lookup <= 0.9x, bag <= 1.0x)", markdown=a.markdown
        )


if __name__ == "__main__":
    main()

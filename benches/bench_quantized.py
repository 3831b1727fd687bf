"""Quantized and memory-mapped tables: our int8 / int4 bags and lookups against FBGEMM's CPU
kernels (PyTorch's ``torch.ops.quantized.embedding_bag_{byte,4bit}_rowwise_offsets`` on the
same packed bytes, when torch is importable), beside our float32 and float16 bags on the same
ids; then a memory-mapped table's resident memory and lookup throughput against the same table
in memory. Interleaved rotated rounds, medians (``peers.py``).

    LD_LIBRARY_PATH=/work/bench-venv/cudastub PYTHONPATH=python \\
        /work/bench-venv/bin/python benches/bench_quantized.py [--threads 1 2] [--quick]

The issue's goals (#15): int8 bag sum at least 2x faster than our float32 bag on the same ids
(the ``f32 / int8`` column >= 2), and no slower than FBGEMM's kernel (``int8 / fbgemm`` <= 1).
Before timing, every configuration checks our bags against FBGEMM's outputs (equal for float32
output: the kernel follows FBGEMM's operation order) and against a float64 NumPy reference.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import candle_embed as ce
import numpy as np
from bench_speed import bag_ids  # type: ignore[import-not-found]
from peers import Bench, arg_parser, describe_env, fmt_ms, set_threads, torch_or_none


def resident_mb(key: str = "VmRSS") -> float:
    """This process's resident memory (``VmRSS``) or its peak (``VmHWM``), in MB (Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def batches(rng: np.random.Generator, vocab: int, bags: int, per: int, k: int) -> list[Any]:
    """``k`` different id batches (cycled, so one batch does not sit in the cache)."""
    return [rng.integers(0, vocab, bags * per).astype(np.int64) for _ in range(k)]


def check(ours: Any, packed: Any, bits: int, ids: Any, off: Any, torch: Any) -> None:
    """Our bag sum against float64 of the dequantized rows, and against FBGEMM's kernel."""
    got = ours(ids, off)
    rows = ce.QuantizedEmbedding.from_packed(packed, bits).dequantize().astype(np.float64)
    ref = np.add.reduceat(rows[ids], off, axis=0)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)
    if torch is not None:
        op = fbgemm_op(torch, bits)
        t = torch.from_numpy
        want = op(t(packed), t(ids), t(off), mode=0).numpy()
        np.testing.assert_array_equal(got, want)


def fbgemm_op(torch: Any, bits: int) -> Any:
    q = torch.ops.quantized
    if bits == 8:
        return q.embedding_bag_byte_rowwise_offsets
    return q.embedding_bag_4bit_rowwise_offsets


def bag_peers(
    w: Any, ids: list[Any], off: Any, torch: Any
) -> tuple[dict[str, Callable[[int], object]], list[tuple[str, str]]]:
    """Every contender summing the same bags, and the (numerator, denominator) ratio pairs."""
    bags, dim = len(off), w.shape[1]
    out, out16 = np.empty((bags, dim), np.float32), np.empty((bags, dim), np.float16)
    n = len(ids)
    peers: dict[str, Callable[[int], object]] = {}
    f32 = ce.EmbeddingBag.from_pretrained(w, mode="sum")
    f16 = ce.EmbeddingBag.from_pretrained(w.astype(np.float16), mode="sum")
    peers["ours f32"] = lambda i: f32(ids[i % n], off, out=out)
    peers["ours f16"] = lambda i: f16(ids[i % n], off, out=out16)
    pairs = [("ours f32", "ours f16")]
    for bits in (8, 4):
        q = ce.QuantizedEmbeddingBag.from_float(w, bits, mode="sum")
        check(q, q.packed, bits, ids[0], off, torch)
        peers[f"ours int{bits}"] = lambda i, q=q: q(ids[i % n], off, out=out)
        pairs.append(("ours f32", f"ours int{bits}"))
        if torch is not None:
            op, t = fbgemm_op(torch, bits), torch.from_numpy
            tp, to, ti = t(q.packed), t(off), [t(x) for x in ids]
            peers[f"fbgemm int{bits}"] = lambda i, op=op, tp=tp, ti=ti, to=to: op(
                tp, ti[i % n], to, mode=0
            )
            pairs.append((f"ours int{bits}", f"fbgemm int{bits}"))
    if torch is not None:
        tw, to, ti = torch.from_numpy(w), torch.from_numpy(off), [torch.from_numpy(x) for x in ids]
        fn = torch.nn.functional.embedding_bag
        peers["torch f32"] = lambda i: fn(ti[i % n], tw, to, mode="sum")
        pairs.append(("ours f32", "torch f32"))
    return peers, pairs


def lookup_peers(w: Any, ids: list[Any], torch: Any) -> dict[str, Callable[[int], object]]:
    """Plain lookups (one row per id) from each table type; FBGEMM's as one-id bags."""
    n = len(ids)
    out = np.empty((ids[0].size, w.shape[1]), np.float32)
    out16 = np.empty_like(out, np.float16)
    peers: dict[str, Callable[[int], object]] = {}
    emb = ce.Embedding.from_pretrained(w)
    emb16 = ce.Embedding.from_pretrained(w.astype(np.float16))
    peers["ours f32"] = lambda i: emb(ids[i % n], out=out)
    peers["ours f16"] = lambda i: emb16(ids[i % n], out=out16)
    each = None if torch is None else torch.arange(ids[0].size)  # every id a bag of its own
    for bits in (8, 4):
        q = ce.QuantizedEmbedding.from_float(w, bits)
        peers[f"ours int{bits}"] = lambda i, q=q: q(ids[i % n], out=out)
        if torch is not None:
            op, t = fbgemm_op(torch, bits), torch.from_numpy
            tp, ti = t(q.packed), [t(x) for x in ids]
            peers[f"fbgemm int{bits}"] = lambda i, op=op, tp=tp, ti=ti: op(
                tp, ti[i % n], each, mode=0
            )
    return peers


def report(title: str, times: dict[str, float], pairs: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    for name, s in times.items():
        print(f"  {name:14s} {fmt_ms(s):>9s} ms")
    for a, b in pairs:
        if a in times and b in times:
            print(f"  {a} / {b}: {times[a] / times[b]:.2f}x  (> 1: {b} faster)")


def mapped_section(vocab: int, dim: int, n_ids: int, bench: Bench, seed: int) -> None:
    """Resident memory after mapping and after lookups, and lookup time, of a mapped float32
    and int8 table against the same tables in memory (the file is in the page cache after the
    first round: this is the warm throughput; a cold read is bounded by the disk)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((vocab, dim), dtype=np.float32)
    ids = batches(rng, vocab, n_ids, 1, 4)
    with tempfile.TemporaryDirectory() as d:
        f32_path, q8_path = Path(d) / "f32.safetensors", Path(d) / "q8.safetensors"
        ce.Embedding.from_pretrained(w).save(f32_path)
        ce.QuantizedEmbedding.from_float(w, 8).save(q8_path)
        del w
        tables: dict[str, Any] = {}
        print(f"\nmapped tables V={vocab} D={dim}, {n_ids} ids a call (resident memory MB):")
        for name, load, path in [
            ("f32 mmap", lambda p: ce.Embedding.load(p, mmap=True), f32_path),
            ("int8 mmap", lambda p: ce.QuantizedEmbedding.load(p, mmap=True), q8_path),
            ("f32 in memory", lambda p: ce.Embedding.load(p), f32_path),
            ("int8 in memory", lambda p: ce.QuantizedEmbedding.load(p), q8_path),
        ]:
            before = resident_mb()
            tables[name] = load(path)
            size = os.path.getsize(path) / 2**20
            print(f"  {name:15s} file {size:8.0f}  +{resident_mb() - before:8.1f} after load")
        peers = {k: (lambda i, t=t: t(ids[i % len(ids)])) for k, t in tables.items()}
        for k in ("f32", "int8"):
            np.testing.assert_array_equal(peers[f"{k} mmap"](0), peers[f"{k} in memory"](0))
        times = bench.run(peers)
        for k, s in times.items():
            rate = n_ids / s / 1e6
            print(f"  {k:15s} {fmt_ms(s):>9s} ms  {rate:7.2f} M rows/s")
        print(f"  peak resident {resident_mb('VmHWM'):.0f} MB, now {resident_mb():.0f} MB")


def main() -> None:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, nargs="+", default=[64, 128])
    p.add_argument("--bags", type=int, default=4096)
    p.add_argument("--per", type=int, default=32)
    p.add_argument("--mapped-vocab", type=int, default=2_000_000, help="rows of the mapped table")
    p.add_argument(
        "--dists",
        nargs="+",
        default=["uniform"],
        choices=["uniform", "zipf", "repeated"],
        help="bag ids: uniform, Zipf(1.1) ranks scattered, or 1024 distinct rows (bench_speed's)",
    )
    p.add_argument(
        "--flush-mb",
        type=int,
        default=600,
        help="MB streamed through the caches before each peer's block (0: none; see peers.Bench)",
    )
    a = p.parse_args()
    torch = None if a.no_torch else torch_or_none()
    if a.quick:
        a.vocab, a.dim, a.bags, a.per, a.mapped_vocab = 20_000, [64], 256, 16, 50_000
        a.flush_mb = 0
    bench = Bench(
        rounds=a.rounds or (3 if a.quick else 15),
        per_round=1 if a.quick else 4,
        flush_bytes=a.flush_mb << 20,
    )
    print(describe_env(torch), f"flush {a.flush_mb} MB before each block")
    rng = np.random.default_rng(0)
    for dim in a.dim:
        w = rng.standard_normal((a.vocab, dim), dtype=np.float32)
        off = np.arange(0, a.bags * a.per, a.per, dtype=np.int64)
        for dist in a.dists:
            ids = bag_ids(a.vocab, a.bags * a.per, dist, rng)
            for t in a.threads:
                set_threads(t, torch)
                peers, pairs = bag_peers(w, ids, off, torch)
                cfg = f"V={a.vocab} D={dim} B={a.bags}x{a.per} {dist}, {t} thread(s)"
                report(f"bag sum, {cfg}:", bench.run(peers), pairs)
                if dist != a.dists[0]:
                    continue
                lk = lookup_peers(w, [x[: a.bags * 4] for x in ids], torch)
                lk_pairs = [("ours f32", "ours int8"), ("ours int8", "fbgemm int8")]
                lk_pairs.append(("ours int4", "fbgemm int4"))
                report(f"lookup of {a.bags * 4} ids, {cfg}:", bench.run(lk), lk_pairs)
    set_threads(a.threads[0], torch)
    mapped_section(a.mapped_vocab, a.dim[-1], a.bags * 4, bench, seed=1)


if __name__ == "__main__":
    main()

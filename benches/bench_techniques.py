"""Peer benchmark of the embedding techniques: weight tying (`attend`), its backward, and the
transformed lookups (dropout / normalize), against NumPy (and torch when importable), timed in
interleaved rounds within one run; medians, ratios peer/ours (> 1: we are faster).

    python benches/bench_techniques.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import candle_embed as ce
import numpy as np
from peers import settled

try:
    import torch
except ImportError:  # torch is optional and never a dependency
    torch = None


def bench(cases: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each case, cases interleaved and rotated every round."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    names = list(cases)
    for f in cases.values():  # warm up
        f()
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            times[k].append(settled(cases[k]))  # after an untimed call (peers.py)
    return {k: statistics.median(v) for k, v in times.items()}


def report(title: str, res: dict[str, float], ours: str, flops: float | None = None) -> None:
    print(f"\n## {title}")
    base = res[ours]
    for k, t in res.items():
        extra = f"  {flops / t / 1e9:7.1f} GFLOP/s" if flops else ""
        ratio = "" if k == ours else f"  (peer/ours {t / base:5.2f}x)"
        print(f"  {k:44s} {t * 1e3:9.2f} ms{extra}{ratio}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller shapes, fewer rounds")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        ce.set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    v, d, b, k = (50_000, 512, 4096, 64) if not args.quick else (10_000, 256, 512, 64)
    rounds = 5 if not args.quick else 7
    rng = np.random.default_rng(0)
    w = rng.standard_normal((v, d), dtype=np.float32)
    x = rng.standard_normal((b, d), dtype=np.float32)
    emb = ce.Embedding.from_pretrained(w)
    print(
        f"candle-embed {ce.__version__}, threads {ce.get_num_threads()}, numpy {np.__version__}"
        f", torch {torch.__version__ if torch else 'not installed'}; V={v} D={d} B={b} k={k}, f32"
    )

    tw = tx = None
    if torch is not None:
        tw, tx = torch.from_numpy(w), torch.from_numpy(x)

    # -- full-vocabulary logits: (B, D) @ (D, V)
    cases: dict[str, Callable[[], Any]] = {
        "ours attend(x)": lambda: emb.attend(x),
        "numpy x @ W.T": lambda: x @ w.T,
    }
    if torch is not None:
        cases["torch x @ W.T"] = lambda: tx @ tw.T
    report(f"attend: logits ({b}, {v})", bench(cases, rounds), "ours attend(x)", 2.0 * b * v * d)

    # -- 64 sampled ids shared by the batch
    ids = rng.integers(0, v, k)
    cases = {
        "ours attend(x, ids[k])": lambda: emb.attend(x, ids),
        "numpy x @ W[ids].T": lambda: x @ w[ids].T,
    }
    if torch is not None:
        tids = torch.from_numpy(ids)
        cases["torch x @ W[ids].T"] = lambda: tx @ tw[tids].T
    report(
        f"attend, {k} shared sampled ids",
        bench(cases, rounds * 4),
        "ours attend(x, ids[k])",
        2.0 * b * k * d,
    )

    # -- 64 sampled ids per row: logits[b, j] = x[b] . W[ids[b, j]]
    ids2 = rng.integers(0, v, (b, k))

    def numpy_per_row() -> Any:
        out = np.empty((b, k), dtype=np.float32)
        for s in range(0, b, 256):  # chunks: W[ids] of the whole batch would be B*k*D*4 bytes
            out[s : s + 256] = np.einsum("bkd,bd->bk", w[ids2[s : s + 256]], x[s : s + 256])
        return out

    cases = {
        "ours attend(x, ids[B, k])": lambda: emb.attend(x, ids2),
        "numpy take+einsum (chunked)": numpy_per_row,
    }
    if torch is not None:
        tids2 = torch.from_numpy(ids2)

        def torch_per_row() -> Any:
            out = torch.empty((b, k))
            for s in range(0, b, 256):
                sel = torch.nn.functional.embedding(tids2[s : s + 256], tw)
                out[s : s + 256] = torch.bmm(sel, tx[s : s + 256, :, None])[..., 0]
            return out

        cases["torch embedding+bmm (chunked)"] = torch_per_row
    report(
        f"attend, {k} sampled ids per row",
        bench(cases, rounds * 4),
        "ours attend(x, ids[B, k])",
        2.0 * b * k * d,
    )

    # -- backward of the full logits
    g = rng.standard_normal((b, v), dtype=np.float32)
    cases = {
        "ours attend_backward(x, g)": lambda: emb.attend_backward(x, g),
        "numpy (g @ W, g.T @ x)": lambda: (g @ w, g.T @ x),
    }
    if torch is not None:
        tg = torch.from_numpy(g)
        cases["torch (g @ W, g.T @ x)"] = lambda: (tg @ tw, tg.T @ tx)
    report(
        "attend_backward, all rows",
        bench(cases, max(3, rounds - 2)),
        "ours attend_backward(x, g)",
        4.0 * b * v * d,
    )

    # -- backward, per-row sampled ids
    g2 = rng.standard_normal((b, k), dtype=np.float32)

    def numpy_per_row_bwd() -> Any:
        gx = np.einsum("bk,bkd->bd", g2, w[ids2])
        uniq, inv = np.unique(ids2, return_inverse=True)
        gw = np.zeros((len(uniq), d), dtype=np.float32)
        np.add.at(gw, inv.reshape(-1), (g2[..., None] * x[:, None, :]).reshape(-1, d))
        return gx, uniq, gw

    cases = {
        "ours attend_backward(x, g, ids[B, k])": lambda: emb.attend_backward(x, g2, ids2),
        "numpy einsum + unique + add.at": numpy_per_row_bwd,
    }
    report(
        f"attend_backward, {k} sampled ids per row",
        bench(cases, rounds),
        "ours attend_backward(x, g, ids[B, k])",
    )

    # -- transformed lookups
    n = 32 * 512
    lids = rng.integers(0, v, n)
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    cases = {
        "ours emb(ids)": lambda: emb(lids),
        "ours emb(ids, normalize=True)": lambda: emb(lids, normalize=True),
        "ours emb(ids, dropout=0.1, seed=1)": lambda: emb(lids, dropout=0.1, seed=1),
        "numpy take / norm (precomputed norms)": lambda: (
            np.take(w, lids, 0) / np.take(norms, lids, 0)
        ),
        "numpy take + row norms": lambda: (lambda r: r / np.linalg.norm(r, axis=1, keepdims=True))(
            np.take(w, lids, 0)
        ),
    }
    report(
        f"lookup of {n} ids, transformed", bench(cases, rounds * 4), "ours emb(ids, normalize=True)"
    )


if __name__ == "__main__":
    main()

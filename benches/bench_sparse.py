"""Sparse backward / coalesce / index_add / optimizer steps: candle_embed vs NumPy peers (and
PyTorch peers when torch is importable), 1M x 128 float32 table, 16,384 int64 ids.

Interleaved rounds (every peer once per round, order rotated), medians, ratios ours/peer.
Run: python benches/bench_sparse.py [--rounds 15] [--vocab 1000000]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import candle_embed as ce
import numpy as np
from candle_embed import optim
from peers import settled

try:  # optional peer
    import torch
except ImportError:  # pragma: no cover
    torch = None


def bench(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in cases}
    names = list(cases)
    for f in cases.values():  # warm-up
        f()
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for k in order:
            times[k].append(settled(cases[k]))  # after an untimed call (peers.py)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def report(title: str, res: dict[str, float], ours: str) -> None:
    print(f"\n## {title}  (median ms; ratio = ours / peer)")
    for k, ms in res.items():
        ratio = "" if k == ours else f"  ratio {res[ours] / ms:.3f}"
        print(f"  {k:<48} {ms:9.3f}{ratio}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--vocab", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--n", type=int, default=16_384)
    a = ap.parse_args()
    v, d, n = a.vocab, a.dim, a.n
    rng = np.random.default_rng(0)
    ids = rng.integers(0, v, size=n).astype(np.int64)
    g = rng.standard_normal((n, d)).astype(np.float32)
    print(f"V={v} D={d} N={n} float32; threads={ce.get_num_threads()}; torch={torch is not None}")

    emb = ce.Embedding(v, d, seed=0)

    def np_unique_add_at() -> object:
        u, inv = np.unique(ids, return_inverse=True)
        out = np.zeros((u.size, d), np.float32)
        np.add.at(out, inv, g)
        return u, out

    def np_sort_reduceat() -> object:
        order = np.argsort(ids, kind="stable")
        s = ids[order]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        return s[starts], np.add.reduceat(g[order], starts, axis=0)

    cases: dict[str, Callable[[], object]] = {
        "candle_embed emb.backward (coalesced)": lambda: emb.backward(ids, g),
        "candle_embed ce.coalesce": lambda: ce.coalesce(ids, g),
        "numpy unique + add.at": np_unique_add_at,
        "numpy argsort + add.reduceat": np_sort_reduceat,
    }
    if torch is not None:
        tids, tg = torch.from_numpy(ids), torch.from_numpy(g)
        temb = torch.nn.Embedding(v, d, sparse=True)
        tidx = tids.clone()

        def t_unique_index_add() -> object:
            u, inv = torch.unique(tids, return_inverse=True)
            return u, torch.zeros(u.numel(), d).index_add_(0, inv, tg)

        def t_sparse_bwd() -> object:
            temb.weight.grad = None
            temb(tidx).backward(tg)
            return temb.weight.grad.coalesce()

        cases["torch unique + index_add_"] = t_unique_index_add
        cases["torch nn.Embedding(sparse) bwd + coalesce"] = t_sparse_bwd
    res = bench(cases, a.rounds)
    report("sparse backward + coalesce", res, "candle_embed emb.backward (coalesced)")

    dst = np.zeros((v, d), np.float32)
    buf = np.zeros((v, d), np.float32)

    def np_add_at_reused() -> object:
        np.add.at(buf, ids, g)
        return buf

    cases = {
        "candle_embed ce.index_add (new array)": lambda: ce.index_add(dst, ids, g),
        "numpy copy + add.at": lambda: np.add.at(dst.copy(), ids, g),
        "numpy add.at into reused buffer": np_add_at_reused,
    }
    if torch is not None:
        tbuf = torch.zeros(v, d)
        cases["torch index_add_ into reused buffer"] = lambda: tbuf.index_add_(0, tids, tg)
        tdst = torch.from_numpy(dst)
        cases["torch index_add (new tensor)"] = lambda: tdst.index_add(0, tids, tg)
    res = bench(cases, max(5, a.rounds // 2))
    report("dense index_add", res, "candle_embed ce.index_add (new array)")

    grad = emb.backward(ids, g)
    u, gv = grad.indices, grad.values
    opt = optim.SparseAdam(emb, lr=1e-3)
    w = emb.weight
    m = np.zeros_like(w)
    s2 = np.zeros_like(w)
    step = [0]

    def np_sparse_adam() -> object:
        step[0] += 1
        t = step[0]
        m[u] += (1 - 0.9) * (gv - m[u])
        s2[u] += (1 - 0.999) * (gv * gv - s2[u])
        w[u] -= 1e-3 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m[u] / (np.sqrt(s2[u]) + 1e-8)
        return w

    cases = {
        "candle_embed optim.SparseAdam.step": lambda: opt.step(grad),
        "numpy sparse Adam (fancy indexing)": np_sparse_adam,
    }
    sgd_emb = ce.Embedding(v, d, seed=1)
    sgd = optim.SGD(sgd_emb, 0.01)
    cases["candle_embed optim.SGD.step"] = lambda: sgd.step(grad)
    if torch is not None:
        tp = torch.nn.Parameter(torch.zeros(v, d))
        topt = torch.optim.SparseAdam([tp], lr=1e-3)
        tgrad = torch.sparse_coo_tensor(
            torch.from_numpy(u)[None], torch.from_numpy(gv), (v, d)
        ).coalesce()

        def t_adam() -> object:
            tp.grad = tgrad
            topt.step()
            return tp

        cases["torch optim.SparseAdam.step"] = t_adam
    res = bench(cases, a.rounds)
    report("optimizer step", res, "candle_embed optim.SparseAdam.step")
    if torch is None:
        print(
            "\n(torch is not importable here: torch figures for this machine are in"
            " /work/shared/reference/perf-baseline.md)"
        )


if __name__ == "__main__":
    main()

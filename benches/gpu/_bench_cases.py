"""The cases of bench_gpu.py. Each builder makes its data once (the same bytes for every peer)
and returns ``({label: call(i)}, info)`` with ``candle_embed`` first; device-level PyTorch peers
synchronise before returning, so a wall clock around one call times its device work."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import candle_embed as ce
import numpy as np
from candle_embed import optim

Peers = dict[str, Callable[[int], object]]
Builder = Callable[[str, Any], tuple[Peers, dict[str, Any]]]


def sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"rows": 2_000, "dim": 16, "n": 512, "bags": 64}
    # A 512 MB table and 128 MB of rows per lookup: well past the H200's 60 MB L2.
    return {"rows": 1_000_000, "dim": 128, "n": 1 << 18, "bags": 1 << 14}


def data(s: dict[str, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((s["rows"], s["dim"]), dtype=np.float32)
    ids = rng.integers(0, s["rows"], s["n"], dtype=np.int64)
    return w, ids


def trainable(
    s: dict[str, int], seed: int, device: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ce.Embedding]:
    """Table, ids, an upstream gradient for them, and a trainable table on `device`."""
    w, ids = data(s)
    grad = np.random.default_rng(seed).standard_normal((ids.size, s["dim"]), dtype=np.float32)
    return w, ids, grad, ce.Embedding.from_pretrained(w, freeze=False, device=device)


def device_call(torch: Any, device: str, f: Callable[[], object]) -> Callable[[int], object]:
    """`f` on device-resident inputs, waited for (no host copy of its result)."""
    on_gpu = device.startswith("cuda")

    def call(_: int) -> object:
        out = f()
        if on_gpu:
            torch.cuda.synchronize()
        return out

    return call


def lookup(s: dict[str, int]) -> Builder:
    def build(device: str, torch: Any) -> tuple[Peers, dict[str, Any]]:
        w, ids = data(s)
        emb = ce.Embedding.from_pretrained(w, device=device)
        np.testing.assert_array_equal(emb(ids[:64]), w[ids[:64]])
        peers: Peers = {"candle_embed": lambda i: emb(ids)}
        info = {"row_bytes_moved": 2 * ids.size * s["dim"] * 4, **s}
        if torch is not None:
            d = torch.device(device)
            wt, it = torch.from_numpy(w).to(d), torch.from_numpy(ids).to(d)
            emb_t = torch.nn.functional.embedding
            src = torch.empty(ids.size * s["dim"], dtype=torch.float32, device=d)
            dst = torch.empty_like(src)
            peers["torch_api"] = lambda i: emb_t(torch.from_numpy(ids).to(d), wt).cpu().numpy()
            peers["torch_device"] = device_call(torch, device, lambda: emb_t(it, wt))
            peers["torch_copy_same_bytes"] = device_call(torch, device, lambda: dst.copy_(src))
        return peers, info

    return build


def backward(s: dict[str, int]) -> Builder:
    def build(device: str, torch: Any) -> tuple[Peers, dict[str, Any]]:
        w, ids, grad, emb = trainable(s, 1, device)

        def ours(i: int) -> object:
            g = emb.backward(ids, grad)
            return g.indices, g.values

        peers: Peers = {"candle_embed": ours}
        if torch is not None:
            d = torch.device(device)
            it, gt = torch.from_numpy(ids).to(d), torch.from_numpy(grad).to(d)

            def coalesce(i: Any, g: Any) -> tuple[Any, Any]:
                uniq, inv = torch.unique(i, return_inverse=True)
                out = torch.zeros((uniq.numel(), g.shape[1]), dtype=g.dtype, device=d)
                return uniq, out.index_add_(0, inv, g)

            def torch_api(i: int) -> object:
                u, v = coalesce(torch.from_numpy(ids).to(d), torch.from_numpy(grad).to(d))
                return u.cpu().numpy(), v.cpu().numpy()

            peers["torch_api"] = torch_api
            peers["torch_device"] = device_call(torch, device, lambda: coalesce(it, gt))
        return peers, dict(s)

    return build


def bag(s: dict[str, int]) -> Builder:
    def build(device: str, torch: Any) -> tuple[Peers, dict[str, Any]]:
        w, ids = data(s)
        offsets = np.sort(np.random.default_rng(2).integers(0, ids.size, s["bags"]))
        offsets[0] = 0
        b = ce.EmbeddingBag.from_pretrained(w, mode="sum", device=device)
        peers: Peers = {"candle_embed": lambda i: b(ids, offsets)}
        if torch is not None:
            d = torch.device(device)
            wt, it, ot = (torch.from_numpy(a).to(d) for a in (w, ids, offsets))
            bag_t = torch.nn.functional.embedding_bag

            def torch_api(i: int) -> object:
                i_d, o_d = torch.from_numpy(ids).to(d), torch.from_numpy(offsets).to(d)
                return bag_t(i_d, wt, o_d, mode="sum").cpu().numpy()

            peers["torch_api"] = torch_api
            peers["torch_device"] = device_call(
                torch, device, lambda: bag_t(it, wt, ot, mode="sum")
            )
        return peers, dict(s)

    return build


def sparse_adam(s: dict[str, int]) -> Builder:
    def build(device: str, torch: Any) -> tuple[Peers, dict[str, Any]]:
        w, ids, grad, emb = trainable(s, 3, device)
        g = emb.backward(ids, grad)
        opt = optim.SparseAdam([emb], lr=1e-3)
        probe = np.zeros(1, dtype=np.int64)

        def ours(i: int) -> object:
            opt.step(g)
            return emb(probe)  # a one-row lookup: waits for the step's device work

        peers: Peers = {"candle_embed": ours}
        info = {"nnz": g.nnz, **s}
        if torch is not None:
            d = torch.device(device)
            p = torch.nn.Parameter(torch.from_numpy(w).to(d))
            gi = torch.from_numpy(g.indices).to(d).unsqueeze(0)
            gv = torch.from_numpy(g.values).to(d)
            p.grad = torch.sparse_coo_tensor(gi, gv, w.shape, check_invariants=False).coalesce()
            topt = torch.optim.SparseAdam([p], lr=1e-3)
            peers["torch_device"] = device_call(torch, device, topt.step)
        return peers, info

    return build


def all_cases(quick: bool) -> Iterator[tuple[str, Builder]]:
    s = sizes(quick)
    yield "lookup", lookup(s)
    yield "backward_coalesce", backward(s)
    yield "embedding_bag_sum", bag(s)
    yield "sparse_adam_step", sparse_adam(s)

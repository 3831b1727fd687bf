"""Per-device behaviour of the ops that exist on every backend: results match a NumPy reference
on every device, and the one error policy (IndexError before any kernel, state unchanged, the
device still usable afterwards) holds on CPU, CUDA and Metal alike."""

from __future__ import annotations

import candle_embed as ce
import numpy as np
import pytest
from candle_embed import optim
from candle_embed._native import _testing


def _table(rows: int = 50, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


def test_devices_lists_cpu_first() -> None:
    names = ce.devices()
    assert names[0] == "cpu"
    assert all(n == "cpu" or n.split(":")[0] in ("cuda", "metal") for n in names)


@pytest.mark.parametrize("ids_dtype", [np.int32, np.int64, np.uint8, np.uint64])
def test_lookup_matches_numpy(device: str, ids_dtype: type) -> None:
    w = _table()
    emb = ce.Embedding.from_pretrained(w, device=device)
    assert emb.device == device
    ids = np.array([[3, 0, 49], [7, 7, 1]], dtype=ids_dtype)
    np.testing.assert_array_equal(emb(ids), w[ids.astype(np.int64)])
    np.testing.assert_array_equal(_testing.lookup_portable(emb, ids), w[ids.astype(np.int64)])


def test_lookup_into_out(device: str) -> None:
    w = _table()
    emb = ce.Embedding.from_pretrained(w, device=device)
    out = np.empty((4, 8), dtype=np.float32)
    ids = np.array([5, 4, 3, 2])
    res = emb(ids, out=out)
    np.testing.assert_array_equal(out, w[ids])
    np.testing.assert_array_equal(res, w[ids])


@pytest.mark.parametrize("bad", [50, -1, 2**40])
def test_out_of_range_is_index_error_and_device_stays_usable(device: str, bad: int) -> None:
    w = _table()
    emb = ce.Embedding.from_pretrained(w, device=device)
    ids = np.array([1, bad, 2], dtype=np.int64)
    with pytest.raises(IndexError, match=str(bad)):
        emb(ids)
    with pytest.raises(IndexError):
        _testing.lookup_portable(emb, ids)
    with pytest.raises(ce.CandleEmbedError):
        emb(ids)
    # Nothing changed and the device still works (a CUDA device-side assert would kill it).
    np.testing.assert_array_equal(emb.weight, w)
    np.testing.assert_array_equal(emb(np.array([1, 2])), w[[1, 2]])


def test_float_ids_are_type_error(device: str) -> None:
    emb = ce.Embedding.from_pretrained(_table(), device=device)
    with pytest.raises(TypeError):
        emb(np.array([1.0, 2.0]))


def test_weight_round_trip_and_save_load(device: str, tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    w = _table(seed=1)
    emb = ce.Embedding(50, 8, device=device, seed=3)
    emb.weight = w
    np.testing.assert_array_equal(emb.weight, w)
    path = tmp_path / "t.safetensors"
    emb.save(path)
    back = ce.Embedding.load(path, device=device)
    assert back.device == device
    np.testing.assert_array_equal(back.weight, w)


def test_max_norm_on_device(device: str) -> None:
    w = _table() * 10
    emb = ce.Embedding.from_pretrained(w, max_norm=1.0, device=device)
    ids = np.array([4, 9, 4])
    y = emb(ids)
    norms = np.linalg.norm(y.astype(np.float64), axis=1)
    assert np.all(norms <= 1.0 + 1e-5)
    want = w[ids] * (1.0 / (np.linalg.norm(w[ids].astype(np.float64), axis=1) + 1e-7))[:, None]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["cuda:0", "metal:0"])
def test_missing_backend_is_value_error_naming_the_feature(name: str) -> None:
    if name in ce.devices():
        pytest.skip(f"{name} is available in this build")
    kind = name.split(":")[0]
    with pytest.raises(ValueError, match=kind):
        ce.Embedding(4, 2, device=name)


# --- the ops wired to the CUDA kernels (scripts/gpu-bundle.sh runs these on cuda:0 with the
# --- kernels off and on): each against a float64 NumPy reference of its formula


def _bags_reference(
    w: np.ndarray,
    ids: np.ndarray,
    offsets: np.ndarray,
    mode: str,
    weights: np.ndarray | None,
    padding: int,
) -> np.ndarray:
    w64 = w.astype(np.float64)
    bounds = list(offsets) + [len(ids)]
    out = np.zeros((len(offsets), w.shape[1]))
    for b in range(len(offsets)):
        pos = [p for p in range(bounds[b], bounds[b + 1]) if ids[p] != padding]
        if not pos:
            continue
        rows = w64[ids[pos]] * (1.0 if weights is None else weights[pos, None])
        out[b] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0)}[mode]
    return out


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_forward_and_backward_match_numpy(device: str, mode: str) -> None:
    w = _table(seed=2)
    ids = np.array([1, 5, 5, 0, 49, 3, 3, 3, 7, 0, 12])
    offsets = np.array([0, 3, 3, 5])  # bag 1 is empty
    weights = np.linspace(-1.0, 1.5, len(ids)).astype(np.float32) if mode == "sum" else None
    bag = ce.EmbeddingBag.from_pretrained(w, mode=mode, padding_idx=3, device=device)
    y = bag(ids, offsets, weights)
    want = _bags_reference(w, ids, offsets, mode, weights, padding=3)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    if mode == "max":
        return
    g = np.random.default_rng(3).standard_normal((4, 8)).astype(np.float32)
    grad = bag.backward(ids, g, offsets, weights)
    dense = np.zeros((50, 8))
    bounds = list(offsets) + [len(ids)]
    for b in range(4):
        pos = [p for p in range(bounds[b], bounds[b + 1]) if ids[p] != 3]
        for p in pos:
            s = weights[p] if weights is not None else (1.0 if mode == "sum" else 1 / len(pos))
            dense[ids[p]] += s * g[b]
    np.testing.assert_array_equal(grad.indices, np.unique(ids[ids != 3]))
    np.testing.assert_allclose(grad.to_dense(), dense, rtol=1e-5, atol=1e-6)
    # A bad id is an IndexError before any kernel; the bag still works afterwards.
    with pytest.raises(IndexError):
        bag(np.array([0, 50]), np.array([0]))
    np.testing.assert_allclose(bag(ids, offsets, weights), want, rtol=1e-5, atol=1e-6)


def test_backward_matches_numpy(device: str) -> None:
    emb = ce.Embedding.from_pretrained(_table(), scale_grad_by_freq=True, device=device)
    ids = np.array([[4, 9, 4], [0, 9, 4]])
    g = np.random.default_rng(4).standard_normal((2, 3, 8)).astype(np.float32)
    grad = emb.backward(ids, g)
    flat, gf = ids.ravel(), g.reshape(-1, 8).astype(np.float64)
    uniq = np.unique(flat)
    want = np.stack([gf[flat == u].sum(0) / (flat == u).sum() for u in uniq])
    np.testing.assert_array_equal(grad.indices, uniq)
    np.testing.assert_allclose(grad.values, want, rtol=1e-5, atol=1e-6)


def test_optimizer_steps_on_device_match_numpy_and_the_cpu(device: str) -> None:
    """SGD with momentum: the float64 formula; SparseAdam: bit-identical to the same steps on a
    CPU table (tables off the CPU are stepped through the host with the same rule)."""
    w0 = _table(seed=5)
    grads = [
        (np.array([1, 4, 9]), np.random.default_rng(s).standard_normal((3, 8)).astype(np.float32))
        for s in range(3)
    ]
    emb = ce.Embedding.from_pretrained(w0, freeze=False, device=device)
    opt = optim.SGD(emb, lr=0.1, momentum=0.9)
    want, buf = w0.astype(np.float64), np.zeros((50, 8))
    for i, (rows, g) in enumerate(grads):
        opt.step(ce.SparseGrad.from_rows(rows, g, 50))
        buf[rows] = g if i == 0 else 0.9 * buf[rows] + g
        want[rows] -= 0.1 * buf[rows]
    np.testing.assert_allclose(emb.weight, want, rtol=1e-5, atol=1e-6)

    def adam_on(dev: str) -> np.ndarray:
        e = ce.Embedding.from_pretrained(w0, freeze=False, device=dev)
        o = optim.SparseAdam(e, lr=0.01)
        for rows, g in grads:
            o.step(ce.SparseGrad.from_rows(rows, g, 50))
        return e.weight

    np.testing.assert_array_equal(adam_on(device), adam_on("cpu"))

"""Per-device behaviour of the ops that exist on every backend: results match a NumPy reference
on every device, and the one error policy (IndexError before any kernel, state unchanged, the
device still usable afterwards) holds on CPU, CUDA and Metal alike."""

from __future__ import annotations

import candle_embed as ce
import numpy as np
import pytest
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

"""``EmbeddingBag(scale_grad_by_freq=True)`` (issue #18 item 4) against a float64 NumPy
reference of PyTorch's rule (``_embedding_bag_dense_backward_cpu_sum_mean``: each lookup's
gradient row is scaled by its per-sample weight or ``1/bag_size`` and by ``1/count`` of its id
over the whole call; ``F.embedding_bag`` refuses the flag for ``mode="max"``)."""

from __future__ import annotations

from pathlib import Path

import candle_embed as ce
import numpy as np
import pytest

RNG = np.random.default_rng(184)


def bag_grad_ref(
    ids: np.ndarray,
    offsets: np.ndarray,
    grad: np.ndarray,
    num_rows: int,
    mode: str,
    weights: np.ndarray | None = None,
    padding_idx: int | None = None,
    scale_grad_by_freq: bool = True,
) -> np.ndarray:
    """Dense gradient of the table, written from the formula (1-D ids, CSR offsets)."""
    bounds = np.append(offsets, len(ids))
    counts = np.bincount(
        ids[ids != padding_idx] if padding_idx is not None else ids, minlength=num_rows
    )
    out = np.zeros((num_rows, grad.shape[1]))
    for b in range(len(offsets)):
        bag = range(bounds[b], bounds[b + 1])
        size = sum(1 for k in bag if ids[k] != padding_idx)
        for k in bag:
            i = ids[k]
            if i == padding_idx:
                continue
            s = 1.0
            if weights is not None:
                s = float(weights[k])
            if mode == "mean":
                s /= size
            if scale_grad_by_freq:
                s /= counts[i]
            out[i] += s * grad[b]
    return out


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_scale_grad_by_freq_matches_reference(mode: str, dtype: str) -> None:
    v, d = 12, 5
    bag = ce.EmbeddingBag(v, d, mode=mode, scale_grad_by_freq=True, dtype=dtype, seed=1)
    assert bag.scale_grad_by_freq
    ids = np.array([3, 3, 7, 1, 3, 7, 7, 7, 0, 11, 3])  # repeated within and across bags
    offsets = np.array([0, 2, 2, 6, 9])  # an empty bag included
    grad = RNG.standard_normal((5, d))
    got = bag.backward(ids, grad.astype(dtype), offsets).to_dense()
    want = bag_grad_ref(ids, offsets, grad, v, mode)
    tol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    # the flag changes the result (the test would fail if it were ignored)
    plain = bag_grad_ref(ids, offsets, grad, v, mode, scale_grad_by_freq=False)
    assert not np.allclose(got, plain)
    # the forward does not depend on the flag
    same = ce.EmbeddingBag.from_pretrained(bag.weight, mode=mode)
    np.testing.assert_array_equal(bag(ids, offsets), same(ids, offsets))


def test_scale_grad_by_freq_with_weights_padding_and_2d_ids() -> None:
    v, d = 9, 4
    bag = ce.EmbeddingBag(
        v, d, mode="sum", padding_idx=2, scale_grad_by_freq=True, dtype="float64", seed=2
    )
    ids = RNG.integers(0, v, (6, 7))
    ids[0, :3] = 2
    w = RNG.standard_normal(ids.shape)
    grad = RNG.standard_normal((6, d))
    got = bag.backward(ids, grad, per_sample_weights=w)
    assert 2 not in got.indices
    offsets = np.arange(0, 42, 7)
    want = bag_grad_ref(ids.reshape(-1), offsets, grad, v, "sum", w.reshape(-1), padding_idx=2)
    np.testing.assert_allclose(got.to_dense(), want, rtol=1e-12, atol=1e-12)
    mean = ce.EmbeddingBag.from_pretrained(
        bag.weight, mode="mean", padding_idx=2, scale_grad_by_freq=True, freeze=False
    )
    want = bag_grad_ref(ids.reshape(-1), offsets, grad, v, "mean", padding_idx=2)
    np.testing.assert_allclose(mean.backward(ids, grad).to_dense(), want, rtol=1e-12, atol=1e-12)


def test_max_mode_refuses_scale_grad_by_freq() -> None:
    # torch.nn.functional.embedding_bag: "max mode does not support scaling the gradient by
    # the frequency"
    for make in (
        lambda: ce.EmbeddingBag(4, 2, mode="max", scale_grad_by_freq=True),
        lambda: ce.EmbeddingBag.from_pretrained(
            np.ones((4, 2), np.float32), mode="max", scale_grad_by_freq=True
        ),
    ):
        with pytest.raises(ValueError, match="max mode") as e:
            make()
        assert isinstance(e.value, ce.CandleEmbedError)
    assert not ce.EmbeddingBag(4, 2, mode="max").scale_grad_by_freq


def test_save_load_keeps_the_flag(tmp_path: Path) -> None:
    bag = ce.EmbeddingBag(10, 3, mode="sum", scale_grad_by_freq=True, seed=3)
    path = tmp_path / "bag.safetensors"
    bag.save(path)
    back = ce.EmbeddingBag.load(path)
    assert back.scale_grad_by_freq and back.mode == "sum"
    ids, offsets = np.array([1, 1, 4, 1]), np.array([0, 3])
    grad = RNG.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        back.backward(ids, grad, offsets).to_dense(), bag.backward(ids, grad, offsets).to_dense()
    )
    # an Embedding file carries the same flag for the table
    assert ce.Embedding.load(path).scale_grad_by_freq
    plain = ce.EmbeddingBag(10, 3, seed=3)
    plain.save(path)
    assert not ce.EmbeddingBag.load(path).scale_grad_by_freq
    # a forged file asking for max mode with the flag is refused (ValueError), not half-loaded
    ce.Embedding(10, 3, scale_grad_by_freq=True, seed=3).save(path)
    _force_mode_max(path)
    with pytest.raises(ValueError, match="max mode"):
        ce.EmbeddingBag.load(path)


def _force_mode_max(path: Path) -> None:
    """Rewrite the safetensors metadata of ``path`` to carry ``mode="max"``."""
    import json
    import struct

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    config = json.loads(header["__metadata__"]["candle_embed.config"])
    config["mode"] = "max"
    header["__metadata__"]["candle_embed.config"] = json.dumps(config)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])

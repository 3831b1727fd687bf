"""Absolute-position parity with transformers (issue #18 items 2-3, #19 class 10), against
float64 NumPy references written here:

- ``SinusoidalPositionalEncoding(layout="tensor2tensor")``: fairseq / M2M100 / Speech2Text
  ``SinusoidalPositionalEmbedding.get_embedding`` (``log(base)/(half_dim - 1)`` spacing, sines
  then cosines, a zero column for an odd dim);
- ``TransformerEmbeddings(position_padding_idx=p)``: RoBERTa's position table
  (``nn.Embedding(..., padding_idx=p)``) and ``create_position_ids_from_input_ids``;
- the forward's state handed to ``backward`` explicitly, so threads can share one module.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed._native import _testing

RNG = np.random.default_rng(1918)

# ----------------------------------------------------------------------------- references


def get_embedding_ref(num_embeddings: int, embedding_dim: int, base: float = 1e4) -> np.ndarray:
    """fairseq's / transformers' M2M100 ``SinusoidalPositionalEmbedding.get_embedding`` in
    float64 (``max(half - 1, 1)``: tensor2tensor's guard where fairseq would divide by 0)."""
    half_dim = embedding_dim // 2
    emb = math.log(base) / max(half_dim - 1, 1)
    freqs = np.exp(np.arange(half_dim, dtype=np.float64) * -emb)
    ang = np.arange(num_embeddings, dtype=np.float64)[:, None] * freqs[None, :]
    out = np.concatenate([np.sin(ang), np.cos(ang)], axis=1)
    if embedding_dim % 2 == 1:
        out = np.concatenate([out, np.zeros((num_embeddings, 1))], axis=1)
    return out


def roberta_position_ids_ref(ids: np.ndarray, padding_idx: int) -> np.ndarray:
    """transformers' ``create_position_ids_from_input_ids`` (past_key_values_length = 0)."""
    mask = (ids != padding_idx).astype(np.int64)
    return np.cumsum(mask, axis=-1) * mask + padding_idx


def bert_forward_ref(
    te: ce.TransformerEmbeddings, ids: np.ndarray, pids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LayerNorm(token[ids] + position[pids] + segment[0]) in float64: ``(y, x̂, rstd)``."""
    e = te.token.weight[ids] + te.position.weight[pids] + te.segment.weight[0]
    e = e.astype(np.float64)
    mean = e.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((e - mean) ** 2).mean(-1, keepdims=True) + te.layer_norm_eps)
    xhat = (e - mean) * rstd
    return xhat * te.layer_norm_weight + te.layer_norm_bias, xhat, rstd


def dense_grad_ref(
    te: ce.TransformerEmbeddings,
    ids: np.ndarray,
    pids: np.ndarray,
    grad: np.ndarray,
    skip: dict[str, int | None],
) -> dict[str, np.ndarray]:
    """The LayerNorm backward, scattered to each table (``skip``: its row with no gradient)."""
    _, xhat, rstd = bert_forward_ref(te, ids, pids)
    dx = grad * te.layer_norm_weight
    de = rstd * (dx - dx.mean(-1, keepdims=True) - xhat * (dx * xhat).mean(-1, keepdims=True))
    out = {}
    for name, rows in (("token", ids), ("position", pids)):
        table = getattr(te, name)
        dense = np.zeros((table.num_embeddings, te.dim))
        np.add.at(dense, rows.reshape(-1), de.reshape(-1, te.dim))
        if skip[name] is not None:
            dense[skip[name]] = 0.0
        out[name] = dense
    out["layer_norm_bias"] = grad.reshape(-1, te.dim).sum(0)
    out["layer_norm_weight"] = (grad * xhat).reshape(-1, te.dim).sum(0)
    return out


def check_grads(got: dict[str, Any], want: dict[str, np.ndarray], atol: float) -> None:
    for k in ("token", "position"):
        np.testing.assert_allclose(got[k].to_dense(), want[k], atol=atol, err_msg=k)
    for k in ("layer_norm_weight", "layer_norm_bias"):
        np.testing.assert_allclose(got[k], want[k], atol=atol, err_msg=k)


# ----------------------------------------------------------------------------- tensor2tensor


def test_tensor2tensor_reference_vector() -> None:
    # semantics.md §3.1, d=4, pos=1: the second frequency is 1e-4 (not Vaswani's 1e-2)
    pe = ce.SinusoidalPositionalEncoding(4, max_len=2, layout="tensor2tensor", dtype="float64")
    assert pe.layout == "tensor2tensor"
    np.testing.assert_allclose(pe.table[1], [0.841471, 1.0e-4, 0.540302, 0.99999999], atol=1e-6)
    np.testing.assert_array_equal(pe.table[0], [0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "shape", [(1, 1), (5, 2), (5, 3), (37, 6), (40, 7), (300, 64), (1026, 1024), (8192, 512)]
)
def test_tensor2tensor_table_matches_get_embedding(shape: tuple[int, int]) -> None:
    max_len, dim = shape
    ref = get_embedding_ref(max_len, dim)
    pe64 = ce.SinusoidalPositionalEncoding(
        dim, max_len=max_len, layout="tensor2tensor", dtype="float64"
    )
    np.testing.assert_allclose(pe64.table, ref, rtol=0, atol=4e-12)
    if dim % 2 == 1:
        np.testing.assert_array_equal(pe64.table[:, -1], 0.0)
    t32 = ce.SinusoidalPositionalEncoding(dim, max_len=max_len, layout="tensor2tensor").table
    np.testing.assert_allclose(t32, ref.astype(np.float32), rtol=0, atol=6e-8)
    np.testing.assert_allclose(
        _testing.sinusoidal_table_portable(pe64), pe64.table, rtol=0, atol=4e-12
    )


def test_tensor2tensor_base_forward_and_bad_input() -> None:
    pe = ce.SinusoidalPositionalEncoding(
        9, max_len=30, base=500.0, layout="tensor2tensor", dtype="float64"
    )
    ref = get_embedding_ref(30, 9, 500.0)
    np.testing.assert_allclose(pe.table, ref, atol=1e-13)
    x = RNG.standard_normal((2, 10, 9))
    np.testing.assert_allclose(pe(x, offset=4), x + ref[4:14], atol=1e-13)
    assert "tensor2tensor" in repr(pe)
    for dim in (7, 1):  # odd dims stay refused for the other layouts
        for layout in ("interleaved", "concat"):
            with pytest.raises(ValueError, match="even"):
                ce.SinusoidalPositionalEncoding(dim, layout=layout)
    with pytest.raises(ValueError):
        ce.SinusoidalPositionalEncoding(0, layout="tensor2tensor")
    with pytest.raises(ValueError, match="tensor2tensor"):
        ce.SinusoidalPositionalEncoding(8, layout="t2t")


# ----------------------------------------------------------------------------- RoBERTa positions


def roberta(**kw: Any) -> ce.TransformerEmbeddings:
    args: dict[str, Any] = {"max_positions": 20, "padding_idx": 1, "position_padding_idx": 1}
    args.update(kw)
    te = ce.TransformerEmbeddings(30, 8, seed=3, dtype="float64", layer_norm_eps=1e-5, **args)
    te.layer_norm_weight = RNG.standard_normal(8)
    te.layer_norm_bias = RNG.standard_normal(8)
    return te


def test_roberta_position_table_and_default_positions() -> None:
    te = roberta()
    assert te.position_padding_idx == 1 and te.position.padding_idx == 1
    np.testing.assert_array_equal(te.position.weight[1], 0.0)
    assert np.all(np.abs(te.position.weight[2:]).sum(1) > 0)
    ids = np.array([[0, 5, 6, 7, 2, 1, 1], [0, 8, 9, 2, 1, 1, 1], [0, 4, 4, 4, 4, 4, 2]])
    pids = roberta_position_ids_ref(ids, 1)
    assert pids[0].tolist() == [2, 3, 4, 5, 6, 1, 1]
    y = te(ids)
    want, _, _ = bert_forward_ref(te, ids, pids)
    np.testing.assert_allclose(y, want, atol=1e-10)
    np.testing.assert_array_equal(te(ids, position_ids=pids), y)
    grad = RNG.standard_normal(y.shape)
    got = te.backward(grad)
    # padding positions (and the token padding row) get no gradient, as HF's nn.Embedding
    assert 1 not in got["position"].indices and 1 not in got["token"].indices
    check_grads(got, dense_grad_ref(te, ids, pids, grad, {"token": 1, "position": 1}), 1e-10)


def test_position_padding_without_token_padding_counts_every_token() -> None:
    # HF's create_position_ids_from_inputs_embeds: padding_idx + 1 ... padding_idx + T
    te = roberta(padding_idx=None, position_padding_idx=0)
    ids = RNG.integers(0, 30, (2, 6))
    pids = np.broadcast_to(np.arange(1, 7), ids.shape)
    y = te(ids)
    np.testing.assert_allclose(y, bert_forward_ref(te, ids, pids)[0], atol=1e-10)
    # explicit positions that hit the padding row still send it nothing
    explicit = np.array([0, 0, 3, 4, 0, 5])
    g = te.backward(np.ones_like(te(ids, position_ids=explicit)))
    assert 0 not in g["position"].indices
    want = dense_grad_ref(
        te,
        ids,
        np.broadcast_to(explicit, ids.shape),
        np.ones(y.shape),
        {"token": None, "position": 0},
    )
    check_grads(g, want, 1e-10)


def test_position_padding_sinusoidal_float32_negative_and_bad_input() -> None:
    te = ce.TransformerEmbeddings(
        10, 8, max_positions=12, position="sinusoidal", position_padding_idx=-12
    )
    assert te.position_padding_idx == 0
    np.testing.assert_array_equal(te.position.weight[0], 0.0)  # fairseq zeroes the padding row
    assert te.position.frozen
    te = roberta(max_positions=8)
    ids = np.array([[0, 3, 4, 5, 6, 7]])  # positions 2..7: the last row of an 8-row table
    y = te(ids)
    before = te.backward(np.ones_like(y))
    weights = te.position.weight
    for call, exc in [
        (lambda: te(np.array([[0, 3, 4, 5, 6, 7, 8]])), IndexError),  # position 8
        (
            lambda: ce.TransformerEmbeddings(10, 4, max_positions=6, position_padding_idx=6),
            IndexError,
        ),
        (
            lambda: ce.TransformerEmbeddings(10, 4, max_positions=6, position_padding_idx=-7),
            IndexError,
        ),
    ]:
        with pytest.raises(exc) as e:
            call()
        assert isinstance(e.value, ce.CandleEmbedError)
    after = te.backward(np.ones_like(y))  # the last successful forward is kept
    np.testing.assert_array_equal(after["position"].to_dense(), before["position"].to_dense())
    np.testing.assert_array_equal(te.position.weight, weights)
    f32 = ce.TransformerEmbeddings(30, 8, padding_idx=1, position_padding_idx=1, seed=3)
    ids = np.array([[0, 5, 1, 1]])
    np.testing.assert_allclose(
        f32(ids), bert_forward_ref(f32, ids, roberta_position_ids_ref(ids, 1))[0], atol=1e-5
    )


# ----------------------------------------------------------------------------- explicit state


def test_state_pairs_each_backward_with_its_forward() -> None:
    te = roberta(padding_idx=None, position_padding_idx=None)
    a, b = RNG.integers(0, 30, (2, 5)), RNG.integers(0, 30, (3, 4))
    ya, sa = te(a, return_state=True)
    yb, sb = te(b, return_state=True)
    assert isinstance(sa, ce.TransformerEmbeddingsState)
    assert sa.shape == [2, 5] and sb.shape == [3, 4]
    assert repr(sa) == "TransformerEmbeddingsState(shape=[2, 5])"
    np.testing.assert_array_equal(ya, te(a))
    ga, gb = RNG.standard_normal(ya.shape), RNG.standard_normal(yb.shape)
    pa, pb = np.broadcast_to(np.arange(5), a.shape), np.broadcast_to(np.arange(4), b.shape)
    skip = {"token": None, "position": None}
    check_grads(te.backward(ga, state=sa), dense_grad_ref(te, a, pa, ga, skip), 1e-10)
    check_grads(te.backward(gb, state=sb), dense_grad_ref(te, b, pb, gb, skip), 1e-10)
    # state=None keeps the single-thread behaviour: the last forward (here te(a) above)
    check_grads(te.backward(ga), dense_grad_ref(te, a, pa, ga, skip), 1e-10)
    # a state is only accepted by its own module, with its own output shape
    other = roberta()
    with pytest.raises(ValueError, match="another"):
        other.backward(ga, state=sa)
    with pytest.raises(ValueError):
        te.backward(gb, state=sa)
    with pytest.raises(TypeError):
        te.backward(ga, state="not a state")  # type: ignore[arg-type]


def test_two_threads_share_one_module() -> None:
    te = roberta(padding_idx=None, position_padding_idx=None, dropout=0.3)
    batches = [RNG.integers(0, 30, (4, 6)) for _ in range(2)]
    grads = [RNG.standard_normal((4, 6, 8)) for _ in range(2)]
    both_forward = threading.Barrier(2)
    results: dict[int, tuple[np.ndarray, dict[str, Any], dict[str, Any]]] = {}

    def worker(k: int) -> None:
        y, state = te(batches[k], return_state=True)
        both_forward.wait()  # each backward runs after *both* forwards
        results[k] = (y, te.backward(grads[k], state=state), te.backward(grads[k]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wants = []
    for k in range(2):
        y, got, _ = results[k]
        # the dropout mask of this thread's forward: zeros of y, kept values scaled by 1/(1-p)
        mask = (y != 0) / 0.7
        np.testing.assert_allclose(
            got["layer_norm_bias"], (grads[k] * mask).reshape(-1, 8).sum(0), atol=1e-10
        )
        pids = np.broadcast_to(np.arange(6), batches[k].shape)
        skip = {"token": None, "position": None}
        wants.append(dense_grad_ref(te, batches[k], pids, grads[k] * mask, skip))
        check_grads(got, wants[k], 1e-9)
    # state=None: both threads differentiate the same forward, the last one (of either thread)
    masks = [(results[k][0] != 0) / 0.7 for k in range(2)]
    pids = np.broadcast_to(np.arange(6), batches[0].shape)

    def last_was(j: int, k: int) -> bool:
        skip = {"token": None, "position": None}
        ref = dense_grad_ref(te, batches[j], pids, grads[k] * masks[j], skip)
        return bool(np.allclose(results[k][2]["layer_norm_weight"], ref["layer_norm_weight"]))

    assert sum(all(last_was(j, k) for k in range(2)) for j in range(2)) == 1

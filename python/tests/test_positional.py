"""Positional encodings against float64 NumPy implementations of the formulas in
reference/semantics.md §3 (sinusoidal, learned, BERT embeddings, ALiBi, T5 buckets/bias)."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import candle_embed as ce
import numpy as np
import pytest
from candle_embed._native import _testing

# ----------------------------------------------------------------------------- references


def sinusoidal_ref(max_len: int, dim: int, base: float, layout: str) -> np.ndarray:
    pos = np.arange(max_len, dtype=np.float64)[:, None]
    w = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    ang = pos * w[None, :]
    out = np.empty((max_len, dim))
    if layout == "interleaved":
        out[:, 0::2] = np.sin(ang)
        out[:, 1::2] = np.cos(ang)
    else:
        out[:, : dim // 2] = np.sin(ang)
        out[:, dim // 2 :] = np.cos(ang)
    return out


def alibi_slopes_ref(n: int) -> list[float]:
    # ml-explore/mlx ALiBi.create_alibi_slope
    def pow2(m: int) -> list[float]:
        start = 2.0 ** (-(2.0 ** -(math.log2(m) - 3)))
        return [start * start**i for i in range(m)]

    if math.log2(n).is_integer():
        return pow2(n)
    c = 2 ** math.floor(math.log2(n))
    return pow2(c) + alibi_slopes_ref(2 * c)[0::2][: n - c]


def t5_bucket_ref(
    rel: np.ndarray, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> np.ndarray:
    # transformers T5Attention._relative_position_bucket, float32 log arithmetic as torch does it
    rel = np.asarray(rel, dtype=np.int64)
    ret = np.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        ret += (rel > 0).astype(np.int64) * num_buckets
        n = np.abs(rel)
    else:
        n = -np.minimum(rel, 0)
    max_exact = num_buckets // 2
    with np.errstate(divide="ignore"):
        ratio = n.astype(np.float32) / np.float32(max_exact)
        large = (
            np.log(ratio)
            / np.float32(math.log(max_distance / max_exact))
            * np.float32(num_buckets - max_exact)
        )
    large = max_exact + np.where(n < max_exact, 0, large).astype(np.int64)
    large = np.minimum(large, num_buckets - 1)
    return ret + np.where(n < max_exact, n, large)


def layer_norm_ref(e: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float):
    mean = e.mean(-1, keepdims=True)
    var = ((e - mean) ** 2).mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = (e - mean) * rstd
    return xhat * g + b, xhat, rstd


def scatter_rows(num_rows: int, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.zeros((num_rows, rows.shape[-1]))
    np.add.at(out, ids.reshape(-1), rows.reshape(-1, rows.shape[-1]))
    return out


# ----------------------------------------------------------------------------- sinusoidal


def test_sinusoidal_reference_vectors() -> None:
    # semantics.md §3.1, d=4, pos=1
    pe = ce.SinusoidalPositionalEncoding(4, max_len=2, dtype="float64")
    np.testing.assert_allclose(pe.table[1], [0.841471, 0.540302, 0.0099998, 0.99995], atol=1e-6)
    pe = ce.SinusoidalPositionalEncoding(4, max_len=2, layout="concat", dtype="float64")
    # concat layout keeps Vaswani's frequencies (1, 1e-2): [sin ω0, sin ω1, cos ω0, cos ω1]
    np.testing.assert_allclose(pe.table[1], [0.841471, 0.0099998, 0.540302, 0.99995], atol=1e-6)
    np.testing.assert_array_equal(pe.table[0], [0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("layout", ["interleaved", "concat"])
@pytest.mark.parametrize("shape", [(1, 2), (37, 6), (300, 64), (8192, 512)])
def test_sinusoidal_table_matches_float64(layout: str, shape: tuple[int, int]) -> None:
    max_len, dim = shape
    ref = sinusoidal_ref(max_len, dim, 10000.0, layout)
    pe64 = ce.SinusoidalPositionalEncoding(dim, max_len=max_len, layout=layout, dtype="float64")
    assert pe64.table.dtype == np.float64
    # the angle p*w is itself rounded (ulp(8192) = 1.8e-12), so float64 tables that compute
    # it differently agree to a few 1e-12 at large p
    np.testing.assert_allclose(pe64.table, ref, rtol=0, atol=4e-12)
    pe32 = ce.SinusoidalPositionalEncoding(dim, max_len=max_len, layout=layout)
    t32 = pe32.table
    assert t32.dtype == np.float32 and t32.shape == (max_len, dim)
    # computed in float64 then cast: at most one float32 rounding step from the exact value
    np.testing.assert_allclose(t32, ref.astype(np.float32), rtol=0, atol=6e-8)
    np.testing.assert_allclose(
        _testing.sinusoidal_table_portable(pe64), pe64.table, rtol=0, atol=4e-12
    )


def test_sinusoidal_base_and_thread_count_independence() -> None:
    ref = sinusoidal_ref(100, 8, 500.0, "interleaved")
    pe = ce.SinusoidalPositionalEncoding(8, max_len=100, base=500.0, dtype="float64")
    np.testing.assert_allclose(pe.table, ref, atol=1e-13)
    n = ce.get_num_threads()
    try:
        ce.set_num_threads(1)
        one = ce.SinusoidalPositionalEncoding(128, max_len=2000).table
        ce.set_num_threads(3)
        three = ce.SinusoidalPositionalEncoding(128, max_len=2000).table
    finally:
        ce.set_num_threads(n)
    np.testing.assert_array_equal(one, three)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sinusoidal_forward(dtype: str) -> None:
    rng = np.random.default_rng(0)
    pe = ce.SinusoidalPositionalEncoding(16, max_len=50, dtype=dtype)
    ref = sinusoidal_ref(50, 16, 10000.0, "interleaved")
    for shape, offset in [((5, 16), 0), ((2, 3, 7, 16), 10), ((4, 50, 16), 0), ((3, 0, 16), 50)]:
        x = rng.standard_normal(shape)
        y = pe(x.astype(dtype), offset=offset)
        assert y.dtype == np.dtype(dtype) and y.shape == shape
        t = shape[-2]
        np.testing.assert_allclose(y, x + ref[offset : offset + t], atol=1e-6)
    # strided input (a transposed view) is read correctly
    x = rng.standard_normal((16, 9)).astype(dtype).T
    np.testing.assert_allclose(pe(x, offset=3), x + ref[3:12], atol=1e-6)


def test_sinusoidal_bad_input() -> None:
    with pytest.raises(ValueError, match="even"):
        ce.SinusoidalPositionalEncoding(7)
    with pytest.raises(ValueError):
        ce.SinusoidalPositionalEncoding(0)
    with pytest.raises(ValueError):
        ce.SinusoidalPositionalEncoding(8, layout="rotate")
    with pytest.raises(ValueError):
        ce.SinusoidalPositionalEncoding(8, base=-1.0)
    with pytest.raises(TypeError):
        ce.SinusoidalPositionalEncoding(8, dtype="int32")
    pe = ce.SinusoidalPositionalEncoding(8, max_len=10)
    before = pe.table.copy()
    x = np.zeros((2, 4, 8), np.float32)
    with pytest.raises(IndexError):
        pe(x, offset=7)  # positions 7..10, table has 10
    with pytest.raises(IndexError):
        pe(x, offset=-1)
    with pytest.raises(IndexError):
        pe(np.zeros((0, 8), np.float32), offset=11)  # empty sequence, offset past the table
    with pytest.raises(ValueError, match="last dimension"):
        pe(np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError):
        pe(np.zeros(8, np.float32))
    with pytest.raises(TypeError):
        pe(x, offset=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pe(np.zeros((4, 8), np.complex64))
    assert isinstance(pytest.raises(IndexError, pe, x, offset=9).value, ce.CandleEmbedError)
    np.testing.assert_array_equal(pe.table, before)
    np.testing.assert_allclose(
        pe(x, offset=6)[0], sinusoidal_ref(10, 8, 1e4, "interleaved")[6:], atol=1e-7
    )


def test_sinusoidal_threads() -> None:
    pe = ce.SinusoidalPositionalEncoding(64, max_len=512)
    x = np.random.default_rng(1).standard_normal((8, 512, 64)).astype(np.float32)
    want = x + pe.table
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda _: pe(x), range(8)))
    for o in outs:
        np.testing.assert_array_equal(o, want)


# ----------------------------------------------------------------------------- learned


def test_learned_forward_backward() -> None:
    rng = np.random.default_rng(2)
    lpe = ce.LearnedPositionalEmbedding(20, 6, seed=3, dtype="float64")
    w = lpe.weight
    assert w.shape == (20, 6)
    w32 = ce.LearnedPositionalEmbedding(20, 6, seed=3).weight
    np.testing.assert_array_equal(w32, w.astype(np.float32))
    x = rng.standard_normal((2, 3, 5, 6))
    np.testing.assert_allclose(lpe(x, 4), x + w[4:9], atol=1e-14)
    g = rng.standard_normal(x.shape)
    sg = lpe.backward(g, offset=4)
    np.testing.assert_array_equal(sg.indices, np.arange(4, 9))
    assert sg.shape == (20, 6)
    np.testing.assert_allclose(sg.values, g.sum(axis=(0, 1)), atol=1e-12)
    dense = np.zeros((20, 6))
    dense[4:9] = g.sum(axis=(0, 1))
    np.testing.assert_allclose(sg.to_dense(), dense, atol=1e-12)
    # finite differences of L(W) = sum(g * lpe(x, 4)) through the shared .embedding
    for r, c in [(4, 0), (8, 5), (6, 2), (0, 1)]:
        wp, wm = w.copy(), w.copy()
        wp[r, c] += 1e-4
        wm[r, c] -= 1e-4
        lpe.embedding.weight = wp
        lp = (g * lpe(x, 4)).sum()
        lpe.embedding.weight = wm
        lm = (g * lpe(x, 4)).sum()
        assert abs((lp - lm) / 2e-4 - dense[r, c]) < 1e-7
    lpe.weight = w
    np.testing.assert_array_equal(lpe.embedding.weight, w)


def test_learned_bad_input_keeps_state() -> None:
    lpe = ce.LearnedPositionalEmbedding(8, 4, seed=0)
    w = lpe.weight
    x = np.zeros((3, 4), np.float32)
    for call in (
        lambda: lpe(x, 6),
        lambda: lpe(x, -1),
        lambda: lpe.backward(x, 6),
        lambda: lpe.backward(x, -2),
    ):
        with pytest.raises(IndexError):
            call()
    with pytest.raises(ValueError):
        lpe(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError):
        lpe.backward(np.zeros((3, 5), np.float32))
    with pytest.raises(TypeError):
        lpe(x, 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        lpe.weight = np.zeros((8, 5), np.float32)
    with pytest.raises(ValueError):
        ce.LearnedPositionalEmbedding(-1, 4)
    np.testing.assert_array_equal(lpe.weight, w)


# ----------------------------------------------------------------------------- BERT embeddings


def _te_ref(te: ce.TransformerEmbeddings, ids, tts, pids):  # type: ignore[no-untyped-def]
    e = te.token.weight[ids] + te.position.weight[pids] + te.segment.weight[tts]
    return layer_norm_ref(e, te.layer_norm_weight, te.layer_norm_bias, te.layer_norm_eps)


def _te_backward_ref(te, ids, tts, pids, grad):  # type: ignore[no-untyped-def]
    _, xhat, rstd = _te_ref(te, ids, tts, pids)
    gam = te.layer_norm_weight
    dx = grad * gam
    de = rstd * (dx - dx.mean(-1, keepdims=True) - xhat * (dx * xhat).mean(-1, keepdims=True))
    d = grad.shape[-1]
    return {
        "layer_norm_weight": (grad * xhat).reshape(-1, d).sum(0),
        "layer_norm_bias": grad.reshape(-1, d).sum(0),
        "token": scatter_rows(te.token.num_embeddings, ids, de),
        "position": scatter_rows(te.position.num_embeddings, pids, de),
        "segment": scatter_rows(te.segment.num_embeddings, tts, de),
    }


def test_transformer_embeddings_forward_backward() -> None:
    rng = np.random.default_rng(4)
    te = ce.TransformerEmbeddings(
        30, 8, max_positions=16, type_vocab_size=3, layer_norm_eps=1e-5, seed=1, dtype="float64"
    )
    assert te.dtype == "float64" and te.training
    te.layer_norm_weight = rng.standard_normal(8)
    te.layer_norm_bias = rng.standard_normal(8)
    ids = rng.integers(0, 30, (3, 7))
    tts = rng.integers(0, 3, (3, 7))
    y = te(ids, tts)
    pids = np.broadcast_to(np.arange(7), (3, 7))
    ref, _, _ = _te_ref(te, ids, tts, pids)
    assert y.shape == (3, 7, 8)
    np.testing.assert_allclose(y, ref, atol=1e-10)
    grad = rng.standard_normal(y.shape)
    got = te.backward(grad)
    want = _te_backward_ref(te, ids, tts, pids, grad)
    for k in ("layer_norm_weight", "layer_norm_bias"):
        np.testing.assert_allclose(got[k], want[k], atol=1e-10)
    for k in ("token", "position", "segment"):
        sg = got[k]
        assert np.all(np.diff(sg.indices) > 0)
        np.testing.assert_allclose(sg.to_dense(), want[k], atol=1e-10)
    np.testing.assert_array_equal(got["position"].indices, np.arange(7))

    # finite differences through the tables and LayerNorm parameters
    def loss() -> float:
        return float((grad * te(ids, tts)).sum())

    h = 1e-6
    for name in ("token", "position", "segment"):
        table = getattr(te, name)
        w = table.weight
        dense = got[name].to_dense()
        for r, c in [(int(ids[0, 0]) if name == "token" else 1, 3), (2, 0)]:
            wp, wm = w.copy(), w.copy()
            wp[r, c] += h
            wm[r, c] -= h
            table.weight = wp
            lp = loss()
            table.weight = wm
            lm = loss()
            table.weight = w
            assert abs((lp - lm) / (2 * h) - dense[r, c]) < 1e-6, (name, r, c)
    for name in ("layer_norm_weight", "layer_norm_bias"):
        p0 = getattr(te, name)
        for c in (0, 5):
            pp, pm = p0.copy(), p0.copy()
            pp[c] += h
            pm[c] -= h
            setattr(te, name, pp)
            lp = loss()
            setattr(te, name, pm)
            lm = loss()
            setattr(te, name, p0)
            assert abs((lp - lm) / (2 * h) - got[name][c]) < 1e-6


def test_transformer_embeddings_position_ids_padding_float32() -> None:
    rng = np.random.default_rng(5)
    te = ce.TransformerEmbeddings(20, 16, max_positions=12, padding_idx=1, seed=0)
    assert te.token.padding_idx == 1
    np.testing.assert_array_equal(te.token.weight[1], 0)
    ids = np.array([[5, 6, 7, 1, 1], [8, 1, 9, 10, 11]])
    pids = ce.position_ids_from_padding(ids, 1)
    # RoBERTa: mask = ids != pad; (cumsum(mask) + past) * mask + pad
    mask = ids != 1
    np.testing.assert_array_equal(pids, np.cumsum(mask, 1) * mask + 1)
    np.testing.assert_array_equal(
        ce.position_ids_from_padding(ids, 1, past_length=2), (np.cumsum(mask, 1) + 2) * mask + 1
    )
    y = te(ids, position_ids=pids)
    assert y.dtype == np.float32
    ref, _, _ = _te_ref(te, ids, np.zeros_like(ids), pids)
    np.testing.assert_allclose(y, ref, atol=1e-5)
    grad = rng.standard_normal(y.shape).astype(np.float32)
    got = te.backward(grad)
    assert 1 not in got["token"].indices  # padding row gets no gradient
    want = _te_backward_ref(te, ids, np.zeros_like(ids), pids, grad.astype(np.float64))
    want["token"][1] = 0
    np.testing.assert_allclose(got["token"].to_dense(), want["token"], atol=1e-4)
    # Fortran-ordered ids are read in logical order
    np.testing.assert_array_equal(te(np.asfortranarray(ids), position_ids=pids), y)
    # (T,) position ids broadcast over rows
    y2 = te(ids, position_ids=np.array([3, 4, 5, 6, 7]))
    ref2, _, _ = _te_ref(te, ids, np.zeros_like(ids), np.broadcast_to(np.arange(3, 8), ids.shape))
    np.testing.assert_allclose(y2, ref2, atol=1e-5)


def test_transformer_embeddings_sinusoidal_positions() -> None:
    te = ce.TransformerEmbeddings(10, 8, max_positions=32, position="sinusoidal", seed=0)
    np.testing.assert_allclose(
        te.position.weight, sinusoidal_ref(32, 8, 1e4, "interleaved"), atol=6e-8
    )
    assert te.position.frozen
    y = te(np.array([[1, 2, 3]]))
    assert te.backward(np.ones_like(y))["position"] is None


def test_transformer_embeddings_dropout() -> None:
    rng = np.random.default_rng(6)
    te = ce.TransformerEmbeddings(50, 64, dropout=0.25, seed=9, dtype="float64")
    ids = rng.integers(0, 50, (4, 32))
    te.training = False
    clean = te(ids)
    te.training = True
    y = te(ids)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.03
    np.testing.assert_allclose(y[kept], clean[kept] / 0.75, rtol=1e-12)
    assert not np.array_equal(te(ids), y)  # a fresh mask per call
    # same seed, same sequence of masks
    te2 = ce.TransformerEmbeddings(50, 64, dropout=0.25, seed=9, dtype="float64")
    np.testing.assert_array_equal(te2(ids), y)
    # backward uses the last call's mask: grad flows only through kept elements, scaled
    y3 = te2(ids)
    grad = rng.standard_normal(y3.shape)
    got = te2.backward(grad)
    np.testing.assert_allclose(
        got["layer_norm_bias"], (grad * (y3 != 0) / 0.75).reshape(-1, 64).sum(0), atol=1e-10
    )
    te0 = ce.TransformerEmbeddings(50, 64, dropout=0.0, seed=9, dtype="float64")
    np.testing.assert_array_equal(te0(ids), te0(ids))


def test_transformer_embeddings_bad_input_keeps_state() -> None:
    te = ce.TransformerEmbeddings(10, 4, max_positions=6, type_vocab_size=2, seed=0)
    with pytest.raises(ValueError, match="forward"):
        te.backward(np.zeros((1, 2, 4), np.float32))
    ids = np.array([[1, 2, 3]])
    y = te(ids)
    g = np.ones_like(y)
    before = te.backward(g)
    weights = [te.token.weight, te.position.weight, te.segment.weight]
    for call, exc in [
        (lambda: te(np.array([[1, 10]])), IndexError),
        (lambda: te(np.array([[1, -1]])), IndexError),
        (lambda: te(ids, np.array([[0, 2, 0]])), IndexError),
        (lambda: te(ids, position_ids=np.array([0, 1, 6])), IndexError),
        (lambda: te(np.zeros((1, 7), np.int64)), IndexError),  # T > max_positions
        (lambda: te(ids, np.array([[0, 1]])), ValueError),
        (lambda: te(ids, position_ids=np.array([0, 1])), ValueError),
        (lambda: te(np.array([[1.0, 2.0]])), TypeError),
        (lambda: te.backward(np.zeros((1, 3, 5), np.float32)), ValueError),
        (lambda: te.backward(np.zeros((2, 3, 4), np.float32)), ValueError),
        (lambda: ce.TransformerEmbeddings(10, 4, dropout=1.5), ValueError),
        (lambda: ce.TransformerEmbeddings(10, 4, position="rotary"), ValueError),
        (lambda: ce.TransformerEmbeddings(10, 4, padding_idx=10), IndexError),
        (lambda: setattr(te, "layer_norm_weight", np.ones(5)), ValueError),
    ]:
        with pytest.raises(exc):
            call()
    after = te.backward(g)  # the cache still holds the last *successful* forward
    for k in ("token", "position", "segment"):
        np.testing.assert_array_equal(after[k].to_dense(), before[k].to_dense())
    for w, w2 in zip(weights, [te.token.weight, te.position.weight, te.segment.weight]):
        np.testing.assert_array_equal(w, w2)
    np.testing.assert_array_equal(te.layer_norm_weight, np.ones(4, np.float32))


# ----------------------------------------------------------------------------- ALiBi


def test_alibi_slopes_reference() -> None:
    np.testing.assert_array_equal(ce.alibi_slopes(8, dtype="float64"), 2.0 ** -np.arange(1, 9))
    want12 = list(2.0 ** -np.arange(1, 9)) + [2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5]
    np.testing.assert_allclose(ce.alibi_slopes(12, dtype="float64"), want12, rtol=1e-15)
    for n in range(1, 70):
        np.testing.assert_allclose(
            ce.alibi_slopes(n, dtype="float64"), alibi_slopes_ref(n), rtol=1e-14
        )
    assert ce.alibi_slopes(5).dtype == np.float32


@pytest.mark.parametrize(
    "h,q,k,offset",
    [(8, 5, 5, 0), (12, 3, 10, 7), (5, 1, 300, 299), (16, 256, 256, 0), (3, 0, 4, 0)],
)
def test_alibi_bias(h: int, q: int, k: int, offset: int) -> None:
    s = np.array(alibi_slopes_ref(h))
    i = np.arange(q)[:, None] + offset
    j = np.arange(k)[None, :]
    ref = -s[:, None, None] * np.abs(i - j)[None]
    b64 = ce.alibi_bias(h, q, k, offset=offset, dtype="float64")
    np.testing.assert_allclose(b64, ref, rtol=1e-14, atol=0)
    b32 = ce.alibi_bias(h, q, k, offset=offset)
    assert b32.shape == (h, q, k) and b32.dtype == np.float32
    np.testing.assert_allclose(b32, ref, rtol=1e-7, atol=0)
    np.testing.assert_array_equal(_testing.alibi_bias_portable(h, q, k, offset=offset), b32)


def test_alibi_bad_input() -> None:
    for call in (
        lambda: ce.alibi_slopes(0),
        lambda: ce.alibi_bias(0, 2, 2),
        lambda: ce.alibi_bias(4, 2, 2, offset=-1),
        lambda: ce.alibi_bias(4, -2, 2),
        lambda: ce.alibi_slopes(-3),
    ):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(TypeError):
        ce.alibi_bias(4, 2, 2.5)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- T5 relative


T5_TABLE = [  # semantics.md §3.6: rel, bidirectional, unidirectional (32 buckets, max 128)
    (0, 0, 0),
    (-1, 1, 1),
    (1, 17, 0),
    (-8, 8, 8),
    (-15, 9, 15),
    (-32, 12, 21),
    (-64, 14, 26),
    (-127, 15, 31),
    (-1000, 15, 31),
    (20, 26, 0),
    (200, 31, 0),
]


def test_relative_position_bucket_reference_table() -> None:
    rel = np.array([r for r, _, _ in T5_TABLE])
    np.testing.assert_array_equal(ce.relative_position_bucket(rel), [b for _, b, _ in T5_TABLE])
    np.testing.assert_array_equal(
        ce.relative_position_bucket(rel, bidirectional=False), [u for _, _, u in T5_TABLE]
    )


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("nb,md", [(32, 128), (16, 64), (8, 20), (64, 256), (5, 9)])
def test_relative_position_bucket_matches_float32_reference(
    bidirectional: bool, nb: int, md: int
) -> None:
    rel = np.arange(-3000, 3000, dtype=np.int32).reshape(3, -1)
    got = ce.relative_position_bucket(
        rel, bidirectional=bidirectional, num_buckets=nb, max_distance=md
    )
    assert got.dtype == np.int64 and got.shape == rel.shape
    np.testing.assert_array_equal(
        ce.relative_position_bucket(
            rel.T, bidirectional=bidirectional, num_buckets=nb, max_distance=md
        ),
        got.T,
    )
    np.testing.assert_array_equal(got, t5_bucket_ref(rel, bidirectional, nb, md))
    assert got.min() >= 0 and got.max() < nb


def test_relative_position_bias_forward_backward() -> None:
    rng = np.random.default_rng(7)
    rpb = ce.RelativePositionBias(6, seed=2, dtype="float64")
    w = rpb.weight
    assert w.shape == (32, 6)
    for q, k, off in [(5, 7, 0), (1, 40, 39), (200, 180, 0), (3, 3, 5)]:
        buckets = t5_bucket_ref(np.arange(k)[None, :] - (np.arange(q)[:, None] + off))
        ref = w[buckets].transpose(2, 0, 1)
        b = rpb(q, k, offset=off)
        np.testing.assert_array_equal(b, ref)
        np.testing.assert_array_equal(_testing.relative_bias_portable(rpb, q, k, offset=off), ref)
        g = rng.standard_normal((6, q, k))
        sg = rpb.backward(g, q, k, offset=off)
        dense = np.zeros((32, 6))
        np.add.at(dense, buckets.reshape(-1), g.transpose(1, 2, 0).reshape(-1, 6))
        np.testing.assert_array_equal(sg.indices, np.unique(buckets))
        np.testing.assert_allclose(sg.to_dense(), dense, atol=1e-11)
    # finite differences: L(W) = sum(g * rpb(q, k))
    q, k = 9, 11
    g = rng.standard_normal((6, q, k))
    dense = rpb.backward(g, q, k).to_dense()
    for r, c in [(0, 0), (17, 3), (5, 5)]:
        wp, wm = w.copy(), w.copy()
        wp[r, c] += 1e-4
        wm[r, c] -= 1e-4
        rpb.embedding.weight = wp
        lp = (g * rpb(q, k)).sum()
        rpb.weight = wm
        lm = (g * rpb(q, k)).sum()
        assert abs((lp - lm) / 2e-4 - dense[r, c]) < 1e-8
    rpb32 = ce.RelativePositionBias(4, num_buckets=8, max_distance=16, bidirectional=False, seed=1)
    b = rpb32(4, 6)
    assert b.dtype == np.float32 and b.shape == (4, 4, 6)
    bk = t5_bucket_ref(np.arange(6)[None, :] - np.arange(4)[:, None], False, 8, 16)
    np.testing.assert_array_equal(b, rpb32.weight[bk].transpose(2, 0, 1))


def test_relative_bad_input_keeps_state() -> None:
    rpb = ce.RelativePositionBias(4, seed=0)
    w = rpb.weight
    for call, exc in [
        (lambda: ce.relative_position_bucket(np.array([1.5])), TypeError),
        (lambda: ce.relative_position_bucket(np.array([1]), num_buckets=2), ValueError),
        (lambda: ce.relative_position_bucket(np.array([1]), max_distance=8), ValueError),
        (lambda: ce.RelativePositionBias(0), ValueError),
        (lambda: ce.RelativePositionBias(4, num_buckets=3), ValueError),
        (lambda: rpb(-1, 3), ValueError),
        (lambda: rpb(2, 3, offset=-1), ValueError),
        (lambda: rpb.backward(np.zeros((4, 2, 2)), 2, 3), ValueError),
        (lambda: rpb.backward(np.zeros((3, 2, 3)), 2, 3), ValueError),
        (lambda: setattr(rpb, "weight", np.zeros((32, 5))), ValueError),
    ]:
        with pytest.raises(exc):
            call()
    np.testing.assert_array_equal(rpb.weight, w)

"""Weight tying (attend), whole-word dropout, unit-norm rows and plot_embeddings, against float64
NumPy references of the formulas and central finite differences."""

from __future__ import annotations

import sys
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed._native import _testing

RNG = np.random.default_rng(1234)


def table(v: int, d: int, dtype: Any = np.float64, seed: int = 0) -> tuple[ce.Embedding, Any]:
    w = np.random.default_rng(seed).standard_normal((v, d)).astype(dtype)
    return ce.Embedding.from_pretrained(w, freeze=False), w


def dense_from(sg: ce.SparseGrad) -> Any:
    return np.asarray(sg.to_dense(), dtype=np.float64)


def scatter(ids: Any, rows: Any, v: int) -> Any:
    """Reference dense gradient: rows summed at ids."""
    out = np.zeros((v, rows.shape[-1]))
    np.add.at(out, np.asarray(ids).reshape(-1), rows.reshape(-1, rows.shape[-1]))
    return out


# ---------------------------------------------------------------- attend: forward


@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
def test_attend_all_rows_matches_numpy(lead: tuple[int, ...]) -> None:
    emb, w = table(11, 6)
    x = RNG.standard_normal(lead + (6,))
    got = emb.attend(x)
    assert got.shape == lead + (11,) and got.dtype == np.float64
    np.testing.assert_allclose(got, x @ w.T, rtol=1e-12, atol=1e-12)


def test_attend_shared_ids_with_duplicates() -> None:
    emb, w = table(9, 4)
    x = RNG.standard_normal((3, 2, 4))
    ids = np.array([7, 2, 7, 0, 8], dtype=np.int32)
    got = emb.attend(x, ids)
    assert got.shape == (3, 2, 5)
    np.testing.assert_allclose(got, x @ w[ids].T, rtol=1e-12, atol=1e-12)


def test_attend_per_row_ids() -> None:
    emb, w = table(20, 8)
    x = RNG.standard_normal((4, 3, 8))
    ids = RNG.integers(0, 20, size=(4, 3, 5))
    got = emb.attend(x, ids)
    ref = np.einsum("abd,abkd->abk", x, w[ids])
    assert got.shape == (4, 3, 5)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("dtype", "tol"), [(np.float32, 2e-5), (np.float16, 2e-2)])
def test_attend_low_precision_tables(dtype: Any, tol: float) -> None:
    emb, w = table(300, 64, dtype)
    x = RNG.standard_normal((40, 64)).astype(dtype)
    ref = x.astype(np.float64) @ w.astype(np.float64).T
    scale = np.abs(ref).max()
    for ids in (None, RNG.integers(0, 300, 17), RNG.integers(0, 300, (40, 6))):
        got = emb.attend(x, ids)
        assert got.dtype == dtype
        r = (
            ref
            if ids is None
            else (ref[:, ids] if ids.ndim == 1 else np.take_along_axis(ref, ids, 1))
        )
        np.testing.assert_allclose(got.astype(np.float64), r, atol=tol * scale)


def test_attend_fast_equals_portable() -> None:
    emb, _ = table(500, 48, np.float32)
    x = RNG.standard_normal((70, 48)).astype(np.float32)
    for ids in (None, RNG.integers(0, 500, 33), RNG.integers(0, 500, (70, 9))):
        np.testing.assert_allclose(
            emb.attend(x, ids), _testing.attend_portable(emb, x, ids), rtol=1e-4, atol=1e-4
        )


def test_attend_is_thread_count_independent() -> None:
    emb, _ = table(3000, 64, np.float32)
    x = RNG.standard_normal((600, 64)).astype(np.float32)
    ids2 = RNG.integers(0, 3000, (600, 16))
    n = ce.get_num_threads()
    try:
        ce.set_num_threads(1)
        one = [emb.attend(x), emb.attend(x, ids2)]
        ce.set_num_threads(2)
        two = [emb.attend(x), emb.attend(x, ids2)]
    finally:
        ce.set_num_threads(n)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- attend: backward


@pytest.mark.parametrize("kind", ["all", "shared", "per_row"])
def test_attend_backward_matches_reference(kind: str) -> None:
    v, d = 13, 5
    emb, w = table(v, d)
    x = RNG.standard_normal((2, 3, d))
    ids: Any = None
    if kind == "shared":
        ids = np.array([4, 1, 4, 12, 1, 4])
        wsel = w[ids]
    elif kind == "per_row":
        ids = RNG.integers(0, 4, (2, 3, 4))  # few distinct ids: many duplicates
    g = RNG.standard_normal(emb.attend(x, ids).shape)
    gx, gw = emb.attend_backward(x, g, ids)
    assert gx.shape == x.shape
    if kind == "all":
        ref_gx, ref_gw = g @ w, g.reshape(-1, v).T @ x.reshape(-1, d)
        np.testing.assert_array_equal(gw.indices, np.arange(v))
    elif kind == "shared":
        ref_gx = g @ wsel
        ref_gw = scatter(ids, g.reshape(-1, len(ids)).T @ x.reshape(-1, d), v)
        np.testing.assert_array_equal(gw.indices, np.unique(ids))
    else:
        ref_gx = np.einsum("abk,abkd->abd", g, w[ids])
        ref_gw = scatter(ids, g[..., None] * x[:, :, None, :], v)
        np.testing.assert_array_equal(gw.indices, np.unique(ids))
    assert gw.shape == (v, d) and gw.nnz == len(gw.indices)
    np.testing.assert_allclose(gx, ref_gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dense_from(gw), ref_gw, rtol=1e-12, atol=1e-12)
    # portable path agrees
    pgx, pgw = _testing.attend_backward_portable(emb, x, g, ids)
    np.testing.assert_allclose(pgx.reshape(gx.shape), gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(pgw.indices, gw.indices)
    np.testing.assert_allclose(pgw.values, gw.values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["all", "shared", "per_row"])
def test_attend_gradients_by_finite_differences(kind: str) -> None:
    v, d, n = 6, 4, 3
    w0 = np.random.default_rng(5).standard_normal((v, d))
    x0 = RNG.standard_normal((n, d))
    ids: Any = {
        "all": None,
        "shared": np.array([3, 0, 3, 5]),
        "per_row": RNG.integers(0, v, (n, 3)),
    }[kind]
    c = RNG.standard_normal(ce.Embedding.from_pretrained(w0).attend(x0, ids).shape)

    def loss(w: Any, x: Any) -> float:
        return float(np.sum(c * ce.Embedding.from_pretrained(w).attend(x, ids)))

    gx, gw = ce.Embedding.from_pretrained(w0).attend_backward(x0, c, ids)
    gw_dense = dense_from(gw)
    h = 1e-6
    for i in range(n):
        for j in range(d):
            e = np.zeros_like(x0)
            e[i, j] = h
            fd = (loss(w0, x0 + e) - loss(w0, x0 - e)) / (2 * h)
            assert fd == pytest.approx(gx[i, j], abs=1e-7)
    for r in range(v):
        for j in range(d):
            e = np.zeros_like(w0)
            e[r, j] = h
            fd = (loss(w0 + e, x0) - loss(w0 - e, x0)) / (2 * h)
            assert fd == pytest.approx(gw_dense[r, j], abs=1e-7)


def test_attend_backward_float32_and_sorted_ids_fast_path() -> None:
    emb, w = table(100, 16, np.float32)
    x = RNG.standard_normal((8, 16)).astype(np.float32)
    ids = np.array([2, 5, 9, 40])  # sorted unique: no coalescing needed
    g = RNG.standard_normal((8, 4)).astype(np.float32)
    gx, gw = emb.attend_backward(x, g, ids)
    assert gx.dtype == np.float32 and gw.values.dtype == np.float32
    np.testing.assert_array_equal(gw.indices, ids)
    ref = g.astype(np.float64).T @ x.astype(np.float64)
    np.testing.assert_allclose(gw.values, ref, rtol=1e-4, atol=1e-4)


def test_attend_bad_inputs_leave_table_unchanged() -> None:
    emb, w = table(10, 4)
    x = RNG.standard_normal((3, 4))
    with pytest.raises(ValueError, match="embedding_dim"):
        emb.attend(RNG.standard_normal((3, 5)))
    with pytest.raises(ValueError):
        emb.attend(np.float64(1.0))
    with pytest.raises(IndexError, match="10"):
        emb.attend(x, np.array([1, 10]))
    with pytest.raises(IndexError):
        emb.attend(x, np.array([-1]))
    with pytest.raises(TypeError):
        emb.attend(x, np.array([1.0, 2.0]))
    with pytest.raises(TypeError):
        emb.attend(x.astype(np.complex128))
    with pytest.raises(ValueError):
        emb.attend(x, np.zeros((4, 2), dtype=np.int64))  # leading shape != x's
    with pytest.raises(ValueError, match="grad_logits"):
        emb.attend_backward(x, np.zeros((3, 9)))
    with pytest.raises(IndexError):
        emb.attend_backward(x, np.zeros((3, 2)), np.array([0, 11]))
    with pytest.raises(ce.CandleEmbedError):
        emb.attend(RNG.standard_normal((3, 5)))
    np.testing.assert_array_equal(emb.weight, w)


def test_attend_empty_inputs() -> None:
    emb, _ = table(10, 4)
    assert emb.attend(np.zeros((0, 4))).shape == (0, 10)
    assert emb.attend(np.zeros((2, 4)), np.zeros(0, dtype=np.int64)).shape == (2, 0)
    gx, gw = emb.attend_backward(np.zeros((2, 4)), np.zeros((2, 0)), np.zeros(0, dtype=np.int64))
    assert gx.shape == (2, 4) and not gx.any() and gw.nnz == 0


# ---------------------------------------------------------------- dropout


def test_dropout_rows_are_zero_or_scaled_and_whole_words() -> None:
    emb, w = table(40, 6)
    ids = RNG.integers(0, 40, size=(30, 7))
    p = 0.4
    y = emb(ids, dropout=p, seed=9)
    kept = np.any(y != 0, axis=-1)
    np.testing.assert_allclose(y[kept], w[ids][kept] / (1 - p), rtol=1e-15)
    assert not y[~kept].any()
    # every occurrence of an id shares its fate
    for r in np.unique(ids):
        fates = kept[ids == r]
        assert fates.all() or not fates.any()
    assert kept.any() and not kept.all()


def test_dropout_mask_is_a_function_of_seed_and_row() -> None:
    emb, _ = table(1000, 3)
    ids = np.arange(1000)
    a = emb(ids, dropout=0.5, seed=1)
    np.testing.assert_array_equal(a, emb(ids, dropout=0.5, seed=1))
    assert not np.array_equal(a != 0, emb(ids, dropout=0.5, seed=2) != 0)
    # the same row in another batch layout gets the same mask
    sub = np.array([[5, 999], [5, 0]], dtype=np.uint16)
    np.testing.assert_array_equal(emb(sub, dropout=0.5, seed=1), a[sub])
    keep_rate = np.mean(np.any(a != 0, axis=-1))
    assert abs(keep_rate - 0.5) < 0.06


def test_dropout_preserves_expectation() -> None:
    emb, w = table(20, 4)
    ids = np.arange(20)
    p, seeds = 0.3, 2000
    mean = sum(emb(ids, dropout=p, seed=s) for s in range(seeds)) / seeds
    # each element is w * B/(1-p), B ~ Bernoulli(1-p): std of the mean is |w| sqrt(p/(1-p)/S)
    sigma = np.abs(w) * np.sqrt(p / (1 - p) / seeds)
    assert np.all(np.abs(mean - w) <= 5 * sigma + 1e-12)


def test_dropout_zero_is_plain_lookup_and_seed_none_works() -> None:
    emb, w = table(30, 5, np.float32)
    ids = RNG.integers(0, 30, 50)
    np.testing.assert_array_equal(emb(ids, dropout=0.0, seed=3), emb(ids))
    y = emb(ids, dropout=0.5)  # fresh seed
    assert y.shape == (50, 5)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_dropout_out_of_range_is_value_error(p: float) -> None:
    emb, w = table(5, 2)
    with pytest.raises(ValueError, match="dropout"):
        emb([0, 1], dropout=p, seed=0)
    with pytest.raises(ValueError):
        _testing.transform_grad(emb, [0], np.ones((1, 2)), dropout=p, seed=0)
    np.testing.assert_array_equal(emb.weight, w)


def test_dropout_backward_needs_the_seed() -> None:
    emb, _ = table(5, 2)
    with pytest.raises(ValueError, match="seed"):
        _testing.transform_grad(emb, [0], np.ones((1, 2)), dropout=0.5)
    with pytest.raises(ValueError, match="seed"):
        emb.backward([0], np.ones((1, 2)), dropout=0.5)
    with pytest.raises(ValueError, match="dropout"):
        emb.backward([0], np.ones((1, 2)), dropout=1.0, seed=1)


def test_backward_keywords_compose_with_padding_and_dtypes() -> None:
    w = RNG.standard_normal((12, 6)).astype(np.float32)
    emb = ce.Embedding.from_pretrained(w, padding_idx=2, freeze=False)
    ids = np.array([[2, 5, 5], [7, 2, 11]])
    g = RNG.standard_normal(ids.shape + (6,)).astype(np.float32)
    sg = emb.backward(ids, g, dropout=0.5, seed=3, normalize=True)
    assert 2 not in sg.indices  # padding row gets nothing
    assert sg.values.dtype == np.float32
    # reference in float64: y = m(r) w / |w|, dL/dw = m(r) (g - y (y.g)) / |w|
    w64, g64 = w.astype(np.float64), g.astype(np.float64)
    kept = np.any(emb(np.arange(12), dropout=0.5, seed=3) != 0, axis=-1)
    ref = np.zeros((12, 6))
    for (i, j), r in np.ndenumerate(ids):
        if r == 2 or not kept[r]:
            continue
        n = np.linalg.norm(w64[r])
        y = w64[r] / n
        ref[r] += (g64[i, j] - y * (y @ g64[i, j])) / n / 0.5
    np.testing.assert_allclose(dense_from(sg), ref, rtol=1e-5, atol=1e-6)
    # without keywords: the plain backward
    np.testing.assert_allclose(
        dense_from(emb.backward(ids, g)), dense_from(emb.backward(ids, g, dropout=0.0)), rtol=0
    )


def test_dropout_fast_equals_portable() -> None:
    for dtype in (np.float32, np.float64, np.float16):
        emb, _ = table(200, 24, dtype)
        ids = RNG.integers(0, 200, (16, 9))
        np.testing.assert_array_equal(
            emb(ids, dropout=0.25, seed=77),
            _testing.lookup_transformed_portable(emb, ids, dropout=0.25, seed=77),
        )


# ---------------------------------------------------------------- normalize


def test_normalize_matches_reference_and_handles_zero_rows() -> None:
    w = RNG.standard_normal((8, 5))
    w[3] = 0.0
    w[6] = 1e-14  # norm below eps: y = w / eps
    emb = ce.Embedding.from_pretrained(w)
    ids = np.array([[0, 3, 6], [7, 0, 1]])
    y = emb(ids, normalize=True)
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    ref = (w / np.maximum(norms, 1e-12))[ids]
    np.testing.assert_allclose(y, ref, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(y[ids != 3][ids[ids != 3] != 6], axis=-1), 1.0)
    np.testing.assert_array_equal(y[0, 1], 0.0)
    np.testing.assert_allclose(
        y, _testing.lookup_transformed_portable(emb, ids, normalize=True), rtol=1e-14
    )


@pytest.mark.parametrize(("dtype", "tol"), [(np.float32, 1e-6), (np.float16, 1e-3)])
def test_normalize_low_precision_and_out(dtype: Any, tol: float) -> None:
    emb, w = table(64, 32, dtype)
    ids = RNG.integers(0, 64, 100)
    out = np.empty((100, 32), dtype=dtype)
    got = emb(ids, normalize=True, out=out)
    assert got is out
    w64 = w.astype(np.float64)
    ref = (w64 / np.linalg.norm(w64, axis=1, keepdims=True))[ids]
    np.testing.assert_allclose(out.astype(np.float64), ref, atol=tol)


def test_normalize_and_dropout_compose() -> None:
    emb, w = table(50, 7)
    ids = RNG.integers(0, 50, 80)
    y = emb(ids, dropout=0.5, seed=4, normalize=True)
    d = emb(ids, dropout=0.5, seed=4)
    n = emb(ids, normalize=True)
    kept = np.any(d != 0, axis=-1)
    np.testing.assert_allclose(y[kept], n[kept] / 0.5, rtol=1e-14)
    assert not y[~kept].any()


# ---------------------------------------------------- gradients through dropout / normalize


@pytest.mark.parametrize(
    "kw",
    [
        {"normalize": True},
        {"dropout": 0.5, "seed": 11},
        {"dropout": 0.3, "seed": 2, "normalize": True},
    ],
)
def test_transformed_gradient_by_finite_differences(kw: dict[str, Any]) -> None:
    v, d = 9, 4
    w0 = np.random.default_rng(3).standard_normal((v, d))
    w0[5] *= 1e-3  # a small (but above eps) row
    ids = np.array([[1, 5, 1], [8, 0, 5], [1, 2, 3]])
    c = RNG.standard_normal(ids.shape + (d,))

    def loss(w: Any) -> float:
        return float(np.sum(c * ce.Embedding.from_pretrained(w)(ids, **kw)))

    emb = ce.Embedding.from_pretrained(w0)
    rows = _testing.transform_grad(emb, ids, c, **kw)
    assert rows.shape == ids.shape + (d,)
    grad = scatter(ids, rows, v)
    h = 1e-7
    for r in range(v):
        for j in range(d):
            e = np.zeros_like(w0)
            e[r, j] = h * max(1.0, abs(w0[r, j]))
            fd = (loss(w0 + e) - loss(w0 - e)) / (2 * e[r, j])
            assert fd == pytest.approx(grad[r, j], rel=1e-5, abs=1e-6), (r, j)
    # Embedding.backward with the same keywords is exactly this gradient
    sg = emb.backward(ids, c, **kw)
    np.testing.assert_array_equal(sg.indices, np.unique(ids))
    np.testing.assert_allclose(dense_from(sg), grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dense_from(emb.backward(ids, rows)), grad, rtol=1e-12, atol=1e-12)


def test_normalize_gradient_eps_branch() -> None:
    w = np.array([[1e-14, -2e-14, 0.0], [1.0, 2.0, 2.0]])
    emb = ce.Embedding.from_pretrained(w)
    g = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0]])
    rows = _testing.transform_grad(emb, [0, 1], g, normalize=True)
    np.testing.assert_allclose(rows[0], g[0] / 1e-12)
    y = w[1] / 3.0
    np.testing.assert_allclose(rows[1], (g[1] - y * (y @ g[1])) / 3.0, rtol=1e-15)


def test_transform_grad_bad_inputs() -> None:
    emb, w = table(6, 3)
    with pytest.raises(ValueError, match="grad_output"):
        _testing.transform_grad(emb, [0, 1], np.ones((2, 4)), normalize=True)
    with pytest.raises(IndexError):
        _testing.transform_grad(emb, [0, 6], np.ones((2, 3)), normalize=True)
    with pytest.raises(IndexError):
        emb([0, 6], normalize=True)
    with pytest.raises(TypeError):
        emb(np.array([0.5]), dropout=0.1, seed=1)
    np.testing.assert_array_equal(emb.weight, w)


# ---------------------------------------------------------------- plot_embeddings


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_array_writes_png(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    vecs = RNG.standard_normal((12, 16))
    words = [f"w{i}" for i in range(12)]
    out = ce.plot_embeddings(vecs, words, path=tmp_path / "pca.png")
    data = (tmp_path / "pca.png").read_bytes()
    assert out == str(tmp_path / "pca.png")
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (800, 600)
    assert not list(tmp_path.glob(".plot-*"))  # no temp file left behind


class FakeKeyedVectors:
    def __init__(self) -> None:
        self.index_to_key = ["king", "queen", "man", "woman", "apple"]
        self.key_to_index = {k: i for i, k in enumerate(self.index_to_key)}
        self.vectors = RNG.standard_normal((5, 8)).astype(np.float32)


def test_plot_keyed_vectors_and_figure() -> None:
    pytest.importorskip("matplotlib")
    kv = FakeKeyedVectors()
    fig: Any = ce.plot_embeddings(kv, words=["queen", "apple", "man"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["queen", "apple", "man"]
    fig = ce.plot_embeddings(kv)
    assert len(fig.axes[0].texts) == 5
    with pytest.raises(KeyError, match="pear"):
        ce.plot_embeddings(kv, words=["pear"])


def test_plot_pca_coordinates() -> None:
    from candle_embed.plot import pca_2d

    x = RNG.standard_normal((30, 5)) * np.array([10.0, 3.0, 1.0, 0.1, 0.01])
    xy = pca_2d(x)
    c = x - x.mean(0)
    # the two projected axes carry the two largest variances, uncorrelated
    ev = np.sort(np.linalg.eigvalsh(np.cov(c.T)))[::-1]
    np.testing.assert_allclose(np.var(xy, axis=0, ddof=1), ev[:2], rtol=1e-10)
    assert abs(np.corrcoef(xy.T)[0, 1]) < 1e-10


def test_plot_bad_inputs() -> None:
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="words"):
        ce.plot_embeddings(np.zeros((3, 2)), ["a"])
    with pytest.raises(ValueError, match="method"):
        ce.plot_embeddings(np.zeros((3, 2)), method="umap")
    with pytest.raises(ValueError):
        ce.plot_embeddings(np.zeros(3))
    with pytest.raises(TypeError):
        ce.plot_embeddings(np.array([["a", "b"]]))


def test_plot_tsne_without_sklearn_names_the_extra(monkeypatch: Any) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    with pytest.raises(ImportError, match=r"candle-embed\[tsne\]"):
        ce.plot_embeddings(RNG.standard_normal((5, 3)), method="tsne")


def test_plot_without_matplotlib_names_the_extra(monkeypatch: Any) -> None:
    for m in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, m, None)
    with pytest.raises(ImportError, match=r"candle-embed\[plot\]"):
        ce.plot_embeddings(RNG.standard_normal((5, 3)))

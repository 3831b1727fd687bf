"""``Word2Vec(minibatch=True)``: HogBatch negative sampling (Ji et al. 2016), skip-gram and CBOW.

- one window's update (``_testing.w2v_hogbatch_window``: the kernel's gather, three gemms and
  scatter) and one CBOW batch's (``_testing.w2v_hogbatch_cbow``: hidden rows as the mean or sum
  of each target's context rows, shared noise words) against float64 NumPy re-implementations
  of the formulas in ``candle_embed::word2vec::hogbatch`` / ``hogbatch_cbow`` with the same
  rows and the same noise words, gensim's sigmoid / log tables rebuilt here from their
  definition (``word2vec_inner.pyx``);
- quality on gensim's ``lee_background.cor`` against the default per-pair path (agreement of
  word-pair similarities, against two per-pair seeds as the yardstick), skip-gram and CBOW, and
  that training does something (the loss falls);
- combined with ``deterministic=True`` it is bit-identical across worker counts (both);
- the modes it does not cover are refused with a typed error before anything changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed._native import _testing

pytest.importorskip("scipy.stats")
gensim_utils = pytest.importorskip("gensim.test.utils")
from w2v_quality import EpochLoss, compare_with_default  # noqa: E402

LEE = Path(gensim_utils.datapath("lee_background.cor"))
AGREE_TOL = 0.1
QUALITY: dict[str, Any] = dict(vector_size=32, min_count=5, epochs=10, sg=1, negative=5)
QUALITY_CBOW: dict[str, Any] = QUALITY | dict(sg=0, alpha=0.05)


def gensim_tables() -> tuple[np.ndarray, np.ndarray]:
    """gensim's EXP_TABLE (sigmoid on [-6, 6), 1000 points, float32) and LOG_TABLE."""
    x = (np.arange(1000, dtype=np.float32) / np.float32(1000) * np.float32(2) - np.float32(1)) * (
        np.float32(6)
    )
    e = np.exp(x.astype(np.float64)).astype(np.float32)
    sig = e / (e + np.float32(1))
    return sig, np.log(sig.astype(np.float64)).astype(np.float32)


def slot(f: np.ndarray) -> np.ndarray:
    shifted = (f.astype(np.float32) + np.float32(6)).astype(np.float64)
    return np.minimum((shifted * (1000 / 6 / 2)).astype(np.int64), 999)


def reference_window(
    syn0: np.ndarray, syn1neg: np.ndarray, contexts: list[int], outputs: list[int], alpha: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """One HogBatch window in float64: F = X Y^T, G = (y - sigma(F)) alpha (0 where |F| >= 6),
    syn0[c] += (G Y)[c], syn1neg[o] += (G^T X)[o]."""
    sig, logsig = gensim_tables()
    x = syn0[contexts].astype(np.float64)
    y = syn1neg[outputs].astype(np.float64)
    f = (x @ y.T).astype(np.float32)
    labels = np.zeros(len(outputs))
    labels[0] = 1.0
    inside = np.abs(f) < 6
    g = np.where(inside, (labels - sig[slot(f)]) * alpha, 0.0)
    signed = np.where(labels > 0.5, f, -f)
    loss = float(-logsig[slot(signed)][inside].astype(np.float64).sum())
    new0, new1 = syn0.astype(np.float64), syn1neg.astype(np.float64)
    np.add.at(new0, contexts, g @ y)
    np.add.at(new1, outputs, g.T @ x)
    return new0, new1, loss


def test_one_window_matches_numpy_float64() -> None:
    rng = np.random.default_rng(3)
    syn0 = (rng.standard_normal((10, 16)) * 0.4).astype(np.float32)
    syn1neg = (rng.standard_normal((10, 16)) * 0.4).astype(np.float32)
    syn0[9] = 1.0  # row 9 against output row 9: F = 16 > 6, outside the table: no update
    syn1neg[9] = 1.0
    contexts = [1, 4, 4, 9, 7]  # a word twice in the window gets both gradients
    outputs = [2, 5, 9, 0]
    got0, got1, loss = _testing.w2v_hogbatch_window(syn0, syn1neg, contexts, outputs, 0.3)
    want0, want1, want_loss = reference_window(syn0, syn1neg, contexts, outputs, 0.3)
    np.testing.assert_allclose(got0, want0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got1, want1, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert not np.allclose(got0[contexts], syn0[contexts])  # the update did something
    np.testing.assert_array_equal(got0[[0, 2, 3]], syn0[[0, 2, 3]])  # untouched rows stay


def reference_cbow(
    syn0: np.ndarray,
    syn1neg: np.ndarray,
    batch: tuple[list[list[int]], list[int], list[int]],
    alpha: float,
    cbow_mean: bool,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One HogBatch CBOW batch in float64: h_b = mean (or sum) of target b's context rows;
    columns = distinct targets, then the noise words not among them; F = H Y^T; G = (y -
    sigma(F)) alpha on b's own target (y = 1) and the noise columns (y = 0), 0 on another
    target's column and where |F| >= 6; syn0[c] += (G Y)[b] (/ |C_b| for a sum) for every
    context c of b, syn1neg[o] += (G^T H)[o]."""
    contexts, targets, noise = batch
    sig, logsig = gensim_tables()
    outputs: list[int] = []
    for t in targets:
        if t not in outputs:
            outputs.append(t)
    truth = [outputs.index(t) for t in targets]
    first_noise = len(outputs)
    outputs += [n for i, n in enumerate(noise) if n not in outputs and n not in noise[:i]]
    counts = np.array([len(c) for c in contexts], dtype=np.float64)[:, None]
    h = np.stack([syn0[c].astype(np.float64).sum(axis=0) for c in contexts])
    if cbow_mean:
        h /= counts
    y = syn1neg[outputs].astype(np.float64)
    f = (h @ y.T).astype(np.float32)
    labels = np.zeros(f.shape)
    active = np.ones(f.shape, dtype=bool)
    active[:, :first_noise] = False
    for b, col in enumerate(truth):
        active[b, col] = True
        labels[b, col] = 1.0
    inside = active & (np.abs(f) < 6)
    g = np.where(inside, (labels - sig[slot(f)]) * alpha, 0.0)
    signed = np.where(labels > 0.5, f, -f)
    loss = float(-logsig[slot(signed)][inside].astype(np.float64).sum())
    grad_h = g @ y
    if not cbow_mean:
        grad_h /= counts
    new0, new1 = syn0.astype(np.float64), syn1neg.astype(np.float64)
    for b, c in enumerate(contexts):
        np.add.at(new0, c, grad_h[b])
    np.add.at(new1, outputs, g.T @ h)
    return new0, new1, loss


@pytest.mark.parametrize("cbow_mean", [True, False])
def test_one_cbow_batch_matches_numpy_float64(cbow_mean: bool) -> None:
    rng = np.random.default_rng(4)
    syn0 = (rng.standard_normal((12, 16)) * 0.4).astype(np.float32)
    syn1neg = (rng.standard_normal((12, 16)) * 0.4).astype(np.float32)
    syn0[9] = 1.0  # target 9 from context [9]: F = 16 > 6, outside the table: no update
    syn1neg[9] = 1.0
    # a context word twice in one window, a target twice in the batch (one column, two rows),
    # a noise word that is a target (skipped) and a noise word drawn twice (kept once)
    contexts = [[1, 4, 4, 7], [2, 3], [9], [5, 6, 8], [1, 2]]
    targets = [0, 10, 9, 0, 3]
    noise = [11, 10, 2, 11]
    batch = (contexts, targets, noise)
    got0, got1, loss = _testing.w2v_hogbatch_cbow(syn0, syn1neg, *batch, 0.3, cbow_mean)
    want0, want1, want_loss = reference_cbow(syn0, syn1neg, batch, 0.3, cbow_mean)
    np.testing.assert_allclose(got0, want0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got1, want1, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert not np.allclose(got0[[1, 4, 7]], syn0[[1, 4, 7]])  # the update did something
    untouched = [0, 10, 11]  # never a context
    np.testing.assert_array_equal(got0[untouched], syn0[untouched])
    np.testing.assert_array_equal(got1[[1, 4, 5]], syn1neg[[1, 4, 5]])  # never an output


def test_bad_cbow_batches_are_a_typed_error() -> None:
    t = np.zeros((3, 4), np.float32)
    for batch in ([[0], [1]], [0], [1]), ([[0], []], [0, 1], [2]), ([[0, 3]], [0], [1]):
        with pytest.raises(ce.CandleEmbedError):
            _testing.w2v_hogbatch_cbow(t, t, *batch, 0.1, True)
    with pytest.raises(ce.CandleEmbedError):
        _testing.w2v_hogbatch_cbow(t, t, [[0]], [5], [1], 0.1, True)


def test_bad_window_rows_are_a_typed_error() -> None:
    t = np.zeros((3, 4), np.float32)
    with pytest.raises(ce.CandleEmbedError):
        _testing.w2v_hogbatch_window(t, t, [0, 3], [1], 0.1)
    with pytest.raises(ce.CandleEmbedError):
        _testing.w2v_hogbatch_window(t, t, [0], [], 0.1)


def test_quality_close_to_the_per_pair_path_on_lee() -> None:
    _, _, ours, yardstick = compare_with_default(LEE, QUALITY, {"minibatch": True})
    print(f"agreement minibatch-exact {ours:.3f} exact-exact {yardstick:.3f}")
    assert yardstick > 0.3
    assert ours >= yardstick - AGREE_TOL, (ours, yardstick)


def test_cbow_quality_close_to_the_per_target_path_on_lee() -> None:
    _, _, ours, yardstick = compare_with_default(LEE, QUALITY_CBOW, {"minibatch": True})
    print(f"agreement cbow minibatch-exact {ours:.3f} exact-exact {yardstick:.3f}")
    assert yardstick > 0.3
    assert ours >= yardstick - AGREE_TOL, (ours, yardstick)


@pytest.mark.parametrize("sg", [1, 0])
def test_minibatch_lowers_the_loss_and_is_deterministic_on_request(sg: int) -> None:
    m = ce.Word2Vec(vector_size=16, seed=5, workers=2, minibatch=True, sg=sg)
    m.build_vocab(corpus_file=LEE)
    cb = EpochLoss()
    m.train(corpus_file=LEE, total_examples=m.corpus_count, epochs=4, compute_loss=True,
            callbacks=[cb])  # fmt: skip
    per_epoch = cb.per_epoch()
    assert np.all(per_epoch > 0) and per_epoch[-1] < per_epoch[0], per_epoch
    kw: dict[str, Any] = dict(vector_size=16, epochs=2, seed=5, minibatch=True, deterministic=True)
    runs = [
        ce.Word2Vec(corpus_file=LEE, workers=w, sg=sg, **kw).wv.vectors.tobytes() for w in (1, 2, 4)
    ]
    assert runs[0] == runs[1] == runs[2]
    other_seed = ce.Word2Vec(corpus_file=LEE, workers=2, sg=sg, **(kw | {"seed": 6}))
    assert other_seed.wv.vectors.tobytes() != runs[0]


@pytest.mark.parametrize(
    "kw", [dict(sg=0, hs=1), dict(hs=1, negative=0), dict(hs=1), dict(minibatch=2)]
)
def test_unsupported_modes_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ce.CandleEmbedError):
        ce.Word2Vec(sentences=[["a", "b"]] * 10, min_count=1, **({"minibatch": True} | kw))

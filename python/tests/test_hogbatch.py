"""``Word2Vec(minibatch=True)``: HogBatch skip-gram negative sampling (Ji et al. 2016).

- one window's update (``_testing.w2v_hogbatch_window``: the kernel's gather, three gemms and
  scatter) against a float64 NumPy re-implementation of the formulas in
  ``candle_embed::word2vec::hogbatch`` with the same rows and the same noise words, gensim's
  sigmoid / log tables rebuilt here from their definition (``word2vec_inner.pyx``);
- quality on gensim's ``lee_background.cor`` against the default per-pair path (agreement of
  word-pair similarities, against two per-pair seeds as the yardstick), and that training does
  something (the loss falls);
- combined with ``deterministic=True`` it is bit-identical across worker counts;
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


def test_minibatch_lowers_the_loss_and_is_deterministic_on_request() -> None:
    m = ce.Word2Vec(vector_size=16, seed=5, workers=2, minibatch=True)
    m.build_vocab(corpus_file=LEE)
    cb = EpochLoss()
    m.train(corpus_file=LEE, total_examples=m.corpus_count, epochs=4, compute_loss=True,
            callbacks=[cb])  # fmt: skip
    per_epoch = cb.per_epoch()
    assert np.all(per_epoch > 0) and per_epoch[-1] < per_epoch[0], per_epoch
    kw: dict[str, Any] = dict(vector_size=16, epochs=2, seed=5, minibatch=True, deterministic=True)
    runs = [ce.Word2Vec(corpus_file=LEE, workers=w, **kw).wv.vectors.tobytes() for w in (1, 2, 4)]
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("kw", [dict(sg=0), dict(hs=1, negative=0), dict(hs=1), dict(minibatch=2)])
def test_unsupported_modes_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ce.CandleEmbedError):
        ce.Word2Vec(sentences=[["a", "b"]] * 10, min_count=1, **({"minibatch": True} | kw))

"""FastText training quality against gensim's ``FastText`` trained with the same parameters on
``lee_background.cor`` (gensim's test corpus), for skip-gram and CBOW with negative sampling
and skip-gram with hierarchical softmax, each over two seeds:

- wordsim353 Spearman correlation (``evaluate_word_pairs``, gensim's
  ``test_fasttext.py::TestFastTextModel.test_wm_distance``-style evaluation on its
  ``wordsim353.tsv``): our mean over seeds within ``WORDSIM_TOL`` of gensim's mean;
- agreement of the two models' cosine similarities on fixed word pairs (Spearman): ours vs
  gensim's at least gensim's own seed-to-seed agreement minus ``AGREE_TOL`` (training is
  random; two gensim runs are the yardstick);
- unseen words: their vectors are the mean of their n-gram rows of the trained table, checked
  against the independent NumPy reference (``fasttext_ref``), and their nearest neighbours
  overlap gensim's.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import candle_embed as ce
import fasttext_ref as ref
import numpy as np
import pytest

gensim_ft = pytest.importorskip("gensim.models.fasttext")
scipy_stats = pytest.importorskip("scipy.stats")
from gensim.test.utils import datapath  # noqa: E402

LEE = Path(datapath("lee_background.cor"))
WORDSIM = Path(datapath("wordsim353.tsv"))
SEEDS = (1, 2)
WORDSIM_TOL = 0.12
AGREE_TOL = 0.10
PARAMS: dict[str, Any] = dict(
    vector_size=32, window=5, min_count=5, epochs=8, sample=1e-3, min_n=3, max_n=5,
    bucket=20000, alpha=0.025, min_alpha=0.0001,
)  # fmt: skip
MODES = {
    "sg-neg": dict(sg=1, hs=0, negative=5),
    "cbow-neg": dict(sg=0, hs=0, negative=5, alpha=0.05),
    "sg-hs": dict(sg=1, hs=1, negative=0),
}
UNSEEN = ["nightz", "govermnent", "australiann", "firefigthers"]


def sentences() -> list[list[str]]:
    return [line.split() for line in LEE.read_text(encoding="utf8").splitlines()]


def train_both(mode: str, seed: int) -> tuple[Any, Any]:
    kw = PARAMS | MODES[mode]
    ours = ce.FastText(corpus_file=LEE, seed=seed, workers=2, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = gensim_ft.FastText(sentences(), seed=seed, workers=2, **kw)
    return ours, theirs


def wordsim(wv: Any) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(wv.evaluate_word_pairs(str(WORDSIM))[1][0])


def pair_sims(wv: Any, pairs: list[tuple[str, str]]) -> np.ndarray:
    return np.array([wv.similarity(a, b) for a, b in pairs])


@pytest.mark.parametrize("mode", sorted(MODES))
def test_quality_matches_gensims_fasttext(mode: str) -> None:
    runs = [train_both(mode, s) for s in SEEDS]
    ours0, theirs0 = runs[0]
    assert ours0.wv.index_to_key == list(theirs0.wv.index_to_key)  # same vocabulary
    ours_ws = np.mean([wordsim(o.wv) for o, _ in runs])
    theirs_ws = np.mean([wordsim(t.wv) for _, t in runs])
    assert abs(ours_ws - theirs_ws) <= WORDSIM_TOL, (ours_ws, theirs_ws)

    rng = np.random.default_rng(0)
    top = ours0.wv.index_to_key[20:400]  # frequent words past the stop words
    picks = rng.choice(len(top), size=(400, 2))
    pairs = [(top[a], top[b]) for a, b in picks if a != b]
    agree_ours = np.mean(
        [scipy_stats.spearmanr(pair_sims(o.wv, pairs), pair_sims(t.wv, pairs))[0] for o, t in runs]
    )
    agree_gensim = scipy_stats.spearmanr(
        pair_sims(runs[0][1].wv, pairs), pair_sims(runs[1][1].wv, pairs)
    )[0]
    print(f"{mode}: wordsim ours {ours_ws:.3f} gensim {theirs_ws:.3f}; agreement ours-gensim "
          f"{agree_ours:.3f} gensim-gensim {agree_gensim:.3f}")  # fmt: skip
    assert agree_ours >= agree_gensim - AGREE_TOL, (agree_ours, agree_gensim)
    assert agree_gensim > 0.3  # the yardstick itself is far from noise on this corpus

    # Unseen words: fastText's rule on the trained table, and neighbours like gensim's.
    wv = ours0.wv
    for w in UNSEEN:
        assert w not in wv.key_to_index
        want = ref.word_vector(wv._input, w, None, len(wv), wv.min_n, wv.max_n, wv.bucket)
        np.testing.assert_allclose(wv[w], want, rtol=1e-5, atol=1e-6, err_msg=w)
    overlap = [
        len(
            {k for k, _ in o.wv.most_similar(positive=[o.wv[w]], topn=20)}
            & {k for k, _ in t.wv.most_similar(positive=[t.wv[w]], topn=20)}
        )
        for o, t in runs
        for w in UNSEEN
    ]
    assert np.mean(overlap) >= 2, overlap

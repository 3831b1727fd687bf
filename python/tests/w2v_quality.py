"""Shared yardsticks of the training-path tests (``test_deterministic.py``,
``test_hogbatch.py``): word-pair similarity agreement between two models and per-epoch loss."""

from __future__ import annotations

from typing import Any

import candle_embed as ce
import numpy as np
import scipy.stats


def word_pairs(wv: Any, n: int = 400) -> list[tuple[str, str]]:
    """``n`` fixed random pairs of frequent words past the stop words (ranks 20..400)."""
    top = wv.index_to_key[20:400]
    picks = np.random.default_rng(0).choice(len(top), size=(n, 2))
    return [(top[a], top[b]) for a, b in picks if a != b]


def agreement(a: Any, b: Any, pairs: list[tuple[str, str]]) -> float:
    """Spearman correlation of the two models' cosine similarities on ``pairs``."""
    sa = [a.similarity(x, y) for x, y in pairs]
    sb = [b.similarity(x, y) for x, y in pairs]
    return float(scipy.stats.spearmanr(sa, sb)[0])


class EpochLoss(ce.CallbackAny2Vec):  # type: ignore[misc]
    """Records the cumulative training loss at the end of every epoch."""

    def __init__(self) -> None:
        self.totals: list[float] = []

    def on_epoch_end(self, model: Any) -> None:
        self.totals.append(model.get_latest_training_loss())

    def per_epoch(self) -> np.ndarray:
        return np.diff([0.0, *self.totals])


def compare_with_default(
    corpus: Any, params: dict[str, Any], variant: dict[str, Any]
) -> tuple[list[Any], list[Any], float, float]:
    """Train the default path and the ``variant`` keywords on ``corpus`` with seeds 1 and 2:
    ``(default wvs, variant wvs, variant-vs-default agreement, default seed-to-seed
    agreement)``. The variant is compared across seeds (variant seed 1 vs default seed 2, ...):
    a shared initialisation would flatter it."""
    default = [ce.Word2Vec(corpus_file=corpus, workers=2, seed=s, **params).wv for s in (1, 2)]
    other = [
        ce.Word2Vec(corpus_file=corpus, workers=2, seed=s, **params, **variant).wv for s in (1, 2)
    ]
    pairs = word_pairs(default[0])
    yardstick = agreement(default[0], default[1], pairs)
    ours = float(np.mean([agreement(o, d, pairs) for o, d in zip(other, default[::-1])]))
    return default, other, ours, yardstick

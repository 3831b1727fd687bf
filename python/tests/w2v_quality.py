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

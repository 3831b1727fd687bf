"""Helpers of ``candle_embed.word2vec`` kept out of the class: its state error, the tqdm
progress bar, gensim's ``count`` attribute, the class-only ``load`` and
``predict_output_word``'s softmax."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from candle_embed._errors import CandleEmbedAttributeError, CandleEmbedValueError
from candle_embed.keyed_vectors import KeyedVectors


class Word2VecStateError(CandleEmbedValueError, RuntimeError):
    """The model cannot do this yet (no vocabulary, no output weights): gensim raises
    ``RuntimeError`` here, the rest of candle_embed ``ValueError``; this is both."""


def tqdm_progress(desc: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A progress callback drawing a tqdm bar in words, with words/s."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    bar = tqdm(total=0, unit=" words", unit_scale=True, desc=desc, smoothing=0.3)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def set_counts(kv: KeyedVectors, counts: npt.NDArray[np.uint64]) -> None:
    """Attach the word counts to ``kv`` as gensim's ``count`` vector attribute."""
    expandos = getattr(kv, "expandos", None)
    if isinstance(expandos, dict):
        expandos["count"] = counts.astype(np.int64)
    elif hasattr(kv, "set_vecattr"):
        for i, c in enumerate(counts.tolist()):
            kv.set_vecattr(i, "count", c)


class ClassOnly:
    """``Word2Vec.load``: a class method that an instance refuses (as gensim's)."""

    def __get__(self, obj: object, cls: Any) -> Callable[[Any], Any]:
        if obj is not None:
            raise CandleEmbedAttributeError(
                "load is a class method: use Word2Vec.load(path), not model.load(path)"
            )
        return lambda path: cls._load(path)


def predict_from_context(
    wv: KeyedVectors,
    syn1neg: npt.NDArray[np.float32],
    idx: Sequence[int],
    cbow_mean: bool,
    topn: int,
) -> list[tuple[str, float]]:
    """gensim's ``predict_output_word`` math: ``softmax(l1 @ syn1neg.T)`` with ``l1`` the sum
    (mean with ``cbow_mean``) of the context rows ``idx``; the ``topn`` most probable words."""
    l1 = np.sum(wv.vectors[list(idx)], axis=0)
    if cbow_mean:
        l1 /= len(idx)
    prob = np.exp(np.dot(l1, syn1neg.T))
    prob /= np.sum(prob)
    top = np.argsort(-prob, kind="stable")[:topn]
    return [(wv.index_to_key[i], float(prob[i])) for i in top]

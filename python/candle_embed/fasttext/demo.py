"""The FastText part of ``candle-embed demo``: nearest vocabulary words of words the model has
never seen (misspellings, unseen forms), which only subword vectors can answer.

The CLI calls :func:`demo_lines` with the demo corpus and prints what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

import numpy as np

from candle_embed.fasttext.keyed_vectors import FastTextKeyedVectors

Progress = Union[bool, Callable[[int, int], Any]]

#: Words the demo corpus (Python's documentation) does not contain: misspellings of common
#: words and forms it never uses.
DEMO_OOV_WORDS = ("fucntion", "dictonary", "exeption", "iterables", "subclassing", "threadsafe")


def oov_neighbours(
    wv: FastTextKeyedVectors, words: Iterable[str], topn: int = 5
) -> list[tuple[str, bool, list[tuple[str, float]]]]:
    """For each word: ``(word, in_vocabulary, [(neighbour, cosine), ...])`` with the ``topn``
    vocabulary words nearest to its vector (built from its character n-grams when the model
    never saw it)."""
    out = []
    for w in words:
        known = w in wv.key_to_index
        if known:
            near = wv.most_similar(w, topn=topn)
        else:
            # A query vector in `positive` (gensim's convention, which the stub's type omits).
            query: Any = [wv.get_vector(w, norm=True)]
            near = wv.most_similar(positive=query, topn=topn)
        out.append((w, known, [(str(k), float(s)) for k, s in near]))
    return out


def misspellings(wv: FastTextKeyedVectors, n: int = 3, min_len: int = 8) -> list[str]:
    """``n`` unseen words made from frequent vocabulary words of at least ``min_len``
    letters by swapping two middle letters (deterministic: most frequent words first)."""
    out: list[str] = []
    for w in wv.index_to_key:
        if len(out) == n:
            break
        if len(w) >= min_len and w.isalpha():
            m = len(w) // 2
            typo = w[: m - 1] + w[m] + w[m - 1] + w[m + 1 :]
            if typo != w and typo not in wv.key_to_index and typo not in out:
                out.append(typo)
    return out


def demo_lines(
    sentences: Sequence[Sequence[str]],
    *,
    seed: int = 1,
    workers: int = 2,
    progress: Progress = False,
    words: Sequence[str] | None = None,
    topn: int = 5,
) -> list[str]:
    """Train a small FastText model on ``sentences`` and describe the neighbours of unseen
    words (``words``, default :data:`DEMO_OOV_WORDS` plus three generated misspellings): the
    lines ``candle-embed demo`` prints."""
    from candle_embed.fasttext.model import FastText

    model = FastText(
        sentences,
        vector_size=64,
        window=5,
        min_count=5,
        epochs=5,
        bucket=200_000,
        seed=seed,
        workers=workers,
        progress=progress,
    )
    wv = model.wv
    queries = list(words) if words is not None else [*DEMO_OOV_WORDS, *misspellings(wv)]
    s = model.stats
    lines = [
        f"fastText: {len(wv)} words + {wv.bucket} n-gram buckets x {model.vector_size}, "
        f"{s['seconds']:.1f} s ({s['words_per_second']:,.0f} words/s); neighbours of words "
        "it never saw:"
    ]
    for w, known, near in oov_neighbours(wv, queries, topn):
        tag = "" if known else " (unseen)"
        shown = ", ".join(f"{k} {c:.2f}" for k, c in near)
        lines.append(f"  {w + tag:>24} -> {shown}")
    norms = np.linalg.norm(wv.vectors, axis=1)
    if not np.all(np.isfinite(norms)):
        lines.append("  warning: non-finite vectors (training diverged)")
    return lines

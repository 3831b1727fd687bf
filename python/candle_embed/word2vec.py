"""``Word2Vec``: skip-gram with negative sampling, gensim's names and defaults.

Training runs in the fused Rust kernel ``candle_embed._native._w2v_train`` (``workers`` threads,
the GIL released): gensim's algorithm (subsampling, window shrinking, ``count**0.75`` noise
table, sigmoid table, learning rate decayed linearly from ``alpha`` to ``min_alpha``).
"""

from __future__ import annotations

import math
import numbers
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from os import PathLike, fspath
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from candle_embed import _native
from candle_embed._errors import CandleEmbedTypeError, CandleEmbedValueError
from candle_embed.keyed_vectors import KeyedVectors

_PathLike = Union[str, "PathLike[str]"]
Progress = Union[bool, Callable[[int, int], Any]]


def _int_arg(name: str, value: object, minimum: int, limit: int = 2**63) -> int:
    """`value` as an int in `[minimum, limit)`: anything with `__index__`, never a float or str."""
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise CandleEmbedTypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not minimum <= v < limit:
        raise CandleEmbedValueError(f"{name} must be in [{minimum}, {limit}), got {v}")
    return v


def _real_arg(name: str, value: object) -> float:
    """`value` as a finite float >= 0: an int, float or NumPy real, never a str."""
    if not isinstance(value, numbers.Real):
        raise CandleEmbedTypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise CandleEmbedValueError(f"{name} must be finite and >= 0, got {v}")
    return v


def _tqdm_progress(desc: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A progress callback drawing a tqdm bar in words, with words/s."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    bar = tqdm(total=0, unit=" words", unit_scale=True, desc=desc, smoothing=0.3)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


class Word2Vec:
    """Train word vectors (skip-gram, negative sampling) on ``sentences`` (an iterable of token
    lists) or ``corpus_file`` (a text file, one sentence per line, whitespace-separated).

    Only ``sg=1`` with negative sampling (``hs=0``) is implemented. ``seed`` makes training
    reproducible with ``workers=1`` (more workers update rows concurrently, lock-free, as gensim
    does, so their results vary slightly from run to run). ``progress=True`` shows a tqdm bar;
    a callable gets ``(words_done, words_total)`` about ten times a second.
    """

    def __init__(
        self,
        sentences: Iterable[Sequence[str]] | None = None,
        corpus_file: _PathLike | None = None,
        vector_size: int = 100,
        window: int = 5,
        min_count: int = 5,
        negative: int = 5,
        sg: int = 1,
        epochs: int = 5,
        alpha: float = 0.025,
        min_alpha: float = 0.0001,
        sample: float = 1e-3,
        seed: int = 1,
        workers: int = 2,
        hs: int = 0,
        progress: Progress = False,
    ) -> None:
        if sg != 1:
            raise CandleEmbedValueError("only skip-gram (sg=1) is implemented")
        if hs != 0:
            raise CandleEmbedValueError("only negative sampling (hs=0) is implemented")
        self.vector_size = _int_arg("vector_size", vector_size, 1)
        self.window = _int_arg("window", window, 1)
        self.min_count = _int_arg("min_count", min_count, 0)
        self.negative = _int_arg("negative", negative, 1)
        self.sg = 1
        self.hs = 0
        self.epochs = _int_arg("epochs", epochs, 1)
        self.alpha = _real_arg("alpha", alpha)
        self.min_alpha = _real_arg("min_alpha", min_alpha)
        self.sample = _real_arg("sample", sample)
        self.seed = _int_arg("seed", seed, 0, 2**64)
        self.workers = _int_arg("workers", workers, 1)
        self.wv: KeyedVectors = KeyedVectors([], np.zeros((0, self.vector_size), np.float32))
        self.counts: npt.NDArray[np.uint64] = np.zeros(0, np.uint64)
        self.stats: dict[str, Any] = {}
        if sentences is not None or corpus_file is not None:
            self.train(sentences, corpus_file, progress=progress)

    def train(
        self,
        sentences: Iterable[Sequence[str]] | None = None,
        corpus_file: _PathLike | None = None,
        progress: Progress = False,
    ) -> Word2Vec:
        """Build the vocabulary and train from scratch on the given corpus; sets ``wv``."""
        if (sentences is None) == (corpus_file is None):
            raise CandleEmbedValueError("give exactly one of sentences and corpus_file")
        close: Callable[[], None] | None = None
        cb: Callable[[int, int], Any] | None
        if progress is True:
            cb, close = _tqdm_progress("word2vec")
        elif callable(progress):
            cb = progress
        else:
            cb = None
        t0 = time.perf_counter()
        try:
            words, counts, vectors, stats = _native._w2v_train(
                sentences,
                None if corpus_file is None else fspath(corpus_file),
                vector_size=self.vector_size,
                window=self.window,
                min_count=self.min_count,
                negative=self.negative,
                epochs=self.epochs,
                alpha=self.alpha,
                min_alpha=self.min_alpha,
                sample=self.sample,
                seed=self.seed,
                workers=self.workers,
                progress=cb,
            )
        finally:
            if close is not None:
                close()
        stats["seconds"] = time.perf_counter() - t0
        stats["words_per_second"] = stats["raw_words"] / max(stats["seconds"], 1e-9)
        self.wv = KeyedVectors(words, vectors)
        self.counts = counts
        self.stats = stats
        return self

    def __repr__(self) -> str:
        return (
            f"Word2Vec(vocab={len(self.wv)}, vector_size={self.vector_size}, "
            f"window={self.window}, negative={self.negative}, epochs={self.epochs})"
        )

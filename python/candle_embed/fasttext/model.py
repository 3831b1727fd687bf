"""``FastText``: word vectors from words and their character n-grams, gensim's names.

Training runs in Rust on the Word2Vec trainer (``candle_embed._native._ft_train``, the GIL
released): the same jobs, windows, subsampling, schedule, negative sampling and hierarchical
softmax, with each word's input vector the bag of its own row and its n-gram rows
(``src/fasttext/train.rs``, fastText's rule as gensim's ``fasttext_inner.pyx``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from os import PathLike
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from candle_embed import _native
from candle_embed._errors import (
    CandleEmbedNotImplementedError,
    CandleEmbedValueError,
    typed_methods,
)
from candle_embed._w2v_args import MAX_EPOCHS, flag_arg, int_arg, real_arg
from candle_embed._w2v_support import tqdm_progress
from candle_embed.corpora import native_corpus
from candle_embed.fasttext.keyed_vectors import FastTextKeyedVectors

_PathLike = Union[str, "PathLike[str]"]
Progress = Union[bool, Callable[[int, int], Any]]
_MAX_I32 = 2**31
# The hyper-parameters passed to the trainer as they are stored (gensim's names).
_HYPER = (
    "vector_size", "window", "min_count", "negative", "epochs", "alpha", "min_alpha", "sample",
    "seed", "workers", "ns_exponent", "shrink_windows", "batch_words",
)  # fmt: skip


@typed_methods
class FastText:
    """Train FastText vectors (Bojanowski et al., 2017) on ``sentences`` (an iterable of token
    lists) or ``corpus_file`` (one sentence per line, whitespace-separated): each word's
    vector is the mean of its own row and the rows of its character n-grams (``min_n`` to
    ``max_n`` characters, hashed into ``bucket`` rows), so ``model.wv`` has a vector for any
    word, seen or not.

    gensim's parameters and semantics: skip-gram (``sg=1``, the default here, like
    ``candle_embed.Word2Vec``; gensim's ``FastText`` defaults to CBOW, ``sg=0``) or CBOW
    (``cbow_mean``), negative sampling (``negative``) and/or hierarchical softmax (``hs=1``);
    ``word_ngrams > 1`` is not implemented (nor in gensim). ``seed`` makes training
    reproducible with ``workers=1``, or with any ``workers`` when ``deterministic=True``
    (synchronous minibatches, as ``Word2Vec``). ``progress=True`` shows a tqdm bar; a callable gets
    ``(words_done, words_total)`` about ten times a second.
    """

    def __init__(
        self,
        sentences: Iterable[Sequence[str]] | None = None,
        corpus_file: _PathLike | None = None,
        sg: int = 1,
        hs: int = 0,
        vector_size: int = 100,
        alpha: float = 0.025,
        window: int = 5,
        min_count: int = 5,
        sample: float = 1e-3,
        seed: int = 1,
        workers: int = 2,
        min_alpha: float = 0.0001,
        negative: int = 5,
        ns_exponent: float = 0.75,
        cbow_mean: int = 1,
        epochs: int = 5,
        min_n: int = 3,
        max_n: int = 6,
        bucket: int = 2_000_000,
        word_ngrams: int = 1,
        shrink_windows: bool = True,
        batch_words: int = 10_000,
        progress: Progress = False,
        deterministic: bool = False,
    ) -> None:
        if word_ngrams != 1:
            raise CandleEmbedNotImplementedError(
                "word_ngrams != 1 is not implemented (gensim does not implement it either)"
            )
        self.sg = int(flag_arg("sg", sg))
        self.hs = int(flag_arg("hs", hs))
        self.vector_size = int_arg("vector_size", vector_size, 1, _MAX_I32)
        self.window = int_arg("window", window, 0, _MAX_I32)
        self.min_count = int_arg("min_count", min_count, 0, _MAX_I32)
        self.negative = int_arg("negative", negative, 0, _MAX_I32)
        self.epochs = int_arg("epochs", epochs, 0, MAX_EPOCHS + 1)
        self.alpha = real_arg("alpha", alpha)
        self.min_alpha = real_arg("min_alpha", min_alpha)
        self.sample = real_arg("sample", sample)
        self.ns_exponent = real_arg("ns_exponent", ns_exponent, None)
        self.cbow_mean = int(flag_arg("cbow_mean", cbow_mean))
        self.shrink_windows = flag_arg("shrink_windows", shrink_windows)
        self.batch_words = int_arg("batch_words", batch_words, 1, _MAX_I32)
        self.seed = int_arg("seed", seed, 0, 2**64)
        self.workers = int_arg("workers", workers, 1, 1025)
        self.deterministic = bool(flag_arg("deterministic", deterministic))
        self.word_ngrams = 1
        min_n = int_arg("min_n", min_n, 0, _MAX_I32)
        max_n = int_arg("max_n", max_n, 0, _MAX_I32)
        bucket = int_arg("bucket", bucket, 0, _MAX_I32)
        if max_n < min_n:
            bucket = 0  # no n-gram lengths: no bucket rows (gensim)
        self.wv = FastTextKeyedVectors(self.vector_size, min_n, max_n, bucket)
        self.counts: npt.NDArray[np.uint64] = np.zeros(0, np.uint64)
        self.corpus_total_words = 0
        self.syn1neg: npt.NDArray[np.float32] | None = None
        self.syn1: npt.NDArray[np.float32] | None = None
        self.stats: dict[str, Any] = {}
        if sentences is not None or corpus_file is not None:
            self.train(sentences, corpus_file, progress=progress)

    def train(
        self,
        sentences: Iterable[Sequence[str]] | None = None,
        corpus_file: _PathLike | None = None,
        progress: Progress = False,
    ) -> FastText:
        """Build the vocabulary and train from scratch on the given corpus; sets ``wv``,
        ``counts``, ``corpus_total_words`` and ``syn1neg``."""
        if (sentences is None) == (corpus_file is None):
            raise CandleEmbedValueError("give exactly one of sentences and corpus_file")
        corpus = native_corpus(sentences, corpus_file)
        close: Callable[[], None] | None = None
        cb: Callable[[int, int], Any] | None
        if progress is True:
            cb, close = tqdm_progress("fasttext")
        else:
            cb = progress if callable(progress) else None
        wv = self.wv
        t0 = time.perf_counter()
        try:
            words, counts, table, syn1, syn1neg, stats = _native._ft_train(
                corpus,
                sg=bool(self.sg),
                hs=bool(self.hs),
                cbow_mean=bool(self.cbow_mean),
                min_n=wv.min_n,
                max_n=wv.max_n,
                bucket=wv.bucket,
                progress=cb,
                deterministic=self.deterministic,
                **{name: getattr(self, name) for name in _HYPER},
            )
        finally:
            if close is not None:
                close()
        stats["seconds"] = time.perf_counter() - t0
        stats["words_per_second"] = stats["raw_words"] / max(stats["seconds"], 1e-9)
        self.wv = FastTextKeyedVectors.from_tables(words, table, wv.min_n, wv.max_n, wv.bucket)
        self.counts = counts
        self.corpus_total_words = int(stats["corpus_words"])
        self.syn1neg = syn1neg
        self.syn1 = syn1
        self.stats = stats
        return self

    def output_layer(self) -> npt.NDArray[np.float32]:
        """The output layer a ``.bin`` file stores: ``syn1neg`` (negative sampling), else
        ``syn1`` (hierarchical softmax)."""
        use_neg = self.syn1neg is not None and (self.negative or not self.hs)
        layer = self.syn1neg if use_neg else self.syn1
        if layer is None:
            raise CandleEmbedValueError(
                "the model has no output layer: train it or load it with load_facebook_model"
            )
        return layer

    def set_output_layer(self, layer: npt.NDArray[np.float32]) -> None:
        """Install a loaded output layer where gensim puts it: ``syn1`` when ``hs``,
        ``syn1neg`` when ``negative`` (both name the same array when both are set)."""
        self.syn1 = layer if self.hs else None
        self.syn1neg = layer if self.negative or not self.hs else None

    def __repr__(self) -> str:
        return (
            f"FastText(vocab={len(self.wv)}, vector_size={self.vector_size}, sg={self.sg}, "
            f"min_n={self.wv.min_n}, max_n={self.wv.max_n}, bucket={self.wv.bucket})"
        )

"""``Word2Vec`` with gensim's names and semantics: skip-gram (``sg=1``) or CBOW (``sg=0``, with
``cbow_mean``), negative sampling (``negative``, ``ns_exponent``) and/or hierarchical softmax
(``hs=1``, gensim's Huffman tree), subsampling, shrinking windows, ``max_vocab_size`` /
``max_final_vocab`` / ``trim_rule`` / ``sorted_vocab``, online vocabulary growth
(``build_vocab(..., update=True)``), the training loss (``compute_loss``, accumulated in float64),
epoch callbacks, ``predict_output_word``, and ``save`` / ``load`` of the whole model
(safetensors + JSON, no pickle) from which training continues exactly.

The corpus is read once (in Rust; gzip, bzip2 and xz files decompressed) and each epoch runs in
the Rust kernel ``candle_embed._native._W2VModel.train_epoch`` on ``workers`` threads with the GIL
released: gensim's algorithm, update for update (Hogwild, as gensim). With ``workers=1`` a seed
gives bit-identical vectors; ``deterministic=True`` gives them for any ``workers`` (synchronous
minibatches of fixed sub-blocks, see ``candle_embed::word2vec::deterministic``). ``minibatch=True``
trains negative sampling by HogBatch windows (skip-gram, ``candle_embed::word2vec::hogbatch``)
or batches of 8 targets (CBOW, ``candle_embed::word2vec::hogbatch_cbow``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from candle_embed import _native
from candle_embed._errors import CandleEmbedAttributeError, CandleEmbedValueError, typed_methods
from candle_embed._w2v_args import (
    MAX_EPOCHS,
    flag_arg,
    int_arg,
    minibatch_arg,
    opt_int_arg,
    real_arg,
)
from candle_embed._w2v_persist import load_model, save_model
from candle_embed._w2v_support import (
    ClassOnly,
    Word2VecStateError,
    predict_from_context,
    set_counts,
    tqdm_progress,
)
from candle_embed.callbacks import CallbackAny2Vec
from candle_embed.corpora import LineSentence, PathLineSentences, native_corpus
from candle_embed.keyed_vectors import KeyedVectors

__all__ = ["CallbackAny2Vec", "LineSentence", "PathLineSentences", "Word2Vec"]

_PathLike = Union[str, "PathLike[str]"]
Progress = Union[bool, Callable[[int, int], Any]]


@typed_methods
class Word2Vec:
    """Train word vectors on ``sentences`` (an iterable of token lists, a ``LineSentence`` /
    ``PathLineSentences``, or a path) or ``corpus_file`` (a text file, one sentence per line;
    ``.gz`` / ``.bz2`` / ``.xz`` read transparently). gensim's parameters and defaults, except
    ``sg=1`` (skip-gram) and ``workers=2``. ``progress=True`` draws a tqdm bar; a callable gets
    ``(words_done, words_total)`` about ten times a second.
    """

    load = ClassOnly()

    def __init__(
        self,
        sentences: Iterable[Sequence[str]] | None = None,
        corpus_file: _PathLike | None = None,
        *,
        vector_size: int = 100,
        alpha: float = 0.025,
        window: int = 5,
        min_count: int = 5,
        max_vocab_size: int | None = None,
        sample: float = 1e-3,
        seed: int = 1,
        workers: int = 2,
        min_alpha: float = 0.0001,
        sg: int = 1,
        hs: int = 0,
        negative: int = 5,
        ns_exponent: float = 0.75,
        cbow_mean: int = 1,
        epochs: int = 5,
        trim_rule: Callable[[str, int, int], int] | None = None,
        sorted_vocab: int = 1,
        batch_words: int = 10000,
        compute_loss: bool = False,
        callbacks: Sequence[Any] = (),
        max_final_vocab: int | None = None,
        shrink_windows: bool = True,
        progress: Progress = False,
        deterministic: bool = False,
        minibatch: bool = False,
    ) -> None:
        # a row's bytes (4 x vector_size) must be a valid NumPy size (< 2**63)
        self.vector_size = int_arg("vector_size", vector_size, 1, 2**61)
        self.layer1_size = self.vector_size
        self.alpha = real_arg("alpha", alpha)
        self.window = int_arg("window", window, 1, 10001)
        self.min_count = int_arg("min_count", min_count, 0)
        self.max_vocab_size = opt_int_arg("max_vocab_size", max_vocab_size, 1)
        self.sample = real_arg("sample", sample)
        self.seed = int_arg("seed", seed, 0, 2**64)
        self.workers = int_arg("workers", workers, 1, 1025)
        self.min_alpha = real_arg("min_alpha", min_alpha)
        self.sg = int(flag_arg("sg", sg))
        self.hs = int(flag_arg("hs", hs))
        self.negative = int_arg("negative", negative, 0, 1_000_001)
        self.ns_exponent = real_arg("ns_exponent", ns_exponent, None)
        self.cbow_mean = int(flag_arg("cbow_mean", cbow_mean))
        self.epochs = int_arg("epochs", epochs, 1, MAX_EPOCHS + 1)
        self.sorted_vocab = int(flag_arg("sorted_vocab", sorted_vocab))
        self.batch_words = int_arg("batch_words", batch_words, 1)
        self.compute_loss = bool(compute_loss)
        self.max_final_vocab = opt_int_arg("max_final_vocab", max_final_vocab, 0)
        self.shrink_windows = bool(flag_arg("shrink_windows", shrink_windows))
        self.deterministic = bool(flag_arg("deterministic", deterministic))
        self.minibatch = minibatch_arg(minibatch, self.sg, self.hs, self.negative)
        if self.min_alpha > self.alpha:
            raise CandleEmbedValueError(f"min_alpha ({min_alpha}) must be <= alpha ({alpha})")
        self._native = _native._W2VModel(
            self.vector_size, bool(self.sg), bool(self.hs), self.negative, bool(self.cbow_mean),
            self.window, self.shrink_windows, self.ns_exponent, self.seed,
        )  # fmt: skip
        self.running_training_loss = 0.0
        self.min_alpha_yet_reached = self.alpha
        self.corpus_count = 0
        self.corpus_total_words = 0
        self.train_count = 0
        self.total_train_time = 0.0
        self.effective_min_count = self.min_count
        self.stats: dict[str, Any] = {}
        self._session: dict[str, Any] | None = None
        self._tables: dict[str, Any] = {}
        self._report: dict[str, int] = {}
        self._scanned: Any = None
        self.wv: KeyedVectors = KeyedVectors([], np.zeros((0, self.vector_size), np.float32))
        if sentences is not None or corpus_file is not None:
            corpus = native_corpus(sentences, corpus_file)
            self._build(corpus, False, trim_rule)
            self._train(corpus, self.corpus_count, None, self.epochs, callbacks, progress)

    # --- vocabulary ---------------------------------------------------------------------
    def _build(self, corpus: Any, update: bool, trim_rule: Any) -> dict[str, int]:
        report = self._native.build_vocab(
            corpus, update, self.min_count, self.sample, self.max_final_vocab,
            bool(self.sorted_vocab), self.max_vocab_size, trim_rule,
        )  # fmt: skip
        self.corpus_count = corpus.examples
        self.corpus_total_words = corpus.total_words
        return self._after_vocab(report)

    def _after_vocab(self, report: dict[str, int]) -> dict[str, int]:
        self.effective_min_count = report["effective_min_count"]
        self._report = report
        self._refresh()
        return report

    def build_vocab(
        self,
        corpus_iterable: Iterable[Sequence[str]] | None = None,
        corpus_file: _PathLike | None = None,
        update: bool = False,
        progress_per: int = 10000,
        keep_raw_vocab: bool = False,
        trim_rule: Callable[[str, int, int], int] | None = None,
    ) -> None:
        """gensim's ``build_vocab``: count the corpus's words, keep those passing ``min_count``
        / ``max_final_vocab`` / ``trim_rule``, and (re)initialise the weights; with
        ``update=True`` add the new words to a trained model, keeping its vectors."""
        if update and len(self.wv) == 0:
            raise Word2VecStateError(
                "cannot update the vocabulary of a model that has none: build it first"
            )
        self._build(native_corpus(corpus_iterable, corpus_file), bool(update), trim_rule)

    def scan_vocab(
        self,
        corpus_iterable: Iterable[Sequence[str]] | None = None,
        corpus_file: _PathLike | None = None,
        progress_per: int = 10000,
        workers: int | None = None,
        trim_rule: Callable[[str, int, int], int] | None = None,
    ) -> tuple[int, int]:
        """Read the corpus (gensim's ``scan_vocab``): returns ``(total_words, corpus_count)``;
        ``prepare_vocab`` then builds the vocabulary from it."""
        corpus = native_corpus(corpus_iterable, corpus_file)
        self._scanned = (corpus, trim_rule)
        self.corpus_count, self.corpus_total_words = corpus.examples, corpus.total_words
        return corpus.total_words, corpus.examples

    def prepare_vocab(
        self,
        update: bool = False,
        keep_raw_vocab: bool = False,
        trim_rule: Callable[[str, int, int], int] | None = None,
        min_count: int | None = None,
        sample: float | None = None,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """gensim's ``prepare_vocab`` on the last ``scan_vocab``: returns its report values
        (``drop_unique``, ``retain_total``, ``num_retained_words``, ...); ``dry_run`` only
        reports."""
        if self._scanned is None:
            raise Word2VecStateError("call scan_vocab first")
        corpus, scan_rule = self._scanned
        rule = trim_rule if trim_rule is not None else scan_rule
        if min_count:
            self.min_count = int_arg("min_count", min_count, 0)
        if sample:
            self.sample = real_arg("sample", sample)
        target = self._native
        if dry_run:
            target = _native._W2VModel(
                self.vector_size, bool(self.sg), bool(self.hs), self.negative,
                bool(self.cbow_mean), self.window, self.shrink_windows, self.ns_exponent, 1,
            )  # fmt: skip
        report = target.build_vocab(
            corpus, bool(update), self.min_count, self.sample, self.max_final_vocab,
            bool(self.sorted_vocab), self.max_vocab_size, rule,
        )  # fmt: skip
        if dry_run:
            return dict(report)
        return self._after_vocab(report)

    def build_vocab_from_freq(
        self,
        word_freq: Mapping[str, int],
        keep_raw_vocab: bool = False,
        corpus_count: int | None = None,
        trim_rule: Callable[[str, int, int], int] | None = None,
        update: bool = False,
    ) -> None:
        """gensim's ``build_vocab_from_freq``: the vocabulary from ``{word: count}``."""
        if update and len(self.wv) == 0:
            raise Word2VecStateError("cannot update the vocabulary of a model that has none")
        words = list(word_freq)
        counts = [int_arg(f"count of {w!r}", word_freq[w], 0, 2**64) for w in words]
        self.corpus_count = int_arg("corpus_count", corpus_count or 0, 0)
        report = self._native.build_vocab_from_freq(
            words, counts, self.corpus_count, bool(update), self.min_count, self.sample,
            self.max_final_vocab, bool(self.sorted_vocab), trim_rule,
        )  # fmt: skip
        self._after_vocab(report)

    def reset_from(self, other_model: Word2Vec) -> None:
        """Take ``other_model``'s vocabulary (words, counts, order) and reset the weights."""
        counts = other_model._native.vocab_arrays()[0].tolist()
        report = self._native.build_vocab_from_freq(
            other_model.wv.index_to_key, counts, other_model.corpus_count, False, 0,
            self.sample, None, False, None,
        )  # fmt: skip
        self.corpus_count = other_model.corpus_count
        self.corpus_total_words = other_model.corpus_total_words
        self._after_vocab(report)

    def _refresh(self) -> None:
        """Rebuild ``wv`` (and drop cached tables) from the native model."""
        self._tables = {}
        vectors = self._native.table("vectors")
        if vectors is None:  # the input table always exists; a None is a native bug
            raise Word2VecStateError("the native model has no input vectors")
        self.wv = KeyedVectors(self._native.words(), vectors)
        set_counts(self.wv, self.counts)

    @property
    def counts(self) -> npt.NDArray[np.uint64]:
        """Count of each word (as ``wv.index_to_key``)."""
        counts: npt.NDArray[np.uint64] = self._native.vocab_arrays()[0]
        return counts

    @property
    def cum_table(self) -> npt.NDArray[np.uint32]:
        """gensim's noise table (cumulative ``count**ns_exponent`` scaled to ``2**31 - 1``)."""
        table: npt.NDArray[np.uint32] = self._native.vocab_arrays()[2]
        return table

    def _table(self, name: str) -> npt.NDArray[np.float32] | None:
        if name not in self._tables:
            self._tables[name] = self._native.table(name)
        table: npt.NDArray[np.float32] | None = self._tables[name]
        return table

    @property
    def syn1neg(self) -> npt.NDArray[np.float32]:
        """Output weights of negative sampling ``(V, vector_size)`` (a copy, cached until
        the next training)."""
        t = self._table("syn1neg")
        if t is None:
            raise CandleEmbedAttributeError("this model has no syn1neg (negative=0)")
        return t

    @property
    def syn1(self) -> npt.NDArray[np.float32]:
        """Inner-node weights of hierarchical softmax ``(V, vector_size)`` (a copy)."""
        t = self._table("syn1")
        if t is None:
            raise CandleEmbedAttributeError("this model has no syn1 (hs=0)")
        return t

    # --- training -----------------------------------------------------------------------
    def train(
        self,
        corpus_iterable: Iterable[Sequence[str]] | None = None,
        corpus_file: _PathLike | None = None,
        total_examples: int | None = None,
        total_words: int | None = None,
        epochs: int | None = None,
        start_alpha: float | None = None,
        end_alpha: float | None = None,
        word_count: int = 0,
        queue_factor: int = 2,
        report_delay: float = 1.0,
        compute_loss: bool = False,
        callbacks: Sequence[Any] = (),
        progress: Progress = False,
    ) -> tuple[int, int]:
        """gensim's ``train``: ``epochs`` passes over the corpus, the learning rate decayed
        linearly from ``start_alpha`` (default ``alpha``) to ``end_alpha`` (``min_alpha``) by
        the fraction of ``total_examples`` (or ``total_words``) done. Returns
        ``(effective_words, raw_words)``."""
        if start_alpha:
            self.alpha = real_arg("start_alpha", start_alpha)
        if end_alpha:
            self.min_alpha = real_arg("end_alpha", end_alpha)
        if epochs is None or int_arg("epochs", epochs, 0, MAX_EPOCHS + 1) == 0:
            raise CandleEmbedValueError(
                "give an explicit epochs count (usually epochs=model.epochs)"
            )
        if total_examples is None and total_words is None:
            raise CandleEmbedValueError(
                "give total_examples or total_words for the learning-rate schedule "
                "(total_examples=model.corpus_count after build_vocab on the same corpus)"
            )
        self.epochs = int_arg("epochs", epochs, 1, MAX_EPOCHS + 1)
        self.compute_loss = bool(compute_loss)
        corpus = native_corpus(corpus_iterable, corpus_file)
        return self._train(corpus, total_examples, total_words, self.epochs, callbacks, progress)

    def _check_trainable(self, corpus: Any) -> None:
        if len(self.wv) == 0:
            if self.corpus_total_words == 0:
                raise Word2VecStateError("the corpus is empty (no words): nothing to train")
            raise Word2VecStateError(
                f"the vocabulary is empty: min_count={self.min_count} (effective "
                f"{self.effective_min_count}) keeps none of the corpus's words; build the "
                "vocabulary (build_vocab) before training"
            )
        if self.min_alpha > self.alpha:
            raise CandleEmbedValueError(f"min_alpha ({self.min_alpha}) > alpha ({self.alpha})")
        words = corpus.total_words
        if words * self.epochs >= 2**64:
            raise CandleEmbedValueError(
                f"epochs={self.epochs} x {words} corpus words overflows 64 bits"
            )

    def _push_inputs(self) -> None:
        """Train from what ``wv`` holds now (the user may have edited it)."""
        if len(self.wv) != len(self._native.words()):
            raise Word2VecStateError(
                "model.wv does not match the model's vocabulary (was it replaced?)"
            )
        lockf = getattr(self.wv, "vectors_lockf", None)
        lockf = np.ones(1, np.float32) if lockf is None else np.asarray(lockf, np.float32)
        self._native.set_inputs(np.asarray(self.wv.vectors, np.float32), lockf.reshape(-1))

    def _train(
        self,
        corpus: Any,
        total_examples: int | None,
        total_words: int | None,
        epochs: int,
        callbacks: Sequence[Any],
        progress: Progress,
    ) -> tuple[int, int]:
        self._check_trainable(corpus)
        self._session = {
            "epoch": 0, "epochs": epochs, "start_alpha": self.alpha, "end_alpha": self.min_alpha,
            "total_examples": total_examples, "total_words": total_words,
            "compute_loss": self.compute_loss, "trained": 0, "raw": 0, "loss": 0.0,
        }  # fmt: skip
        return self._run(corpus, callbacks, progress)

    def resume_training(
        self,
        corpus_iterable: Iterable[Sequence[str]] | None = None,
        corpus_file: _PathLike | None = None,
        callbacks: Sequence[Any] = (),
        progress: Progress = False,
    ) -> tuple[int, int]:
        """Finish the ``train`` call this model was saved in (from an epoch-end callback):
        the remaining epochs, with the same schedule and random streams, so the result is
        bit-identical (``workers=1``) to a run never interrupted."""
        if self._session is None:
            raise Word2VecStateError("no interrupted training to resume (saved outside train)")
        corpus = native_corpus(corpus_iterable, corpus_file)
        self._check_trainable(corpus)
        return self._run(corpus, callbacks, progress)

    def _run(self, corpus: Any, callbacks: Sequence[Any], progress: Progress) -> tuple[int, int]:
        s = self._session
        assert s is not None
        self._push_inputs()
        close: Callable[[], None] | None = None
        cb: Callable[[int, int], Any] | None = None
        if progress is True:
            cb, close = tqdm_progress("word2vec")
        elif callable(progress):
            cb = progress
        total = corpus.total_words * s["epochs"]
        self.running_training_loss = s["loss"]
        t0 = time.perf_counter()
        try:
            for c in callbacks:
                c.on_train_begin(self)
            while s["epoch"] < s["epochs"]:
                for c in callbacks:
                    c.on_epoch_begin(self)
                done = s["raw"]
                step = None if cb is None else (lambda d, done=done: cb(done + d, total))
                r = self._native.train_epoch(
                    corpus, s["epoch"], s["epochs"], s["start_alpha"], s["end_alpha"],
                    s["total_examples"], s["total_words"], self.batch_words, s["compute_loss"],
                    self.workers, step, self.deterministic, self.minibatch,
                )  # fmt: skip
                s["epoch"] += 1
                s["trained"] += r["effective_words"]
                s["raw"] += r["raw_words"]
                s["loss"] += r["loss"]
                self.running_training_loss = s["loss"]
                if callbacks:
                    self._refresh()
                    for c in callbacks:
                        c.on_epoch_end(self)
                    self._push_inputs()
            if cb is not None:
                cb(s["raw"], total)
        finally:
            if close is not None:
                close()
            self._refresh()
            seconds = time.perf_counter() - t0
            self.total_train_time += seconds
        self.min_alpha_yet_reached = self.min_alpha
        self.train_count += 1
        self._session = None
        for c in callbacks:
            c.on_train_end(self)
        self.stats = {
            "raw_words": s["raw"], "effective_words": s["trained"],
            "corpus_words": corpus.total_words, "sentences": corpus.examples,
            "seconds": seconds, "words_per_second": s["raw"] / max(seconds, 1e-9),
        }  # fmt: skip
        return s["trained"], s["raw"]

    def get_latest_training_loss(self) -> float:
        """The loss summed over the last ``train`` call (``compute_loss=True``), in float64:
        ``-log sigma(+-l1 . l2)`` per output target, as gensim's tally."""
        return float(self.running_training_loss)

    # --- queries ------------------------------------------------------------------------
    def predict_output_word(
        self, context_words_list: Sequence[str | int], topn: int = 10
    ) -> list[tuple[str, float]] | None:
        """gensim's ``predict_output_word``: the ``topn`` most probable centre words given the
        context (words or indices): ``softmax(l1 @ syn1neg.T)``, ``l1`` the sum (mean with
        ``cbow_mean``) of the context vectors. ``None`` when no context word is known."""
        if not self.negative:
            raise Word2VecStateError("predict_output_word needs negative sampling (negative > 0)")
        if len(self.wv) == 0 or len(self.wv) != len(self._native.words()):
            raise Word2VecStateError("this model has no output weights to predict with")
        topn = int_arg("topn", topn, 0)
        idx = []
        for w in list(context_words_list):  # a huge sized iterable: MemoryError at once
            if isinstance(w, str):
                if w in self.wv:
                    idx.append(self.wv.get_index(w))
            elif 0 <= int_arg("context index", w, -(2**63)) < len(self.wv):
                idx.append(int(w))
        if not idx:
            return None
        return predict_from_context(self.wv, self.syn1neg, idx, bool(self.cbow_mean), topn)

    # --- persistence --------------------------------------------------------------------
    def save(self, fname: _PathLike) -> None:
        """Save the whole model (vectors, output weights, vocabulary, settings, the random
        streams' position and any interrupted training) to one safetensors file."""
        if len(self.wv) == len(self._native.words()):
            self._push_inputs()
        save_model(self, fname)

    @classmethod
    def _load(cls, fname: _PathLike) -> Word2Vec:
        m = cls.__new__(cls)
        load_model(m, fname)
        m._refresh()
        return m

    def __repr__(self) -> str:
        return (
            f"Word2Vec<vocab={len(self.wv)}, vector_size={self.vector_size}, sg={self.sg}, "
            f"hs={self.hs}, negative={self.negative}, window={self.window}, alpha={self.alpha}>"
        )

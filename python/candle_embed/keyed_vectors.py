"""``KeyedVectors``: words and their vectors, with gensim's names and habits.

Similarity queries are NumPy matrix products over unit-normalised rows; file reading and writing
is in Rust (``candle_embed._native``), atomic (temporary file, then rename).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from os import PathLike, fspath
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from candle_embed import _native
from candle_embed._errors import CandleEmbedKeyError, CandleEmbedValueError

_PathLike = Union[str, "PathLike[str]"]
_Words = Union[str, Sequence[str], None]


def format_for_path(path: _PathLike) -> str:
    """The file format implied by an output path's extension: text, binary or safetensors."""
    p = fspath(path).lower()
    if p.endswith(".bin"):
        return "binary"
    if p.endswith(".safetensors"):
        return "safetensors"
    if p.endswith((".txt", ".vec")):
        return "text"
    raise CandleEmbedValueError(
        f"cannot tell the format of {fspath(path)!r}: use .txt or .vec (word2vec text), "
        ".bin (word2vec binary) or .safetensors"
    )


def _as_list(words: _Words) -> list[str]:
    if words is None:
        return []
    if isinstance(words, str):
        return [words]
    return list(words)


class KeyedVectors:
    """Words (``index_to_key``) and a float32 ``(len, vector_size)`` table (``vectors``)."""

    def __init__(self, index_to_key: Sequence[str], vectors: npt.ArrayLike) -> None:
        keys = list(index_to_key)
        vecs = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if vecs.ndim != 2 or vecs.shape[0] != len(keys):
            raise CandleEmbedValueError(
                f"vectors must have shape ({len(keys)}, dim), got {vecs.shape}"
            )
        self.index_to_key: list[str] = keys
        self.key_to_index: dict[str, int] = {}
        for i, k in enumerate(keys):
            self.key_to_index.setdefault(k, i)
        self.vectors: npt.NDArray[np.float32] = vecs
        self._norms: npt.NDArray[np.float32] | None = None

    # --- container protocol -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key: object) -> bool:
        return key in self.key_to_index

    def __getitem__(self, key: str) -> npt.NDArray[np.float32]:
        return self.get_vector(key)

    def __repr__(self) -> str:
        return f"KeyedVectors({len(self)} keys, vector_size={self.vector_size})"

    @property
    def vector_size(self) -> int:
        """The dimensionality of the vectors (``vectors.shape[1]``)."""
        return int(self.vectors.shape[1])

    def get_index(self, key: str) -> int:
        """The row of ``key``; ``KeyError`` if it is not in the vocabulary."""
        try:
            return self.key_to_index[key]
        except KeyError:
            raise CandleEmbedKeyError(f"Key '{key}' not present in vocabulary") from None

    def get_vector(self, key: str, norm: bool = False) -> npt.NDArray[np.float32]:
        """A copy of ``key``'s vector (unit length with ``norm=True``)."""
        i = self.get_index(key)
        src = self._unit() if norm else self.vectors
        out: npt.NDArray[np.float32] = src[i].copy()
        return out

    @property
    def embedding(self) -> _native.Embedding:
        """The table as a frozen ``candle_embed.Embedding`` (rows in ``index_to_key`` order)."""
        return _native.Embedding.from_pretrained(self.vectors, freeze=True)

    # --- similarity ---------------------------------------------------------------------
    def _unit(self) -> npt.NDArray[np.float32]:
        if self._norms is None or self._norms.shape != self.vectors.shape:
            n = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._norms = (self.vectors / np.where(n == 0, 1, n)).astype(np.float32)
        return self._norms

    def fill_norms(self, force: bool = False) -> None:
        """Recompute the unit-normalised rows (after editing ``vectors`` in place)."""
        self._norms = None
        self._unit()

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words."""
        u = self._unit()
        return float(np.dot(u[self.get_index(w1)], u[self.get_index(w2)]))

    def most_similar(
        self,
        positive: _Words = None,
        negative: _Words = None,
        topn: int | None = 10,
        restrict_vocab: int | None = None,
    ) -> Any:
        """The ``topn`` words nearest (cosine) to the mean of the unit vectors of ``positive``
        minus those of ``negative`` (gensim's 3CosAdd), the query words excluded. Keys may be
        words or vectors. ``topn=None`` returns all similarities as an array."""
        pos = _as_list(positive) if not isinstance(positive, np.ndarray) else [positive]
        neg = _as_list(negative) if not isinstance(negative, np.ndarray) else [negative]
        if not pos and not neg:
            raise CandleEmbedValueError("cannot compute similarity with no input")
        unit = self._unit()
        parts, exclude = [], set()
        for weight, items in ((1.0, pos), (-1.0, neg)):
            for item in items:
                if isinstance(item, str):
                    i = self.get_index(item)
                    exclude.add(i)
                    parts.append(weight * unit[i])
                else:
                    parts.append(weight * np.asarray(item, dtype=np.float32))
        mean = np.mean(np.stack(parts), axis=0)
        norm = float(np.linalg.norm(mean))
        mean = mean / (norm if norm > 0 else 1.0)
        limit = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
        dists = unit[:limit] @ mean.astype(np.float32)
        if topn is None:
            return dists
        want = min(topn + len(exclude), limit)
        best = np.argpartition(-dists, want - 1)[:want] if want < limit else np.arange(limit)
        best = best[np.argsort(-dists[best], kind="stable")]
        out = [(self.index_to_key[i], float(dists[i])) for i in best if i not in exclude]
        return out[:topn]

    # --- evaluation (gensim's return shapes) --------------------------------------------
    def _ok_vocab(self, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
        keys = self.index_to_key[:restrict_vocab]
        if case_insensitive:
            return {k.upper(): i for i, k in reversed(list(enumerate(keys)))}
        return {k: i for i, k in reversed(list(enumerate(keys)))}

    def evaluate_word_pairs(
        self,
        pairs: _PathLike,
        delimiter: str = "\t",
        encoding: str = "utf8",
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> tuple[Any, Any, float]:
        """Correlation of cosine similarity with human judgements (e.g. wordsim353.tsv):
        ``(pearson, spearman, oov_ratio)``, each correlation a ``(statistic, pvalue)`` result
        (SciPy's result objects when SciPy is installed) and the OOV ratio in percent."""
        ok = self._ok_vocab(restrict_vocab, case_insensitive)
        unit = self._unit()
        gold: list[float] = []
        model: list[float] = []
        oov = 0
        with open(fspath(pairs), encoding=encoding) as f:
            for line in f:
                if not line.strip() or line.startswith("#"):
                    continue
                try:
                    a, b, s = line.rstrip("\n").split(delimiter)
                    sim = float(s)
                except ValueError:
                    continue
                if case_insensitive:
                    a, b = a.upper(), b.upper()
                if a not in ok or b not in ok:
                    oov += 1
                    if dummy4unknown:
                        model.append(0.0)
                        gold.append(sim)
                    continue
                gold.append(sim)
                model.append(float(np.dot(unit[ok[a]], unit[ok[b]])))
        if not gold:
            raise CandleEmbedValueError(f"no pair of {fspath(pairs)} is in the vocabulary")
        ratio = float(oov) / (len(gold) + oov) * 100
        return _pearson(model, gold), _spearman(model, gold), ratio

    def evaluate_word_analogies(
        self,
        analogies: _PathLike,
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> tuple[float, list[dict[str, Any]]]:
        """Accuracy on "a b c d" analogies (``: section`` headers, e.g. questions-words.txt):
        ``(score, sections)`` where each section is ``{"section", "correct", "incorrect"}``
        and the last one is ``"Total accuracy"`` (gensim's shapes)."""
        ok = self._ok_vocab(restrict_vocab, case_insensitive)
        limit = min(restrict_vocab, len(self))
        unit = self._unit()[:limit]
        sections: list[dict[str, Any]] = []
        section: dict[str, Any] | None = None
        with open(fspath(analogies), encoding="utf8") as f:
            for line_no, line in enumerate(f):
                if line.startswith(": "):
                    if section:
                        sections.append(section)
                    section = {"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []}
                    continue
                if section is None:
                    raise CandleEmbedValueError(
                        f"Missing section header before line #{line_no} in {fspath(analogies)}"
                    )
                words = line.split()
                if len(words) != 4:
                    continue
                if case_insensitive:
                    words = [w.upper() for w in words]
                a, b, c, expected = words
                if any(w not in ok for w in words):
                    if dummy4unknown:
                        section["incorrect"].append((a, b, c, expected))
                    continue
                q = unit[ok[b]] + unit[ok[c]] - unit[ok[a]]
                q = q / 3.0
                q /= max(float(np.linalg.norm(q)), 1e-30)
                sims = unit @ q
                ignore = {a, b, c}
                predicted = None
                for i in np.argsort(-sims, kind="stable")[:8]:
                    key = self.index_to_key[int(i)]
                    cand = key.upper() if case_insensitive else key
                    if cand in ok and cand not in ignore:
                        predicted = cand
                        break
                bucket = "correct" if predicted == expected else "incorrect"
                section[bucket].append((a, b, c, expected))
        if section:
            sections.append(section)
        total = {
            "section": "Total accuracy",
            "correct": list(itertools.chain.from_iterable(s["correct"] for s in sections)),
            "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in sections)),
        }
        sections.append(total)
        n = len(total["correct"]) + len(total["incorrect"])
        return (len(total["correct"]) / n if n else 0.0), sections

    # --- files --------------------------------------------------------------------------
    @classmethod
    def load_word2vec_format(
        cls,
        fname: _PathLike,
        binary: bool = False,
        no_header: bool = False,
        limit: int | None = None,
    ) -> KeyedVectors:
        """Read word2vec text (also fastText ``.vec``), word2vec binary (``binary=True``) or
        GloVe (``no_header=True``) vectors. A malformed file raises ``ValueError`` naming the
        line; duplicate words keep their first vector; ``limit`` reads only the first rows."""
        if binary and no_header:
            raise CandleEmbedValueError("no_header applies to text files only")
        kind = "binary" if binary else ("glove" if no_header else "text")
        words, vectors = _native._read_word_vectors(fspath(fname), kind, limit)
        return cls(words, vectors)

    def save_word2vec_format(self, fname: _PathLike, binary: bool = False) -> None:
        """Write word2vec text (or binary) format, atomically."""
        self._write(fname, "binary" if binary else "text")

    def save(self, fname: _PathLike) -> None:
        """Write by extension: .txt/.vec text, .bin binary, .safetensors (tensor ``weight``,
        words in the metadata; ``candle_embed.Embedding.load`` reads the table)."""
        self._write(fname, format_for_path(fname))

    @classmethod
    def load(cls, fname: _PathLike) -> KeyedVectors:
        """Read a file written by ``save`` (format by extension)."""
        kind = format_for_path(fname)
        words, vectors = _native._read_word_vectors(fspath(fname), kind, None)
        return cls(words, vectors)

    def _write(self, fname: _PathLike, kind: str) -> None:
        _native._write_word_vectors(fspath(fname), self.index_to_key, self.vectors, kind)


class _Corr(tuple):  # type: ignore[type-arg]
    """``(statistic, pvalue)`` with attribute access, when SciPy is not installed."""

    @property
    def statistic(self) -> float:
        return float(self[0])

    @property
    def pvalue(self) -> float:
        return float(self[1])


def _pearson(x: Iterable[float], y: Iterable[float]) -> Any:
    xs, ys = np.asarray(list(x), float), np.asarray(list(y), float)
    try:
        from scipy import stats  # type: ignore[import-untyped]

        return stats.pearsonr(xs, ys)
    except ImportError:
        return _Corr((float(np.corrcoef(xs, ys)[0, 1]), math.nan))


def _spearman(x: Iterable[float], y: Iterable[float]) -> Any:
    xs, ys = np.asarray(list(x), float), np.asarray(list(y), float)
    try:
        from scipy import stats

        return stats.spearmanr(xs, ys)
    except ImportError:

        def rank(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            order = np.argsort(a, kind="stable")
            r = np.empty(len(a))
            r[order] = np.arange(len(a))
            for v in np.unique(a):  # average ranks of ties
                m = a == v
                r[m] = r[m].mean()
            return r

        return _Corr((float(np.corrcoef(rank(xs), rank(ys))[0, 1]), math.nan))

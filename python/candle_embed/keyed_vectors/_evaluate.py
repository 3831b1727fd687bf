"""The evaluation layer of ``KeyedVectors``: word-pair similarity against human judgements
(``evaluate_word_pairs``, e.g. wordsim353.tsv) and analogies (``evaluate_word_analogies``, e.g.
questions-words.txt), with gensim's rules and return shapes. The analogies' queries all go to
the kernel at once (one scan of the table for a block of queries).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from os import PathLike, fspath
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from candle_embed._errors import CandleEmbedValueError, typed_methods
from candle_embed._files import open_regular
from candle_embed.keyed_vectors._base import logger
from candle_embed.keyed_vectors._queries import KeyedVectorsQueries, unitvec

_PathLike = Union[str, "PathLike[str]"]


class _Corr(tuple):  # type: ignore[type-arg]
    """``(statistic, pvalue)`` with attribute access, when SciPy is not installed."""

    @property
    def statistic(self) -> float:
        return float(self[0])

    @property
    def pvalue(self) -> float:
        return float(self[1])


def _ranks(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    order = np.argsort(a, kind="stable")
    r = np.empty(len(a))
    r[order] = np.arange(len(a))
    for v in np.unique(a):  # ties share their mean rank
        m = a == v
        r[m] = r[m].mean()
    return r


def pearson(x: Iterable[float], y: Iterable[float]) -> Any:
    """SciPy's ``pearsonr`` when SciPy is installed, else ``(r, nan)``."""
    xs, ys = np.asarray(list(x), float), np.asarray(list(y), float)
    try:
        from scipy import stats  # type: ignore[import-untyped]
    except ImportError:
        return _Corr((float(np.corrcoef(xs, ys)[0, 1]), math.nan))
    return stats.pearsonr(xs, ys)


def spearman(x: Iterable[float], y: Iterable[float]) -> Any:
    """SciPy's ``spearmanr`` when SciPy is installed, else ``(rho, nan)``."""
    xs, ys = np.asarray(list(x), float), np.asarray(list(y), float)
    try:
        from scipy import stats
    except ImportError:
        return _Corr((float(np.corrcoef(_ranks(xs), _ranks(ys))[0, 1]), math.nan))
    return stats.spearmanr(xs, ys)


@typed_methods
class KeyedVectorsEvaluation(KeyedVectorsQueries):
    """Evaluations (gensim's names, rules and return shapes)."""

    def _ok_vocab(self, restrict_vocab: int, case_insensitive: bool) -> dict[Any, int]:
        """The first ``restrict_vocab`` keys (upper-cased) -> their rows; the first of several
        case variants wins."""
        keys = self.index_to_key[:restrict_vocab]
        if case_insensitive:
            return {str(k).upper(): self.get_index(k) for k in reversed(keys) if k is not None}
        return {k: self.get_index(k) for k in reversed(keys) if k is not None}

    def evaluate_word_pairs(
        self,
        pairs: _PathLike,
        delimiter: str = "\t",
        encoding: str = "utf8",
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> tuple[Any, Any, float]:
        """Correlation of the keys' cosine similarity with human judgements:
        ``(pearson, spearman, oov_ratio)``, each correlation a ``(statistic, pvalue)`` result
        (SciPy's when installed) and the percentage of pairs with an unknown word. With
        ``dummy4unknown`` such pairs count with similarity 0 and the ratio is over every pair
        (gensim's)."""
        ok = self._ok_vocab(restrict_vocab, case_insensitive)
        gold: list[float] = []
        model: list[float] = []
        oov = 0
        with open_regular(fspath(pairs), "r", encoding=encoding) as f:
            for line_no, line in enumerate(f):
                if not line or line.startswith("#"):
                    continue
                try:
                    parts = [w.upper() if case_insensitive else w for w in line.split(delimiter)]
                    a, b, sim_text = parts
                    sim = float(sim_text)
                except (ValueError, TypeError):
                    logger.info("Skipping invalid line #%d in %s", line_no, fspath(pairs))
                    continue
                if a not in ok or b not in ok:
                    oov += 1
                    if dummy4unknown:
                        model.append(0.0)
                        gold.append(sim)
                    continue
                gold.append(sim)
                va, vb = self._row_vectors(ok[a]), self._row_vectors(ok[b])
                model.append(float(np.dot(unitvec(va), unitvec(vb))))
        if not gold:
            raise CandleEmbedValueError(
                f"No valid similarity judgements found in {fspath(pairs)}: either invalid "
                f"format or all are out-of-vocabulary in {self}"
            )
        # gensim's denominator: with dummies, the unknown pairs are already among `gold`
        ratio = float(oov) / (len(gold) if dummy4unknown else len(gold) + oov) * 100
        return pearson(gold, model), spearman(gold, model), ratio

    def evaluate_word_analogies(
        self,
        analogies: _PathLike,
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
        similarity_function: str = "most_similar",
    ) -> tuple[float, list[dict[str, Any]]]:
        """Accuracy on "a b c d" analogies (``: section`` headers): for each, the nearest of the
        first ``restrict_vocab`` keys to ``b - a + c`` (3CosAdd, the inputs excluded) must be
        ``d``. Returns ``(score, sections)``, each section ``{"section", "correct",
        "incorrect"}``, the last ``"Total accuracy"`` (gensim's shapes). Analogies with an
        unknown word are skipped, or counted incorrect with ``dummy4unknown``."""
        if similarity_function != "most_similar":
            raise CandleEmbedValueError("only similarity_function='most_similar' is supported")
        ok = self._ok_vocab(restrict_vocab, case_insensitive)
        # each section's analogies in file order, with the index of their question (-1: an
        # unknown word counted incorrect)
        sections: list[tuple[str, list[tuple[tuple[str, str, str, str], int]]]] = []
        questions: list[tuple[str, str, str, str]] = []
        with open_regular(fspath(analogies), "rb") as f:
            for line_no, raw in enumerate(f):
                line = raw.decode("utf8")
                if line.startswith(": "):
                    sections.append((line.lstrip(": ").strip(), []))
                    continue
                if not sections:
                    raise CandleEmbedValueError(
                        f"Missing section header before line #{line_no} in {fspath(analogies)}"
                    )
                words = [w.upper() if case_insensitive else w for w in line.split()]
                if len(words) != 4:
                    logger.info("Skipping invalid line #%i in %s", line_no, fspath(analogies))
                    continue
                quad = (words[0], words[1], words[2], words[3])
                if any(w not in ok for w in quad):
                    if dummy4unknown:
                        sections[-1][1].append((quad, -1))
                    continue
                sections[-1][1].append((quad, len(questions)))
                questions.append(quad)
        right = self._answer(questions, ok, restrict_vocab, case_insensitive)
        results = [
            {
                "section": name,
                "correct": [q for q, i in items if i >= 0 and right[i]],
                "incorrect": [q for q, i in items if i < 0 or not right[i]],
            }
            for name, items in sections
        ]
        total = {
            "section": "Total accuracy",
            "correct": list(itertools.chain.from_iterable(s["correct"] for s in results)),
            "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in results)),
        }
        results.append(total)
        n = len(total["correct"]) + len(total["incorrect"])
        return (len(total["correct"]) / n if n else 0.0), results

    def _answer(
        self,
        questions: list[tuple[str, str, str, str]],
        ok: dict[Any, int],
        restrict_vocab: int,
        case_insensitive: bool,
    ) -> list[bool]:
        """Whether each analogy is answered right, all decided at once: gensim's query
        ``unit((u_b + u_c - u_a) / 3)`` (its ``get_mean_vector`` arithmetic, row by row), the
        kernel's top 5 with the three inputs' rows excluded, then gensim's walk over them."""
        if not questions:
            return []
        self.fill_norms()
        assert self.norms is not None
        abc = np.array([[ok[b], ok[c], ok[a]] for a, b, c, _ in questions], dtype=np.int64)
        unit = self.vectors[abc] / self.norms[abc][..., None]  # (Q, 3, D): u_b, u_c, u_a
        mean = np.zeros((len(questions), self.vector_size), self._dtype())
        for j, w in enumerate((1.0, 1.0, -1.0)):
            mean += np.float64(w) * unit[:, j]
        wide = mean / np.float64(3.0)
        lengths = np.sqrt(np.einsum("ij,ij->i", wide, wide))
        safe = np.where(lengths > 0, lengths, 1.0)
        query = np.where(lengths[:, None] > 0, wide * (1.0 / safe)[:, None], wide)
        rows = self._range(0, restrict_vocab)
        exclude = [sorted(set(r)) for r in abc.tolist()]
        tops = self._top(self._queries(query.astype(np.float32)), rows, 5, exclude)
        right = []
        for (a, b, c, expected), top in zip(questions, tops):
            predicted = None
            for r, _ in top:
                key = self.index_to_key[r]
                predicted = str(key).upper() if case_insensitive else key
                if predicted in ok and predicted not in (a, b, c):
                    break
            right.append(predicted == expected)
        return right

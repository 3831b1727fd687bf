"""The query layer of ``KeyedVectors``: gensim's similarity methods with gensim's arithmetic
for the query vector (the mean of the inputs), and the Rust kernels
(``candle_embed._native._similarity_*``) for the scan of the table: ``(q . v_i) / |v_i|`` over
the rows by tiled ``gemm`` and a parallel top-k, ties by lower row.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import numpy.typing as npt

from candle_embed import _native
from candle_embed._errors import (
    CandleEmbedKeyError,
    CandleEmbedValueError,
    CandleEmbedZeroDivisionError,
    typed_methods,
)
from candle_embed.keyed_vectors._base import KeyedVectorsBase, Vectors, is_key, logger

#: How many more rows than asked the kernel shortlists before gensim's arithmetic orders them
#: (rows whose scores differ by a few float32 ulps; far more than ever tie that closely).
SHORTLIST_MARGIN = 16


def ensure_list(value: Any) -> list[Any]:
    """gensim's ``_ensure_list``: None -> [], one key or a 1-D vector -> [it], the rows of a 2-D
    array -> a list of vectors (each row is a query vector), any other iterable -> a list."""
    if value is None:
        return []
    if is_key(value) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return list(value)
    if isinstance(value, np.ndarray):
        raise CandleEmbedValueError(f"query vectors must be 1-D or 2-D, got shape {value.shape}")
    return list(value)


def unitvec(vec: Vectors) -> Vectors:
    """gensim's ``matutils.unitvec`` for a dense vector: scaled to unit Euclidean length in
    float64, returned in its own dtype; a zero vector unchanged."""
    if vec.size == 0:
        return vec
    wide = vec.astype(np.float64)
    veclen = float(np.sqrt(np.dot(wide, wide)))
    if veclen > 0.0:
        dtype = np.float64 if np.issubdtype(vec.dtype, np.integer) else vec.dtype
        out: Vectors = (wide * (1.0 / veclen)).astype(dtype)
        return out
    return vec


def _topn(topn: Any) -> int | None:
    """``None`` (all scores) or the number of answers, as gensim reads ``topn``."""
    return None if topn is None else operator.index(topn)


@typed_methods
class KeyedVectorsQueries(KeyedVectorsBase):
    """Similarity queries (gensim's names and semantics)."""

    # --- the table as the queries read it (a quantized subclass overrides these) ---------
    def _scan_table(self) -> Any:
        """What the scan kernels read: the float table (or a ``QuantizedEmbedding``)."""
        return self.vectors

    def _row_vectors(self, rows: Any) -> Vectors:
        """The vectors of ``rows`` (row numbers) as a new float array."""
        out: Vectors = self.vectors[rows]
        return out

    def _dtype(self) -> np.dtype[Any]:
        """The type of the table's vectors (gensim computes query means in it)."""
        return self.vectors.dtype

    def _row_count(self) -> int:
        """The number of rows of the table."""
        return len(self.vectors)

    def quantize(self, bits: int = 8) -> Any:
        """A read-only copy of these vectors quantized row-wise to int8 (FBGEMM's fused layout:
        ``len x (vector_size + 8)`` bytes instead of ``len x vector_size x 4``): a
        ``QuantizedKeyedVectors`` whose queries scan the codes (see its documentation for the
        accuracy trade-off). ``bits`` must be 8."""
        from candle_embed.keyed_vectors._quantized import QuantizedKeyedVectors

        return QuantizedKeyedVectors.from_keyed_vectors(self, bits)

    # --- the kernels --------------------------------------------------------------------
    def _query_dtype(self) -> type[np.floating[Any]]:
        return np.float64 if self._dtype() == np.float64 else np.float32

    def _queries(self, vectors: Sequence[Any] | Vectors) -> Vectors:
        """Query vectors as a ``(q, vector_size)`` array of the kernels' type."""
        q = np.asarray(vectors, dtype=self._query_dtype())
        if q.ndim != 2 or q.shape[1] != self.vector_size:
            raise CandleEmbedValueError(
                f"query vectors must have {self.vector_size} elements, got shape {q.shape[1:]}"
            )
        return np.ascontiguousarray(q)

    def _range(self, start: int | None, end: int | None) -> tuple[int, int]:
        """``vectors[start:end]`` as a row range (Python's slice rules)."""
        a, b, _ = slice(start, end).indices(self._row_count())
        return a, max(a, b)

    def _scores(
        self, queries: Vectors, rows: tuple[int, int], positive: int | None = None
    ) -> Vectors:
        norms = self._filled_norms()
        out: Vectors = _native._similarity_scan(
            self._scan_table(), norms, queries, rows[0], rows[1], positive=positive
        )
        return out

    def _top(
        self,
        queries: Vectors,
        rows: tuple[int, int],
        k: int,
        exclude: list[list[int]] | None = None,
        positive: int | None = None,
    ) -> list[list[tuple[int, float]]]:
        """Each output's best ``k`` rows (best first) with their scores.

        The kernel picks a shortlist (``k`` plus ``SHORTLIST_MARGIN`` more); the shortlist is
        then scored again with gensim's own float32 arithmetic (``gensim_scores``) and sorted by
        those scores, ties by lower row, so that rows whose scores differ only in the last bits
        come out in gensim's order with gensim's values."""
        norms = self._filled_norms()
        wide = k + max(k, SHORTLIST_MARGIN)
        idx, scores, counts = _native._similarity_scan(
            self._scan_table(), norms, queries, rows[0], rows[1], wide, exclude, positive
        )
        out, at = [], 0
        for o, c in enumerate(counts.tolist()):
            cand = idx[at : at + c]
            at += c
            terms = queries if positive is not None else queries[o : o + 1]
            exact = self.gensim_scores(cand, terms, positive)
            order = np.lexsort((cand, -exact))[:k]
            out.append(list(zip(cand[order].tolist(), exact[order].tolist())))
        return out

    def gensim_scores(
        self, rows: npt.NDArray[np.int64], terms: Vectors, positive: int | None
    ) -> npt.NDArray[Any]:
        """The scores of ``rows`` as gensim computes them: ``dot(v, q) / norm(v)`` in the table's
        type (cosine), or gensim's 3CosMul ``prod_p (1 + v.p / |v|) / 2 / (prod_n (1 + v.n / |v|)
        / 2 + 1e-6)`` over the terms (the first ``positive`` positive)."""
        vecs = self._row_vectors(rows)
        norms = np.linalg.norm(vecs, axis=1)
        dots = [np.dot(vecs, t.astype(vecs.dtype, copy=False)) / norms for t in terms]
        if positive is None:
            result: npt.NDArray[Any] = dots[0]
            return result
        pos = [(1 + d) / 2 for d in dots[:positive]]
        neg = [(1 + d) / 2 for d in dots[positive:]]
        cosmul: npt.NDArray[Any] = np.prod(pos, axis=0) / (np.prod(neg, axis=0) + 0.000001)
        return cosmul

    # --- means and pairs ----------------------------------------------------------------
    def get_mean_vector(
        self,
        keys: Any,
        weights: npt.ArrayLike | None = None,
        pre_normalize: bool = True,
        post_normalize: bool = False,
        ignore_missing: bool = True,
    ) -> Vectors:
        """The weighted mean of the vectors of ``keys`` (keys or vectors; key vectors unit
        length first with ``pre_normalize``), divided by the sum of ``|weights|``; unit length
        with ``post_normalize``. Keys without a vector are skipped, or KeyError when
        ``ignore_missing=False``. gensim's arithmetic, step for step."""
        if len(keys) == 0:
            raise CandleEmbedValueError("cannot compute mean with no input")
        dtype = self._dtype()
        w = np.ones(len(keys), dtype=dtype) if weights is None else np.asarray(weights)
        if isinstance(weights, list):
            w = np.array(weights, dtype=dtype)
        if w.ndim != 1 or len(keys) != w.shape[0]:
            raise CandleEmbedValueError("keys and weights array must have same number of elements")
        mean = np.zeros(self.vector_size, dtype)
        total_weight: Any = 0
        for idx, key in enumerate(keys):
            if isinstance(key, np.ndarray):
                mean += w[idx] * key
                total_weight += abs(w[idx])
            elif key in self:
                mean += w[idx] * self.get_vector(key, norm=pre_normalize)
                total_weight += abs(w[idx])
            elif not ignore_missing:
                raise CandleEmbedKeyError(f"Key '{key}' not present in vocabulary")
        if total_weight > 0:
            mean = mean / total_weight
        if post_normalize:
            mean = unitvec(mean).astype(np.float32)
        return mean

    def similarity(self, w1: Any, w2: Any) -> Any:
        """Cosine similarity of two keys' vectors."""
        return np.dot(unitvec(self[w1]), unitvec(self[w2]))

    def distance(self, w1: Any, w2: Any) -> Any:
        """Cosine distance ``1 - similarity(w1, w2)``."""
        return 1 - self.similarity(w1, w2)

    def n_similarity(self, ws1: Sequence[Any], ws2: Sequence[Any]) -> Any:
        """Cosine similarity of the means of two lists of keys (ZeroDivisionError when one is
        empty, as gensim)."""
        if not (len(ws1) and len(ws2)):
            raise CandleEmbedZeroDivisionError("At least one of the passed list is empty.")
        mean1 = self.get_mean_vector(ws1, pre_normalize=False)
        mean2 = self.get_mean_vector(ws2, pre_normalize=False)
        return np.dot(unitvec(mean1), unitvec(mean2))

    @staticmethod
    def cosine_similarities(vector_1: npt.ArrayLike, vectors_all: npt.ArrayLike) -> Vectors:
        """Cosine similarity of ``vector_1`` (``(D,)``) with each row of ``vectors_all``."""
        v, m = np.asarray(vector_1), np.asarray(vectors_all)
        out: Vectors = np.dot(m, v) / (np.linalg.norm(v) * np.linalg.norm(m, axis=1))
        return out

    def distances(self, word_or_vector: Any, other_words: Iterable[Any] = ()) -> Vectors:
        """Cosine distances from a key or a vector to the keys ``other_words`` (default: every
        row, itself included)."""
        vec = self.get_vector(word_or_vector) if is_key(word_or_vector) else word_or_vector
        vec = np.asarray(vec)
        others = list(other_words)
        if others:
            rows = self._row_vectors([self.get_index(w) for w in others])
            return 1 - self.cosine_similarities(vec, rows)
        q = self._queries([vec])
        unit = q / np.linalg.norm(q[0]) if np.any(q) else q * np.nan
        out: Vectors = 1 - self._scores(unit, (0, self._row_count()))[0]
        return out

    # --- nearest keys -------------------------------------------------------------------
    def most_similar(
        self,
        positive: Any = None,
        negative: Any = None,
        topn: Any = 10,
        clip_start: int = 0,
        clip_end: int | None = None,
        restrict_vocab: int | None = None,
        indexer: Any = None,
    ) -> Any:
        """The ``topn`` keys nearest (cosine) to the weighted mean of the unit vectors of
        ``positive`` minus those of ``negative`` (3CosAdd), the input keys excluded: a list of
        ``(key, similarity)``; ``topn=None``: the similarities of every row in range as an
        array. Inputs are keys, vectors (a 2-D array: one vector per row), or ``(key, weight)``
        pairs. ``restrict_vocab=n`` searches the first ``n`` rows (else
        ``clip_start:clip_end``)."""
        if isinstance(topn, Integral) and topn < 1:
            return []
        pos, neg = ensure_list(positive), ensure_list(negative)
        clip_end = clip_end or self._row_count()
        if restrict_vocab:
            clip_start, clip_end = 0, restrict_vocab
        keys: list[Any] = []
        weight = np.concatenate((np.ones(len(pos)), -1.0 * np.ones(len(neg))))
        for idx, item in enumerate(pos + neg):
            if is_key(item) or isinstance(item, np.ndarray):
                keys.append(item)
            else:
                keys.append(item[0])
                weight[idx] = item[1]
        mean = self.get_mean_vector(
            keys, weight, pre_normalize=True, post_normalize=True, ignore_missing=False
        )
        exclude = [self.get_index(k) for k in keys if is_key(k) and self.has_index_for(k)]
        if indexer is not None and isinstance(topn, int):
            return indexer.most_similar(mean, topn)
        rows = self._range(clip_start, clip_end)
        k = _topn(topn)
        if not k:
            return self._scores(self._queries([mean]), rows)[0]
        top = self._top(self._queries([mean]), rows, k, [exclude])[0]
        return [(self.index_to_key[r], s) for r, s in top]

    def similar_by_key(self, key: Any, topn: Any = 10, restrict_vocab: int | None = None) -> Any:
        """``most_similar(positive=[key], ...)``."""
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_word(self, word: Any, topn: Any = 10, restrict_vocab: int | None = None) -> Any:
        """Alias of ``similar_by_key``."""
        return self.similar_by_key(word, topn, restrict_vocab)

    def similar_by_vector(
        self, vector: npt.ArrayLike, topn: Any = 10, restrict_vocab: int | None = None
    ) -> Any:
        """``most_similar(positive=[vector], ...)``."""
        return self.most_similar(
            positive=[np.asarray(vector)], topn=topn, restrict_vocab=restrict_vocab
        )

    def most_similar_cosmul(
        self,
        positive: Any = None,
        negative: Any = None,
        topn: Any = 10,
        restrict_vocab: int | None = None,
    ) -> Any:
        """The ``topn`` keys by Levy and Goldberg's multiplicative objective (3CosMul):
        ``prod_p (1 + cos(p, v)) / 2`` over positives divided by the same product over
        negatives plus 1e-6, the input keys excluded. Keys count as unit vectors, vectors as
        given. Unlike gensim 4.4 (which ignores it), ``restrict_vocab`` limits the rows."""
        if isinstance(topn, Integral) and topn < 1:
            return []
        pos, neg = ensure_list(positive), ensure_list(negative)
        exclude = sorted(
            {self.get_index(w) for w in pos + neg if is_key(w) and w in self.key_to_index}
        )
        if not pos:
            raise CandleEmbedValueError("cannot compute similarity with no input")
        terms = [self.get_vector(w, norm=True) if is_key(w) else w for w in pos + neg]
        rows = self._range(0, restrict_vocab or None)
        k = _topn(topn)
        if not k:
            return self._scores(self._queries(terms), rows, positive=len(pos))[0]
        top = self._top(self._queries(terms), rows, k, [exclude], positive=len(pos))[0]
        return [(self.index_to_key[r], s) for r, s in top]

    def closer_than(self, key1: Any, key2: Any) -> list[Any]:
        """Every key closer to ``key1`` than ``key2`` is (``key1`` itself excluded)."""
        all_distances = self.distances(key1)
        e1, e2 = self.get_index(key1), self.get_index(key2)
        closer = np.where(all_distances < all_distances[e2])[0]
        return [self.index_to_key[i] for i in closer if i != e1]

    def words_closer_than(self, word1: Any, word2: Any) -> list[Any]:
        """Deprecated alias of ``closer_than``."""
        return self.closer_than(word1, word2)

    def rank(self, key1: Any, key2: Any) -> int:
        """The rank of ``key2`` among every key by distance from ``key1`` (1 = nearest)."""
        return len(self.closer_than(key1, key2)) + 1

    def most_similar_to_given(self, key1: Any, keys_list: Sequence[Any]) -> Any:
        """The key of ``keys_list`` most similar to ``key1``."""
        return keys_list[int(np.argmax([self.similarity(key1, k) for k in keys_list]))]

    def rank_by_centrality(
        self, words: Sequence[Any], use_norm: bool = True
    ) -> list[tuple[Any, Any]]:
        """``(similarity, key)`` of each known key of ``words`` to their normalised mean, most
        central first; unknown keys are skipped with a warning."""
        words = list(words)  # a huge sized iterable is a MemoryError at once, not a hang
        used = [w for w in words if w in self]
        if len(used) != len(words):
            logger.warning(
                "vectors for words %s are not present in the model", set(words) - set(used)
            )
        if not used:
            raise CandleEmbedValueError("cannot select a word from an empty list")
        vectors = np.vstack([self.get_vector(w, norm=use_norm) for w in used]).astype(np.float32)
        mean = self.get_mean_vector(vectors, post_normalize=True)
        dists = np.dot(vectors, mean)
        return sorted(zip(dists, used), reverse=True)

    def doesnt_match(self, words: Sequence[Any]) -> Any:
        """The key of ``words`` furthest from their mean."""
        return self.rank_by_centrality(words)[-1][1]

    def relative_cosine_similarity(self, wa: Any, wb: Any, topn: int = 10) -> float:
        """``similarity(wa, wb)`` divided by the sum of the similarities of ``wa``'s ``topn``
        nearest keys (Leeuwenberg et al.)."""
        sims = self.similar_by_word(wa, topn)
        if not sims:
            raise CandleEmbedValueError(
                "Cannot calculate relative cosine similarity without any similar words."
            )
        return float(self.similarity(wa, wb)) / float(sum(s for _, s in sims))

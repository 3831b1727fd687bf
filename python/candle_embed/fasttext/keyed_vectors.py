"""``FastTextKeyedVectors``: word vectors that exist for every word, gensim 4's semantics.

fastText's input table has ``nwords + bucket`` rows: ``vectors_vocab`` (one row per vocabulary
word) then ``vectors_ngrams`` (one row per hash bucket). A character n-gram ``g`` of
``"<" + word + ">"`` (``min_n`` to ``max_n`` characters) uses bucket ``hash(g) % bucket``, with
fastText's FNV-1a hash. Then (``gensim.models.fasttext.FastTextKeyedVectors``):

- ``vectors[i]`` of vocabulary word ``i`` = mean of ``vectors_vocab[i]`` and its n-gram rows
  (computed by :meth:`adjust_vectors`, after loading or training);
- a word outside the vocabulary gets the mean of its n-gram rows (zeros when it has none), so
  ``wv["unseenword"]`` works and ``"unseenword" in wv`` is True whenever ``bucket > 0``.

Both run in Rust: a bag of table rows per word (its own row, its n-gram buckets) reduced by
the crate's EmbeddingBag kernel in mean mode, reading the table in place.

Differences from Facebook's fastText, shared with gensim: the end-of-sentence token ``</s>``
gets n-grams like any word (fastText gives it its own row only), and words of a ``.bin`` file
are decoded with the caller's encoding before hashing (fastText hashes the stored bytes).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from candle_embed import _native
from candle_embed._errors import CandleEmbedKeyError, CandleEmbedValueError, typed_methods
from candle_embed._w2v_args import int_arg
from candle_embed.keyed_vectors import KeyedVectors

_MAX_I32 = 2**31


@typed_methods
class FastTextKeyedVectors(KeyedVectors):
    """Vectors and vocabulary of a :class:`~candle_embed.FastText` model (gensim's
    ``FastTextKeyedVectors(vector_size, min_n, max_n, bucket)``): an empty vocabulary and a
    zero n-gram table of ``bucket`` rows until a model fills them."""

    def __init__(self, vector_size: int, min_n: int, max_n: int, bucket: int) -> None:
        dim = int_arg("vector_size", vector_size, 1)
        self._setup([], np.zeros((0, dim), np.float32), min_n, max_n, bucket)

    @classmethod
    def from_tables(
        cls,
        keys: list[str],
        table: npt.ArrayLike,
        min_n: int,
        max_n: int,
        bucket: int,
    ) -> FastTextKeyedVectors:
        """Vectors for vocabulary ``keys`` from fastText's input table ``table``
        (``(len(keys) + bucket, dim)``: word rows then n-gram rows, used in place when it is a
        C-contiguous float32 array), with the composed ``vectors`` computed."""
        t = np.ascontiguousarray(np.asarray(table, dtype=np.float32))
        if t.ndim != 2 or t.shape[1] < 1:
            raise CandleEmbedValueError(f"table must be 2-D (rows, dim), got shape {t.shape}")
        kv = cls.__new__(cls)
        kv._setup(keys, t, min_n, max_n, bucket)
        kv.adjust_vectors()
        return kv

    def _setup(
        self,
        keys: list[str],
        word_rows_or_table: npt.NDArray[np.float32],
        min_n: int,
        max_n: int,
        bucket: int,
    ) -> None:
        """The one place the base class is initialised: vocabulary ``keys`` and the input
        table (``(len(keys) + bucket, dim)``; a bare ``(0, dim)`` gets zero bucket rows)."""
        self.min_n = int_arg("min_n", min_n, 0, _MAX_I32)
        self.max_n = int_arg("max_n", max_n, 0, _MAX_I32)
        self.bucket = int_arg("bucket", bucket, 0, _MAX_I32)
        t = word_rows_or_table
        dim = t.shape[1]
        if not keys and t.shape[0] == 0:
            t = np.zeros((self.bucket, dim), np.float32)  # zero pages, mapped lazily
        if t.shape[0] != len(keys) + self.bucket:
            raise CandleEmbedValueError(
                f"table has {t.shape[0]} rows, expected {len(keys)} words + {self.bucket} buckets"
            )
        KeyedVectors.__init__(self, keys, np.zeros((len(keys), dim), np.float32))
        if len(self.key_to_index) != len(keys):
            raise CandleEmbedValueError("the vocabulary holds the same word twice")
        # fastText's input matrix: word rows, then bucket rows.
        self._input: npt.NDArray[np.float32] = t
        self._nwords = len(keys)

    # --- fastText's two tables, views of one input matrix --------------------------------
    @property
    def vectors_vocab(self) -> npt.NDArray[np.float32]:
        """The vocabulary words' own rows, ``(nwords, vector_size)`` (a view: edits count;
        call :meth:`adjust_vectors` after editing)."""
        return self._input[: self._nwords]

    @vectors_vocab.setter
    def vectors_vocab(self, value: npt.ArrayLike) -> None:
        rows = self._rows(value, "vectors_vocab")
        self._input = np.ascontiguousarray(np.concatenate([rows, self.vectors_ngrams]))
        self._nwords = rows.shape[0]

    @property
    def vectors_ngrams(self) -> npt.NDArray[np.float32]:
        """The n-gram bucket rows, ``(bucket, vector_size)`` (a view: edits count)."""
        return self._input[self._nwords :]

    @vectors_ngrams.setter
    def vectors_ngrams(self, value: npt.ArrayLike) -> None:
        rows = self._rows(value, "vectors_ngrams")
        if rows.shape[0] != self.bucket:
            raise CandleEmbedValueError(
                f"vectors_ngrams must have bucket={self.bucket} rows, got {rows.shape[0]}"
            )
        self._input = np.ascontiguousarray(np.concatenate([self.vectors_vocab, rows]))

    def _rows(self, value: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
        rows = np.asarray(value, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.vector_size:
            raise CandleEmbedValueError(
                f"{what} must have shape (n, {self.vector_size}), got {rows.shape}"
            )
        return rows

    # --- vectors of any word ---------------------------------------------------------------
    def _subword_vectors(
        self, words: list[str], own_rows: bool, out: npt.NDArray[np.float32] | None = None
    ) -> npt.NDArray[np.float32]:
        result: npt.NDArray[np.float32] = _native._ft_word_vectors(
            self._input,
            self._nwords,
            words,
            self.min_n,
            self.max_n,
            self.bucket,
            own_rows,
            out,
        )
        return result

    def adjust_vectors(self) -> None:
        """Recompute ``vectors`` of the vocabulary: each word's own row and n-gram rows,
        averaged (gensim's ``adjust_vectors``; ``vectors_vocab`` alone when ``bucket == 0``)."""
        n = min(self._nwords, len(self.index_to_key))
        if self.vectors.shape[0] != len(self.index_to_key):
            self.vectors = np.zeros((len(self.index_to_key), self.vector_size), np.float32)
        if self.bucket == 0:
            self.vectors[:n] = self.vectors_vocab[:n]
        else:
            self.vectors[:n] = self._subword_vectors(self.index_to_key[:n], True)
        self.fill_norms(force=True)

    def get_vector(self, key: str, norm: bool = False) -> npt.NDArray[np.float32]:
        """``key``'s vector: its row of ``vectors`` when in the vocabulary, else the mean of
        its n-gram rows (zeros if it has none). ``norm=True``: unit length. ``KeyError`` only
        when ``bucket == 0`` and ``key`` is not in the vocabulary."""
        if key in self.key_to_index:
            if not norm:
                return super().get_vector(key)
            vec: npt.NDArray[np.float32] = np.array(super().get_vector(key))
        elif not isinstance(key, str):
            raise CandleEmbedKeyError(f"Key {key!r} not present in vocabulary")
        elif self.bucket == 0:
            raise CandleEmbedKeyError("cannot calculate vector for OOV word without ngrams")
        else:
            vec = self._subword_vectors([key], False)[0]
        if norm:
            # gensim's unitvec rule: a zero vector stays zero (no 0/0 NaN), in or out of the
            # vocabulary.
            length = float(np.linalg.norm(vec))
            if length > 0:
                vec /= length
        return vec

    def __contains__(self, key: object) -> bool:
        """True for every word when there are n-gram buckets (every word has a vector);
        otherwise only for vocabulary words. ``key in wv.key_to_index`` tests the vocabulary."""
        if key in self.key_to_index:  # an unhashable key is a TypeError, as KeyedVectors'
            return True
        return self.bucket != 0 and isinstance(key, str)

    def __repr__(self) -> str:
        return (
            f"FastTextKeyedVectors({len(self)} keys, vector_size={self.vector_size}, "
            f"min_n={self.min_n}, max_n={self.max_n}, bucket={self.bucket})"
        )

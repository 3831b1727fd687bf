"""``QuantizedKeyedVectors``: a read-only ``KeyedVectors`` whose table is int8 rows in FBGEMM's
fused layout (a ``QuantizedEmbedding``), made by ``KeyedVectors.quantize(bits=8)``.

Memory: ``len x (vector_size + 8)`` bytes for the rows (codes, then a float32 scale and bias
each) plus ``len x 4`` for their norms, against ``len x vector_size x 4`` for float32: 3.8x
less at 300 dimensions. Element ``j`` of row ``r`` reads ``scale_r * code_rj + bias_r``, within
half a step (``scale_r / 2``, the row's range over 510) of the float value.

Accuracy trade-off: every query is answered exactly as ``KeyedVectors`` would answer it on the
*dequantized* vectors (the scan scores ``(q . W_r) / |W_r|`` from the codes; the shortlist is
re-scored in float32 from the dequantized rows), so similarities differ from the float table's
by the quantization error (at most ``2.5e-3`` measured on Gaussian vectors of 300 dimensions)
and rankings may differ where two words' similarities are that close.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from candle_embed import _native
from candle_embed._errors import CandleEmbedTypeError, CandleEmbedValueError, typed_methods
from candle_embed.keyed_vectors._base import KeyedVectorsBase, Vectors
from candle_embed.keyed_vectors._files import KeyedVectors


def _read_only(what: str) -> NoReturn:
    raise CandleEmbedValueError(
        f"{what}: a QuantizedKeyedVectors is read-only (quantize the float KeyedVectors again)"
    )


@typed_methods
class QuantizedKeyedVectors(KeyedVectors):
    """``KeyedVectors`` queries on int8 rows (see the module documentation)."""

    quantized: _native.QuantizedEmbedding

    @classmethod
    def from_keyed_vectors(cls, kv: KeyedVectorsBase, bits: int = 8) -> QuantizedKeyedVectors:
        """``kv``'s keys, attributes and vectors, the vectors quantized to ``bits`` (8)."""
        if not isinstance(kv, KeyedVectorsBase):
            raise CandleEmbedTypeError(f"kv must be a KeyedVectors, got {type(kv).__name__}")
        if isinstance(bits, bool) or bits != 8:
            raise CandleEmbedValueError(f"KeyedVectors.quantize: bits must be 8, got {bits!r}")
        if isinstance(kv, QuantizedKeyedVectors):
            raise CandleEmbedValueError("these vectors are already quantized")
        if type(kv).get_vector is not KeyedVectorsBase.get_vector:
            # e.g. FastTextKeyedVectors: its out-of-vocabulary vectors come from n-gram rows
            raise CandleEmbedValueError(
                f"quantize: {type(kv).__name__} synthesises vectors; only KeyedVectors quantize"
            )
        obj = cls.__new__(cls)
        obj.quantized = _native.QuantizedEmbedding.from_float(kv.vectors, bits)
        obj.vector_size = kv.vector_size
        obj.index_to_key = list(kv.index_to_key)
        obj.key_to_index = dict(kv.key_to_index)
        obj.next_index = kv.next_index
        obj.expandos = {name: values.copy() for name, values in kv.expandos.items()}
        obj.mapfile_path = None
        obj.norms = obj.quantized.row_norms()
        obj._norms_of = None
        return obj

    # --- the table as the queries read it -----------------------------------------------
    @property
    def vectors(self) -> Vectors:
        """Every row dequantized: a new float32 ``(len, vector_size)`` array (the full float
        table's memory; the queries never need it)."""
        out: Vectors = self.quantized.dequantize()
        out.setflags(write=False)
        return out

    @vectors.setter
    def vectors(self, value: Any) -> None:
        _read_only("setting vectors")

    def _scan_table(self) -> Any:
        return self.quantized

    def _row_vectors(self, rows: Any) -> Vectors:
        out: Vectors = self.quantized(np.asarray(rows, dtype=np.int64))
        return out

    def _dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float32)

    def _row_count(self) -> int:
        return int(self.quantized.num_embeddings)

    def fill_norms(self, force: bool = False) -> None:
        """The norms of the dequantized rows (computed when the table was quantized)."""
        if self.norms is None or force:
            self.norms = self.quantized.row_norms()

    def get_vector(self, key: Any, norm: bool = False) -> Vectors:
        """The dequantized vector of ``key`` (a new read-only float32 array), divided by its
        norm with ``norm=True``."""
        index = self.get_index(key)
        result = self._row_vectors(index)
        if norm:
            self.fill_norms()
            assert self.norms is not None
            result = result / self.norms[index]
        result.setflags(write=False)
        return result

    def _vectors_of(self, keys: Sequence[Any], norm: bool = False) -> Vectors:
        rows = np.asarray([self.get_index(k) for k in keys], dtype=np.int64)
        out = self._row_vectors(rows).reshape(len(rows), self.vector_size)
        if norm:
            self.fill_norms()
            assert self.norms is not None
            out = out / self.norms[rows][:, None]
        return out

    @property
    def nbytes(self) -> int:
        """Bytes held by the quantized rows and their norms."""
        norms = 0 if self.norms is None else int(self.norms.nbytes)
        return len(self) * (self.vector_size + 8) + norms

    # --- what a read-only table refuses -------------------------------------------------
    def quantize(self, bits: int = 8) -> Any:
        """Refused: already quantized."""
        raise CandleEmbedValueError("these vectors are already quantized")

    def add_vector(self, key: Any, vector: Any) -> int:
        """Refused (read-only)."""
        _read_only("add_vector")

    def add_vectors(
        self, keys: Any, weights: Any, extras: Any = None, replace: bool = False
    ) -> None:
        """Refused (read-only)."""
        _read_only("add_vectors")

    def __setitem__(self, keys: Any, weights: Any) -> None:
        _read_only("__setitem__")

    def unit_normalize_all(self) -> None:
        """Refused (read-only)."""
        _read_only("unit_normalize_all")

    def sort_by_descending_frequency(self) -> None:
        """Refused (read-only)."""
        _read_only("sort_by_descending_frequency")

    def intersect_word2vec_format(self, *args: Any, **kwargs: Any) -> None:
        """Refused (read-only)."""
        _read_only("intersect_word2vec_format")

    def save(self, fname: Any) -> None:
        """Refused: the KeyedVectors file holds float rows. Save the float KeyedVectors (and
        quantize after loading), or the rows alone with ``quantized.save(path)``."""
        raise CandleEmbedValueError(
            "a QuantizedKeyedVectors cannot be saved as KeyedVectors: save the float "
            "KeyedVectors and quantize after loading, or save the rows with quantized.save(path)"
        )

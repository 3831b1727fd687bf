"""The container layer of ``KeyedVectors``: keys, the vector table, per-key attributes
("vecattrs", gensim's ``expandos``), adding vectors, and the cached row norms.

Every vector a query uses for a key comes from ``get_vector`` (and ``__contains__`` says which
keys have one): the one pair of methods a subclass overrides to synthesise vectors
(``FastTextKeyedVectors`` for out-of-vocabulary words). ``has_index_for`` / ``get_index`` say
which keys own a row.
"""

from __future__ import annotations

import logging
import operator
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from candle_embed import _native
from candle_embed._errors import (
    CandleEmbedKeyError,
    CandleEmbedTypeError,
    CandleEmbedValueError,
    typed_methods,
)

logger = logging.getLogger("candle_embed.keyed_vectors")

#: A key: a word (str) or an int (gensim's ``_KEY_TYPES``).
Key = Union[str, int, np.integer]
#: The float types a table may have (the kernels' types).
FLOAT_TYPES = (np.float16, np.float32, np.float64)
Vectors = npt.NDArray[Any]


def is_key(x: object) -> bool:
    """Whether ``x`` is a single key (str or int, not a vector or a list)."""
    return isinstance(x, (str, int, np.integer))


def check_keys(keys: Sequence[Any]) -> None:
    """Every key a str or an int, and no str with a lone surrogate (it could never be saved or
    matched against text read from a file): TypeError / ValueError otherwise."""
    strs: list[str] = []
    for k in keys:
        if isinstance(k, str):
            strs.append(k)
        elif not isinstance(k, (int, np.integer)) and k is not None:
            raise CandleEmbedTypeError(f"keys must be str or int, got {type(k).__name__}")
    try:
        "\n".join(strs).encode("utf-8")
    except UnicodeEncodeError:
        bad = next(s for s in strs if not _encodable(s))
        raise CandleEmbedValueError(
            f"key {bad!r} contains a lone surrogate: it is not text and cannot be saved"
        ) from None


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def float_dtype(dtype: npt.DTypeLike) -> np.dtype[Any]:
    """``dtype`` as float16, float32 or float64 (the kernels' types), else TypeError."""
    dt = np.dtype(dtype)
    if dt.type not in FLOAT_TYPES:
        raise CandleEmbedTypeError(f"vectors must be float16, float32 or float64, got {dt}")
    return dt


def table(vectors: npt.ArrayLike, rows: int, dim: int | None, dtype: npt.DTypeLike) -> Vectors:
    """``vectors`` as a C-contiguous ``(rows, dim)`` array of ``dtype`` (a view when it already
    is one: a memory-mapped table stays mapped)."""
    arr = np.asanyarray(vectors)  # keeps an np.memmap an np.memmap
    if arr.dtype.kind not in "fiu":
        raise CandleEmbedTypeError(f"vectors must be real numbers, got dtype {arr.dtype}")
    dt = float_dtype(dtype)
    if arr.dtype != dt or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=dt)
    if arr.ndim != 2 or arr.shape[0] != rows or (dim is not None and arr.shape[1] != dim):
        want = f"({rows}, {'dim' if dim is None else dim})"
        raise CandleEmbedValueError(f"vectors must have shape {want}, got {arr.shape}")
    return arr


@typed_methods
class KeyedVectorsBase:
    """Keys (``index_to_key``, ``key_to_index``) and their vectors (``vectors``)."""

    def __init__(
        self,
        vector_size: Any,
        count: Any = 0,
        dtype: npt.DTypeLike = np.float32,
        mapfile_path: str | None = None,
    ) -> None:
        """Either gensim's ``KeyedVectors(vector_size, count=0, dtype=float32)`` (``count`` rows
        preallocated, empty until ``add_vector`` fills them) or ``KeyedVectors(keys, vectors)``:
        the keys in row order and an ``(len(keys), dim)`` table (converted to ``dtype``; a
        C-contiguous table of that dtype is used as it is, not copied). A repeated key keeps its
        first row in ``key_to_index``."""
        if isinstance(vector_size, str):
            raise CandleEmbedTypeError(
                "KeyedVectors(keys, vectors): keys must be a list, not a str"
            )
        try:
            size = operator.index(vector_size)
        except TypeError:
            keys = list(vector_size)
            vecs = table(count, len(keys), None, dtype)
            next_index = len(keys)
        else:
            n = operator.index(count)
            if size < 0 or n < 0:
                raise CandleEmbedValueError(f"vector_size and count must be >= 0, got {size}, {n}")
            keys, next_index = [None] * n, 0
            vecs = np.zeros((n, size), dtype=float_dtype(dtype))
        check_keys(keys)
        self.vector_size: int = int(vecs.shape[1])
        self.index_to_key: list[Any] = keys
        self.key_to_index: dict[Any, int] = {}
        for i, k in enumerate(keys):
            if k is not None:
                self.key_to_index.setdefault(k, i)
        self.next_index: int = next_index
        self.vectors: Vectors = vecs
        self.norms: npt.NDArray[np.floating[Any]] | None = None
        self._norms_of: tuple[int, tuple[int, ...]] | None = None
        self.expandos: dict[str, npt.NDArray[Any]] = {}
        self.mapfile_path = mapfile_path

    @classmethod
    def _from_arrays(cls, keys: list[Any], vectors: Vectors) -> Any:
        """An instance of ``cls`` holding ``keys`` and ``vectors`` (loaders build through it, so a
        subclass with another constructor can still be loaded)."""
        obj = cls.__new__(cls)
        KeyedVectorsBase.__init__(obj, keys, vectors, dtype=vectors.dtype)
        return obj

    # --- container protocol -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index_to_key)

    def __str__(self) -> str:
        return f"{type(self).__name__}<vector_size={self.vector_size}, {len(self)} keys>"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} keys, vector_size={self.vector_size})"

    def __contains__(self, key: object) -> bool:
        return self.has_index_for(key)

    def __getitem__(self, key_or_keys: Any) -> Vectors:
        """The vector of a key (1-D, read-only), or of a list of keys (2-D)."""
        if is_key(key_or_keys):
            return self.get_vector(key_or_keys)
        keys = list(key_or_keys)  # a huge sized iterable: MemoryError at once, not a hang
        return np.vstack([self.get_vector(k) for k in keys])

    def get_index(self, key: Any, default: int | None = None) -> int:
        """The row of ``key``; an int key not in the vocabulary stands for that row when it is in
        range (gensim's rule); else ``default``, or KeyError."""
        val = self.key_to_index.get(key, -1)
        if val >= 0:
            return val
        if isinstance(key, (int, np.integer)) and 0 <= key < len(self.index_to_key):
            return int(key)
        if default is not None:
            return default
        raise CandleEmbedKeyError(f"Key '{key}' not present")

    def has_index_for(self, key: Any) -> bool:
        """Whether ``key`` owns a row (a subclass may have vectors for more keys: see
        ``__contains__``)."""
        return self.get_index(key, -1) >= 0

    def get_vector(self, key: Any, norm: bool = False) -> Vectors:
        """The vector of ``key``: a read-only view of its row, or the row divided by its norm
        (``norm=True``, a new array). Every query gets key vectors through this method."""
        index = self.get_index(key)
        if norm:
            self.fill_norms()
            assert self.norms is not None
            result: Vectors = self.vectors[index] / self.norms[index]
        else:
            result = self.vectors[index]
        result.setflags(write=False)
        return result

    def _vectors_of(self, keys: Sequence[Any], norm: bool = False) -> Vectors:
        """``get_vector(k, norm)`` of every key as rows of a 2-D array (one gather when
        ``get_vector`` is this class's own, else one call per key)."""
        if type(self).get_vector is KeyedVectorsBase.get_vector:
            rows = np.asarray([self.get_index(k) for k in keys], dtype=np.int64)
            if not norm:
                return self.vectors[rows]
            self.fill_norms()
            assert self.norms is not None
            normed: Vectors = self.vectors[rows] / self.norms[rows][:, None]
            return normed
        if not keys:
            return np.zeros((0, self.vector_size), self.vectors.dtype)
        return np.vstack([self.get_vector(k, norm=norm) for k in keys])

    # --- per-key attributes -------------------------------------------------------------
    def allocate_vecattrs(
        self, attrs: Iterable[str] | None = None, types: Iterable[Any] | None = None
    ) -> None:
        """Make sure the arrays of the given per-key attributes exist with one value per key
        (default: resize every existing one to ``len(self)``)."""
        if attrs is None:
            names = list(self.expandos)
            kinds: list[Any] = [self.expandos[a].dtype for a in names]
        else:
            names, kinds = list(attrs), list(types or [])
        n = len(self.index_to_key)
        for attr, t in zip(names, kinds):
            t = np.int64 if t is int else (object if t is str else t)
            prev = self.expandos.get(attr)
            if prev is None:
                self.expandos[attr] = np.zeros(n, dtype=t)
                continue
            if not np.issubdtype(t, prev.dtype):
                raise CandleEmbedTypeError(
                    f"cannot store {t} in attribute {attr!r} of type {prev.dtype}"
                )
            if len(prev) != n:
                grown = np.zeros(n, dtype=prev.dtype)
                grown[: min(n, len(prev))] = prev[: min(n, len(prev))]
                self.expandos[attr] = grown

    def set_vecattr(self, key: Any, attr: str, val: Any) -> None:
        """Set ``key``'s value of the per-key attribute ``attr`` (e.g. ``"count"``)."""
        index = self.get_index(key)
        self.allocate_vecattrs([attr], [type(val)])
        self.expandos[attr][index] = val

    def get_vecattr(self, key: Any, attr: str) -> Any:
        """``key``'s value of the per-key attribute ``attr``; KeyError for an unknown key or
        attribute."""
        index = self.get_index(key)
        if attr not in self.expandos:
            raise CandleEmbedKeyError(f"no attribute {attr!r} (have {sorted(self.expandos)})")
        return self.expandos[attr][index]

    # --- adding vectors -----------------------------------------------------------------
    def add_vector(self, key: Any, vector: npt.ArrayLike) -> int:
        """Add one vector for ``key`` in the next preallocated slot (or at the end, with a
        warning that growing one by one is slow); returns its row. A key already present keeps
        its vector and its row is returned."""
        check_keys([key])
        vec = table(
            np.reshape(np.asarray(vector), (1, -1)), 1, self.vector_size, self.vectors.dtype
        )
        if key in self.key_to_index:
            return self.key_to_index[key]
        target = self.next_index
        if target >= len(self) or self.index_to_key[target] is not None:
            warnings.warn(
                "Adding single vectors to a KeyedVectors which grows by one each time can be "
                "costly. Consider adding in batches or preallocating to the required size.",
                UserWarning,
                stacklevel=3,
            )
            target = len(self)
            self.add_vectors([key], vec)
            self.next_index = target + 1
            return target
        if not self.vectors.flags.writeable:
            raise CandleEmbedValueError("the vectors are read-only (loaded with mmap='r')")
        self.vectors[target] = vec[0]
        self.index_to_key[target] = key
        self.key_to_index[key] = target
        self.next_index += 1
        self.norms = None
        return target

    def add_vectors(
        self,
        keys: Any,
        weights: npt.ArrayLike,
        extras: dict[str, npt.ArrayLike] | None = None,
        replace: bool = False,
    ) -> None:
        """Append keys and their vectors (``weights``: one row per key); keys already present
        keep their vectors unless ``replace``. ``extras``: per-key attribute values, one per
        key. A key repeated in ``keys`` takes its last vector. Nothing changes on an error."""
        if is_key(keys):
            keys = [keys]
            weights = np.reshape(np.asarray(weights), (1, -1))
        keys = list(keys)
        check_keys(keys)
        w = table(weights, len(keys), self.vector_size, self.vectors.dtype)
        extra = {a: np.asarray(v) for a, v in (extras or {}).items()}
        for a, v in extra.items():
            if v.shape[:1] != (len(keys),):
                raise CandleEmbedValueError(f"extras[{a!r}] must have one value per key")
        last = {k: i for i, k in enumerate(keys)}  # a repeated key: its last row
        new = [i for k, i in last.items() if k not in self.key_to_index]
        old = [i for k, i in last.items() if k in self.key_to_index]
        rows_old = [self.key_to_index[keys[i]] for i in old]
        vectors = np.concatenate([self.vectors, w[new]]) if new else self.vectors
        if replace and old:
            if vectors is self.vectors and not vectors.flags.writeable:
                raise CandleEmbedValueError("the vectors are read-only (loaded with mmap='r')")
            vectors[rows_old] = w[old]
        start = len(self.index_to_key)
        self.index_to_key.extend(keys[i] for i in new)
        for j, i in enumerate(new):
            self.key_to_index[keys[i]] = start + j
        self.vectors = vectors
        self.allocate_vecattrs()
        for a, v in extra.items():
            self.allocate_vecattrs([a], [v.dtype])
            self.expandos[a][start:] = v[new]
            if replace and old:
                self.expandos[a][rows_old] = v[old]
        self.norms = None

    def __setitem__(self, keys: Any, weights: npt.ArrayLike) -> None:
        """``kv[key] = vector`` / ``kv[[k1, k2]] = rows``: add or replace
        (``add_vectors(..., replace=True)``)."""
        if not isinstance(keys, list):
            keys = [keys]
            weights = np.reshape(np.asarray(weights), (1, -1))
        self.add_vectors(keys, weights, replace=True)

    # --- norms --------------------------------------------------------------------------
    def fill_norms(self, force: bool = False) -> None:
        """Compute the row norms (``norms``) if they are missing or stale; ``force`` after
        editing ``vectors`` in place. Replacing ``vectors`` by another array is noticed."""
        now = (id(self.vectors), self.vectors.shape)
        if self.norms is None or force or self._norms_of != now:
            self.norms = _native._row_norms(self.vectors)
            self._norms_of = now

    def _filled_norms(self) -> npt.NDArray[np.floating[Any]]:
        """``norms``, computed first if missing or stale."""
        self.fill_norms()
        assert self.norms is not None
        return self.norms

    def get_normed_vectors(self) -> Vectors:
        """Every vector divided by its norm: a new ``(len, vector_size)`` array."""
        self.fill_norms()
        assert self.norms is not None
        out: Vectors = self.vectors / self.norms[:, None]
        return out

    def unit_normalize_all(self) -> None:
        """Scale every vector to unit length, in place (training cannot sensibly continue)."""
        if not self.vectors.flags.writeable:
            raise CandleEmbedValueError("the vectors are read-only (loaded with mmap='r')")
        self.fill_norms()
        assert self.norms is not None
        self.vectors /= self.norms[:, None].astype(self.vectors.dtype)
        self.norms = np.ones(len(self.vectors), dtype=self.norms.dtype)
        self._norms_of = (id(self.vectors), self.vectors.shape)

    def init_sims(self, replace: bool = False) -> None:
        """Deprecated (gensim): ``fill_norms()``; ``replace=True`` also ``unit_normalize_all()``."""
        self.fill_norms()
        if replace:
            self.unit_normalize_all()

    # --- reshaping ----------------------------------------------------------------------
    def vectors_for_all(
        self, keys: Iterable[Any], allow_inference: bool = True, copy_vecattrs: bool = False
    ) -> Any:
        """A new KeyedVectors with the vectors of ``keys`` (deduplicated, in order; keys without
        a vector skipped; ``allow_inference=False``: only keys that own a row). Counts are
        made up in descending order unless ``copy_vecattrs`` copies every per-key attribute."""
        vocab: list[Any] = []
        seen: set[Any] = set()
        for key in list(keys):  # a huge sized iterable is a MemoryError at once, not a hang
            if key not in seen:
                seen.add(key)
                if key in self if allow_inference else key in self.key_to_index:
                    vocab.append(key)
        from candle_embed.keyed_vectors import KeyedVectors

        kv: Any = KeyedVectors(vocab, self._vectors_of(vocab), dtype=self.vectors.dtype)
        kv.expandos["count"] = np.arange(len(vocab), 0, -1, dtype=np.int64)
        if copy_vecattrs:
            rows = [self.get_index(k, -1) for k in vocab]
            for attr, values in self.expandos.items():
                mine = np.zeros(len(vocab), dtype=values.dtype)
                for j, r in enumerate(rows):
                    if r >= 0:
                        mine[j] = values[r]
                kv.expandos[attr] = mine
        return kv

    def sort_by_descending_frequency(self) -> None:
        """Reorder the rows by descending ``count`` (ties keep their order)."""
        if not len(self):
            return
        counts = np.asarray(self.expandos["count"], dtype=np.int64)
        order = np.lexsort((np.arange(len(counts)), -counts))
        self.index_to_key = [self.index_to_key[i] for i in order]
        for k in self.expandos:
            self.expandos[k] = self.expandos[k][order]
        if len(self.vectors):
            self.vectors = np.ascontiguousarray(self.vectors[order])
        self.key_to_index = {k: i for i, k in enumerate(self.index_to_key) if k is not None}
        self.norms = None

    @property
    def embedding(self) -> _native.Embedding:
        """The table as a frozen ``candle_embed.Embedding`` (rows in ``index_to_key`` order)."""
        return _native.Embedding.from_pretrained(self.vectors, freeze=True)

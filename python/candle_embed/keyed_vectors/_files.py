"""The file layer of ``KeyedVectors``: word2vec text / binary and GloVe (gensim's
``load_word2vec_format`` / ``save_word2vec_format`` options), ``intersect_word2vec_format``, and
``save`` / ``load`` of the whole object in one safetensors file (no pickle) that ``load`` can
memory-map (``mmap="r"``: rows are read from the file when used, nothing up front).

Parsing and writing run in Rust (``candle_embed._native``); words come back undecoded, so that
``encoding`` / ``unicode_errors`` decode them exactly as gensim does (any codec and handler).
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Sequence
from os import PathLike
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from candle_embed import _native
from candle_embed._errors import (
    CandleEmbedUnicodeDecodeError,
    CandleEmbedValueError,
    typed_methods,
)
from candle_embed._files import open_regular
from candle_embed.keyed_vectors._base import Vectors, check_keys, float_dtype, logger
from candle_embed.keyed_vectors._evaluate import KeyedVectorsEvaluation

_PathLike = Union[str, "PathLike[str]"]

#: The metadata key of the key list in a KeyedVectors safetensors file.
VOCAB_KEY = "candle_embed.vocab"
#: Per-key attributes are stored as tensors named with this prefix.
ATTR_PREFIX = "vecattr."
_ST_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I64": "<i8"}
_MMAP_MODES = (None, "r", "r+", "c")


def path_of(path: _PathLike) -> str:
    """``path`` as a str the operating system can take (a lone surrogate that is no file-system
    byte is a ValueError, not an encoding error later)."""
    p = os.fspath(path)
    if not isinstance(p, str):
        p = os.fsdecode(p)
    try:
        os.fsencode(p)
    except UnicodeEncodeError:
        raise CandleEmbedValueError(f"path {p!r} cannot be encoded for the file system") from None
    return p


def format_for_path(path: _PathLike) -> str:
    """The file format an output path's extension picks: ``"text"`` (.txt, .vec), ``"binary"``
    (.bin) or ``"safetensors"`` (anything else: ``.safetensors``, ``.kv``, ``.model``, ...)."""
    p = path_of(path).lower()
    if p.endswith(".bin"):
        return "binary"
    if p.endswith((".txt", ".vec")):
        return "text"
    return "safetensors"


def _is_safetensors(path: str) -> bool:
    """A safetensors file starts with its header's size then ``{``."""
    with open_regular(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1


def decode_words(blob: bytes, count: int, encoding: str, errors: str, path: str) -> list[str]:
    """The words of ``_read_word_vectors`` (each followed by a space), decoded as gensim does."""
    if codecs.lookup(encoding).encode(" ")[0] != b" ":
        raise CandleEmbedValueError(f"encoding {encoding!r} is not ASCII-compatible")
    try:
        text = blob.decode(encoding, errors)
    except UnicodeDecodeError as e:
        entry = blob.count(b" ", 0, e.start) + 1
        raise CandleEmbedUnicodeDecodeError(
            e.encoding, e.object, e.start, e.end, f"{e.reason} (word {entry} of {path})"
        ) from None
    words = text.split(" ")[:-1]
    if len(words) != count:
        raise CandleEmbedValueError(f"{path}: decoding with {errors!r} changed word boundaries")
    return words


def _read_counts(fvocab: _PathLike, unicode_errors: str) -> dict[str, int]:
    """A vocabulary file (word2vec's ``-save-vocab``): ``word count`` per line."""
    counts: dict[str, int] = {}
    with open_regular(path_of(fvocab), "rb") as f:
        for line in f:
            word, count = line.decode("utf8", unicode_errors).strip().split()
            counts[word] = int(count)
    return counts


@typed_methods
class KeyedVectors(KeyedVectorsEvaluation):
    """Keys (words) and their vectors with gensim's names and semantics: ``index_to_key``,
    ``key_to_index``, ``vectors`` (float32 ``(len, vector_size)`` by default), per-key
    attributes (``get_vecattr`` / ``set_vecattr``, ``"count"``), similarity queries on Rust
    kernels, evaluations and files.

    ``KeyedVectors(vector_size, count=0, dtype=np.float32)`` is gensim's constructor (``count``
    preallocated rows); ``KeyedVectors(keys, vectors)`` wraps an existing table. Subclasses
    synthesise vectors by overriding ``get_vector`` and ``__contains__``.
    """

    # --- word2vec formats ---------------------------------------------------------------
    @classmethod
    def load_word2vec_format(
        cls,
        fname: _PathLike,
        fvocab: _PathLike | None = None,
        binary: bool = False,
        encoding: str = "utf8",
        unicode_errors: str = "strict",
        limit: int | None = None,
        datatype: npt.DTypeLike = np.float32,
        no_header: bool = False,
    ) -> Any:
        """Read word2vec text (also fastText ``.vec``), binary (``binary=True``) or header-less
        GloVe text (``no_header=True``). Words are decoded with ``encoding`` and
        ``unicode_errors`` (``"replace"`` / ``"ignore"`` accept words cut inside a character);
        a repeated word keeps its first vector; ``limit`` reads the first entries only;
        ``datatype`` converts the vectors (float16/32/64). Counts come from ``fvocab`` (a
        ``word count`` file) or are made up in descending order. A malformed file is a
        ValueError naming the line."""
        path = path_of(fname)
        counts = None if fvocab is None else _read_counts(fvocab, unicode_errors)
        if binary and no_header:
            raise CandleEmbedValueError("no_header only available for text-format files")
        blob, count, vectors = _native._read_word_vectors(path, binary, no_header, limit or None)
        words = decode_words(blob, count, encoding, unicode_errors, path)
        keys: list[str] = []
        seen: dict[str, int] = {}
        for w in words:
            seen.setdefault(w, len(seen))
            if seen[w] == len(keys):
                keys.append(w)
        if len(keys) != count:
            logger.warning("duplicate words in %s: kept the first vector of each", path)
            first = {w: i for i, w in reversed(list(enumerate(words)))}
            vectors = vectors[[first[k] for k in keys]]
        kv = cls._from_arrays(keys, np.asarray(vectors, dtype=float_dtype(datatype)))
        if counts is None:
            kv.expandos["count"] = np.arange(count, count - len(keys), -1, dtype=np.int64)
        else:
            missing = [k for k in keys if k not in counts]
            if missing:
                logger.warning("vocabulary file is incomplete: %r missing", missing[:5])
            kv.expandos["count"] = np.array([counts.get(k, 0) for k in keys], dtype=np.int64)
        return kv

    def save_word2vec_format(
        self,
        fname: _PathLike,
        fvocab: _PathLike | None = None,
        binary: bool = False,
        total_vec: int | None = None,
        write_header: bool = True,
        prefix: str = "",
        append: bool = False,
        sort_attr: str = "count",
    ) -> None:
        """Write word2vec text (or binary) format, atomically: rows by descending ``sort_attr``
        when that attribute exists (else in row order), ``total_vec`` in the header (default
        the number of keys; ``write_header=False``: none, as GloVe), ``prefix`` before every
        word, ``append`` after the file's content. ``fvocab`` also writes ``word count``
        lines."""
        rows = [i for i, k in enumerate(self.index_to_key) if k is not None]
        if sort_attr in self.expandos:
            attr = np.asarray(self.expandos[sort_attr])[rows]
            order = np.asarray(rows, dtype=np.int64)[np.argsort(-attr, kind="stable")]
        else:
            if fvocab is not None:
                raise CandleEmbedValueError(
                    f"Cannot store vocabulary with '{sort_attr}' because that attribute "
                    "does not exist"
                )
            order = np.asarray(rows, dtype=np.int64)
        words = [str(k) for k in self.index_to_key]
        if fvocab is not None:
            values = self.expandos[sort_attr]
            text = "".join(f"{prefix}{words[r]} {values[r]}\n" for r in order.tolist())
            data = text.encode("utf8")
            vocab_path = path_of(fvocab)
            if append and os.path.exists(vocab_path):
                with open_regular(vocab_path, "rb") as f:
                    data = f.read() + data
            _native._write_file_atomic(vocab_path, data)
        self._write_w2v(
            fname,
            words,
            binary,
            order,
            prefix=prefix,
            append=append,
            header=(len(self.index_to_key) if total_vec is None else total_vec)
            if write_header
            else None,
        )

    def _write_w2v(
        self,
        fname: _PathLike,
        words: Sequence[str],
        binary: bool,
        order: npt.NDArray[np.int64] | None,
        *,
        prefix: str = "",
        append: bool = False,
        header: int | None = None,
    ) -> None:
        check_keys(list(words) + [prefix])
        _native._write_word_vectors(
            path_of(fname),
            list(words),
            self.vectors,
            binary=binary,
            header=header,
            prefix=prefix,
            order=order,
            append=append,
        )

    def intersect_word2vec_format(
        self,
        fname: _PathLike,
        lockf: float = 0.0,
        binary: bool = False,
        encoding: str = "utf8",
        unicode_errors: str = "strict",
    ) -> None:
        """Copy the vectors of a word2vec file's words that are already keys over theirs (no key
        is added); ``lockf`` goes to ``vectors_lockf`` of those rows when the object has one.
        The file's vector size must match. Nothing changes on an error."""
        path = path_of(fname)
        blob, count, vectors = _native._read_word_vectors(path, binary, False, None)
        if vectors.shape[1] != self.vector_size:
            raise CandleEmbedValueError(
                f"incompatible vector size {vectors.shape[1]} in file {path}"
            )
        words = decode_words(blob, count, encoding, unicode_errors, path)
        hits = [(self.key_to_index[w], i) for i, w in enumerate(words) if w in self.key_to_index]
        if not hits:
            return
        if not self.vectors.flags.writeable:
            raise CandleEmbedValueError("the vectors are read-only (loaded with mmap='r')")
        mine, theirs = (np.asarray(x, dtype=np.int64) for x in zip(*hits))
        self.vectors[mine] = vectors[theirs]
        lockf_rows = getattr(self, "vectors_lockf", None)
        if isinstance(lockf_rows, np.ndarray) and len(lockf_rows) == len(self.vectors):
            lockf_rows[mine] = lockf
        self.norms = None
        logger.info("merged %d vectors into %s matrix from %s", len(hits), self.vectors.shape, path)

    # --- the whole object ---------------------------------------------------------------
    def save(self, fname: _PathLike) -> None:
        """Write the whole object, atomically, in the format the extension picks: one
        safetensors file (keys, vectors and every numeric per-key attribute; any name but
        .txt/.vec/.bin) that ``load`` can memory-map, or word2vec text (.txt, .vec) / binary
        (.bin) in row order."""
        path = path_of(fname)
        kind = format_for_path(path)
        words = [str(k) for k in self.index_to_key]
        if kind != "safetensors":
            self._write_w2v(path, words, kind == "binary", None, header=len(words))
            return
        check_keys(self.index_to_key)
        attrs = []
        for name, values in self.expandos.items():
            if values.dtype.kind not in "biuf":
                raise CandleEmbedValueError(
                    f"attribute {name!r} holds {values.dtype} values: only numbers can be saved"
                )
            wide = np.int64 if values.dtype.kind in "biu" else np.float64
            attrs.append((ATTR_PREFIX + name, np.ascontiguousarray(values, dtype=wide)))
        meta = {VOCAB_KEY: json.dumps(self.index_to_key, ensure_ascii=False)}
        _native._write_keyed_vectors(path, self.vectors, attrs, meta)

    @classmethod
    def load(cls, fname: _PathLike, mmap: str | None = None) -> Any:
        """Read a file written by ``save`` (or any word2vec .txt/.vec/.bin file). With a
        safetensors file, ``mmap="r"`` maps the vectors read-only instead of reading them
        (``"r+"``: writes go to the file; ``"c"``: copy-on-write), as gensim's ``mmap``."""
        path = path_of(fname)
        if mmap not in _MMAP_MODES:
            raise CandleEmbedValueError(f"mmap must be one of {_MMAP_MODES}, got {mmap!r}")
        if not _is_safetensors(path):
            if mmap is not None:
                raise CandleEmbedValueError(f"mmap needs a safetensors file (see save): {path}")
            kind = format_for_path(path)
            if kind == "safetensors":
                raise CandleEmbedValueError(f"{path}: not a safetensors or word2vec file")
            return cls.load_word2vec_format(path, binary=kind == "binary")
        tensors, meta = _native._index_keyed_vectors(path)
        if "weight" not in tensors or VOCAB_KEY not in meta:
            raise CandleEmbedValueError(f"{path}: no 'weight' tensor or no key list")
        try:
            keys = json.loads(meta[VOCAB_KEY])
        except json.JSONDecodeError as e:
            raise CandleEmbedValueError(f"{path}: bad key list ({e})") from None
        if not isinstance(keys, list):
            raise CandleEmbedValueError(f"{path}: the key list is not a list")
        vectors = _tensor(path, "weight", tensors["weight"], mmap, ndim=2)
        if len(keys) != vectors.shape[0]:
            raise CandleEmbedValueError(f"{path}: {len(keys)} keys for {vectors.shape[0]} vectors")
        kv = cls._from_arrays(keys, vectors)
        for name, info in tensors.items():
            if name.startswith(ATTR_PREFIX):
                values = _tensor(path, name, info, None, ndim=1)
                if len(values) != len(keys):
                    raise CandleEmbedValueError(f"{path}: {name} has {len(values)} values")
                kv.expandos[name[len(ATTR_PREFIX) :]] = values
        return kv


def _tensor(
    path: str, name: str, info: tuple[str, list[int], int, int], mmap: str | None, ndim: int
) -> Vectors:
    """Tensor ``name`` of the file: mapped (``mmap``) or read into memory."""
    dtype_name, shape, offset, nbytes = info
    if dtype_name not in _ST_DTYPES or len(shape) != ndim:
        raise CandleEmbedValueError(f"{path}: tensor {name} is {dtype_name} {shape}")
    dtype = np.dtype(_ST_DTYPES[dtype_name])
    if name == "weight":
        float_dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    if mmap is None or count == 0:
        with open_regular(path, "rb") as f:
            f.seek(offset)
            arr = np.fromfile(f, dtype=dtype, count=count)
        if arr.size != count:
            raise CandleEmbedValueError(f"{path}: tensor {name} is truncated")
        return arr.reshape(shape).astype(dtype.newbyteorder("="), copy=False)
    if offset % dtype.itemsize:
        raise CandleEmbedValueError(f"{path}: tensor {name} is not aligned for mapping")
    mode: Any = mmap  # "r", "r+" or "c" (checked by load)
    mapped: Vectors = np.memmap(path, dtype=dtype, mode=mode, offset=offset, shape=tuple(shape))
    return mapped

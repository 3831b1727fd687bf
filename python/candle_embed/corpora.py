"""Corpora for ``Word2Vec``, with gensim's names and semantics: ``LineSentence`` (one sentence
per line, whitespace-separated tokens) and ``PathLineSentences`` (every file of a directory, in
name order), read transparently when the file is gzip, bzip2 or xz compressed (recognised by its
first bytes, whatever its name). Binary input (a NUL byte, invalid UTF-8) is refused with a
``ValueError`` naming the byte offset, instead of training on garbage.

``Word2Vec`` reads these in Rust, once, whatever the number of epochs; iterating them in Python
yields the same token lists (for inspection).
"""

from __future__ import annotations

import io
import itertools
import lzma
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from os import PathLike, fspath
from typing import IO, Any, Union

from candle_embed import _native
from candle_embed._errors import (
    CandleEmbedFileNotFoundError,
    CandleEmbedOSError,
    CandleEmbedTypeError,
    CandleEmbedValueError,
    typed_methods,
)
from candle_embed._files import open_decompressed

MAX_WORDS_IN_BATCH = 10000
"""gensim's longest sentence: longer ones are split into pieces of this many words."""

_PathLike = Union[str, "PathLike[str]"]
_Source = Union[_PathLike, IO[bytes]]
_DECODE_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)


def _open(path: str, stack: ExitStack) -> tuple[IO[bytes], bool]:
    """``open_decompressed(path)`` entered on ``stack``, its failures named as the corpus's."""
    try:
        return stack.enter_context(open_decompressed(path))
    except FileNotFoundError:
        raise CandleEmbedFileNotFoundError(f"corpus file not found: {path}") from None
    except IsADirectoryError:
        raise CandleEmbedValueError(f"corpus {path} is a directory, not a file") from None
    except OSError as e:
        raise CandleEmbedOSError(f"cannot read corpus {path}: {e}") from None


def _checked_read(f: IO[bytes], name: str) -> Callable[[int], bytes]:
    """``f.read`` with decompression failures as ``CandleEmbedValueError``."""

    def read(n: int) -> bytes:
        try:
            return f.read(n)
        except _DECODE_ERRORS as e:
            raise CandleEmbedValueError(f"corpus {name}: cannot decompress ({e})") from None

    return read


def read_corpus(
    sources: Sequence[_Source], limit: int | None = None, max_sentence_length: int = 10000
) -> _native._W2VCorpus:
    """Read text sources (paths or binary file objects) into one native corpus."""
    args: list[Any] = []
    names: list[str] = []
    with ExitStack() as stack:
        for src in sources:
            if hasattr(src, "read"):
                f: Any = src
                if hasattr(f, "seek"):
                    f.seek(0)
                name = str(getattr(f, "name", "<file object>"))
                args.append(_checked_read(f, name))
                names.append(name)
                continue
            path = fspath(src)
            fh, compressed = _open(path, stack)
            args.append(_checked_read(fh, path) if compressed else path)
            names.append(path)
        return _native._W2VCorpus.from_sources(args, names, limit, max_sentence_length)


def _lines(source: _Source, limit: int | None) -> Iterator[bytes]:
    if hasattr(source, "read"):
        f: Any = source
        if hasattr(f, "seek"):
            f.seek(0)
        yield from itertools.islice(f, limit)
        return
    path = fspath(source)
    with ExitStack() as stack:
        fh, _ = _open(path, stack)
        try:
            yield from itertools.islice(fh, limit)
        except _DECODE_ERRORS as e:
            raise CandleEmbedValueError(f"corpus {path}: cannot decompress ({e})") from None


def _split(lines: Iterable[bytes], max_len: int) -> Iterator[list[str]]:
    for raw in lines:
        try:
            words = raw.decode("utf-8").split()
        except UnicodeDecodeError as e:
            raise CandleEmbedValueError(f"corpus is not UTF-8 text ({e})") from None
        if b"\x00" in raw:  # as the Rust reader: a NUL byte means a binary file
            raise CandleEmbedValueError("corpus is not text (a NUL byte): a binary file?")
        for i in range(0, len(words), max_len):
            yield words[i : i + max_len]


def _positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CandleEmbedValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


@typed_methods
class LineSentence:
    """gensim's ``LineSentence``: a file (path or binary file object) with one sentence per
    line, tokens separated by whitespace; lines longer than ``max_sentence_length`` words are
    split; at most ``limit`` lines. ``.gz`` / ``.bz2`` / ``.xz`` content is decompressed."""

    def __init__(
        self,
        source: _Source,
        max_sentence_length: int = MAX_WORDS_IN_BATCH,
        limit: int | None = None,
    ) -> None:
        if not (hasattr(source, "read") or isinstance(source, (str, PathLike))):
            raise CandleEmbedTypeError(
                f"source must be a path or a binary file object, got {type(source).__name__}"
            )
        self.source = source
        self.max_sentence_length = _positive("max_sentence_length", max_sentence_length)
        self.limit = None if limit is None else _positive("limit", limit)

    def __iter__(self) -> Iterator[list[str]]:
        """The sentences, as lists of tokens."""
        yield from _split(_lines(self.source, self.limit), self.max_sentence_length)

    def _read(self) -> _native._W2VCorpus:
        return read_corpus([self.source], self.limit, self.max_sentence_length)


@typed_methods
class PathLineSentences:
    """gensim's ``PathLineSentences``: every file of a directory (not recursing), in name
    order, read as ``LineSentence`` (a single file is allowed too); at most ``limit`` lines
    per file."""

    def __init__(
        self,
        source: _PathLike,
        max_sentence_length: int = MAX_WORDS_IN_BATCH,
        limit: int | None = None,
    ) -> None:
        path = fspath(source)
        self.source = path
        self.max_sentence_length = _positive("max_sentence_length", max_sentence_length)
        self.limit = None if limit is None else _positive("limit", limit)
        if os.path.isfile(path):
            self.input_files = [path]
        elif os.path.isdir(path):
            names = sorted(os.listdir(path))
            self.input_files = [
                os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))
            ]
        else:
            raise CandleEmbedValueError(f"input is neither a file nor a directory: {path}")

    def __iter__(self) -> Iterator[list[str]]:
        """The sentences of every file, as lists of tokens."""
        for name in self.input_files:
            yield from _split(_lines(name, self.limit), self.max_sentence_length)

    def _read(self) -> _native._W2VCorpus:
        return read_corpus(self.input_files, self.limit, self.max_sentence_length)


def native_corpus(
    corpus_iterable: object = None, corpus_file: _PathLike | None = None
) -> _native._W2VCorpus:
    """The native corpus of exactly one of ``corpus_iterable`` (token lists, a
    ``LineSentence`` / ``PathLineSentences``, or a path object) and ``corpus_file`` (a path)."""
    if (corpus_iterable is None) == (corpus_file is None):
        raise CandleEmbedTypeError(
            "give exactly one of sentences (corpus_iterable) and corpus_file"
        )
    if corpus_file is not None:
        if not isinstance(corpus_file, (str, PathLike)):
            raise CandleEmbedTypeError(
                f"corpus_file must be a path, got {type(corpus_file).__name__}"
            )
        return read_corpus([corpus_file])
    if isinstance(corpus_iterable, (LineSentence, PathLineSentences)):
        return corpus_iterable._read()
    if isinstance(corpus_iterable, PathLike):
        path = fspath(corpus_iterable)
        if os.path.isdir(path):
            return PathLineSentences(path)._read()
        return read_corpus([path])
    if isinstance(corpus_iterable, io.IOBase):
        return read_corpus([corpus_iterable])  # type: ignore[list-item]
    return _native._W2VCorpus.from_sentences(corpus_iterable)

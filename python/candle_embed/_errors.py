"""Exception classes. Each is both a ``CandleEmbedError`` and the builtin class a Python user
expects (``IndexError``, ``TypeError``, ...), so ``except IndexError`` and
``except candle_embed.CandleEmbedError`` both work. The compiled module raises these."""

from __future__ import annotations


class CandleEmbedError(Exception):
    """Base class of every error raised by candle_embed."""


class CandleEmbedIndexError(CandleEmbedError, IndexError):
    """An id, position or offset out of range."""


class CandleEmbedTypeError(CandleEmbedError, TypeError):
    """An argument of the wrong type or dtype."""


class CandleEmbedValueError(CandleEmbedError, ValueError):
    """An argument of the right type but a bad value or shape."""


class CandleEmbedKeyError(CandleEmbedError, KeyError):
    """A missing key (an unknown word, a missing config key)."""


class CandleEmbedMemoryError(CandleEmbedError, MemoryError):
    """A size that cannot be allocated."""


class CandleEmbedOSError(CandleEmbedError, OSError):
    """A file-system failure."""


class CandleEmbedFileNotFoundError(CandleEmbedOSError, FileNotFoundError):
    """A file that does not exist."""


class CandleEmbedAttributeError(CandleEmbedError, AttributeError):
    """A missing attribute, or a class method called on an instance."""


class CandleEmbedRuntimeError(CandleEmbedError, RuntimeError):
    """An internal failure (a bug: please report it)."""


class CandleEmbedNotImplementedError(CandleEmbedError, NotImplementedError):
    """A feature this build does not have yet (the message names the missing piece)."""

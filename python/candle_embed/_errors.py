"""Exception classes. Each is both a ``CandleEmbedError`` and the builtin class a Python user
expects (``IndexError``, ``TypeError``, ...), so ``except IndexError`` and
``except candle_embed.CandleEmbedError`` both work. The compiled module raises these."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar


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


class CandleEmbedUnicodeDecodeError(CandleEmbedValueError, UnicodeDecodeError):
    """Bytes that are not text in the given encoding (a word in a word-vector file); the
    ``unicode_errors="replace"`` or ``"ignore"`` loaders accept them."""


class CandleEmbedZeroDivisionError(CandleEmbedValueError, ZeroDivisionError):
    """An empty input where a mean is needed (gensim's ``n_similarity`` raises
    ZeroDivisionError)."""


class CandleEmbedImportError(CandleEmbedError, ImportError):
    """An optional dependency that is not installed (the message names the extra to install)."""


# Builtin exception classes and the ones of ours that stand for them, most specific first.
_OURS: tuple[tuple[type[BaseException], type[CandleEmbedError]], ...] = (
    (MemoryError, CandleEmbedMemoryError),
    (NotImplementedError, CandleEmbedNotImplementedError),
    (ImportError, CandleEmbedImportError),
    (FileNotFoundError, CandleEmbedFileNotFoundError),
    (OSError, CandleEmbedOSError),
    (KeyError, CandleEmbedKeyError),
    (IndexError, CandleEmbedIndexError),
    (LookupError, CandleEmbedValueError),  # an unknown encoding or codec name
    (TypeError, CandleEmbedTypeError),
    (ZeroDivisionError, CandleEmbedZeroDivisionError),
    (ValueError, CandleEmbedValueError),
    (ArithmeticError, CandleEmbedValueError),
    (AttributeError, CandleEmbedAttributeError),  # an argument without the expected method
    (RecursionError, CandleEmbedValueError),  # an input nested too deeply
)


def as_ours(e: Exception) -> CandleEmbedError:
    """``e`` as a ``CandleEmbedError`` of the class that stands for its builtin class (NumPy's
    ``MemoryError`` -> ``CandleEmbedMemoryError``, its "array is too big" ``ValueError`` ->
    ``CandleEmbedValueError``, ...), with the same arguments; anything unforeseen becomes
    ``CandleEmbedRuntimeError`` naming the original class."""
    if isinstance(e, CandleEmbedError):
        return e
    if isinstance(e, UnicodeDecodeError):
        return CandleEmbedUnicodeDecodeError(e.encoding, e.object, e.start, e.end, e.reason)
    for builtin, ours in _OURS:
        if isinstance(e, builtin):
            if builtin is MemoryError and not e.args:
                return ours("out of memory")
            if builtin is ImportError:
                return ours(str(e))
            return ours(*e.args)
    return CandleEmbedRuntimeError(f"{type(e).__name__}: {e}")


_F = TypeVar("_F", bound=Callable[..., Any])


def _foreign(e: BaseException) -> bool:
    """``e``'s class is the user's (or a third party's) own, derived from no builtin class but
    ``Exception``: what a callback or an argument's own ``__str__`` / ``__iter__`` raised."""
    builtin = (c for c in type(e).__mro__ if c.__module__ == "builtins")
    return all(c in (Exception, BaseException, object) for c in builtin)


@contextmanager
def _typed_errors() -> Iterator[None]:
    """The body of ``typed``: an exception leaving the block as a ``CandleEmbedError``."""
    try:
        yield
    except CandleEmbedError:
        raise
    except Exception as e:
        if _foreign(e):
            raise
        raise as_ours(e) from e


def typed(fn: _F) -> _F:
    """Wrap ``fn`` so that every exception it lets out (an ``Exception``, not ``KeyboardInterrupt``)
    is a ``CandleEmbedError``: the one mechanism of the Python layer (see ``as_ours``). A
    generator function's exceptions are typed as it is iterated, too. An exception of the
    user's own class (raised by a callback, or by an argument's ``__str__`` / ``__iter__``)
    passes through unchanged, as Python's own conversions let it."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with _typed_errors():
                return (yield from fn(*args, **kwargs))

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _typed_errors():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


_C = TypeVar("_C", bound=type)

_DUNDERS = {"__init__", "__getitem__", "__setitem__", "__contains__", "__iter__"}


def _typed_or_none(fn: Callable[..., Any] | None) -> Callable[..., Any] | None:
    return None if fn is None else typed(fn)


def typed_methods(cls: _C) -> _C:
    """Apply ``typed`` to every public method, classmethod, staticmethod and property (getter,
    setter, deleter) defined in ``cls``'s body, and to its ``__init__``, ``__getitem__``,
    ``__setitem__``, ``__contains__`` and ``__iter__``."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") and name not in _DUNDERS:
            continue
        if isinstance(member, classmethod):
            setattr(cls, name, classmethod(typed(member.__func__)))
        elif isinstance(member, staticmethod):
            setattr(cls, name, staticmethod(typed(member.__func__)))
        elif isinstance(member, property):
            wrapped = property(
                _typed_or_none(member.fget),
                _typed_or_none(member.fset),
                _typed_or_none(member.fdel),
                member.__doc__,
            )
            setattr(cls, name, wrapped)
        elif inspect.isfunction(member):
            setattr(cls, name, typed(member))
    return cls

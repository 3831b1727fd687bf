"""Argument checks of ``Word2Vec``: every bad value is a ``CandleEmbedError`` naming the
argument (ints from anything with ``__index__``, reals from ints, floats or NumPy reals; a huge
int given as a float is a ``ValueError``, not Python's ``OverflowError``)."""

from __future__ import annotations

import math
import numbers
import operator

from candle_embed._errors import CandleEmbedTypeError, CandleEmbedValueError

MAX_EPOCHS = 1_000_000
"""The most ``epochs`` a training run takes (real runs use 5 to a few hundred): a billion
epochs would run for days with no further benefit, so it is a ``ValueError`` at once."""


def int_arg(name: str, value: object, minimum: int, limit: int = 2**63) -> int:
    """``value`` as an int in ``[minimum, limit)``: anything with ``__index__``, never a float."""
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise CandleEmbedTypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not minimum <= v < limit:
        raise CandleEmbedValueError(f"{name} must be in [{minimum}, {limit}), got {v}")
    return v


def opt_int_arg(name: str, value: object, minimum: int) -> int | None:
    """``None`` or :func:`int_arg`."""
    return None if value is None else int_arg(name, value, minimum)


def flag_arg(name: str, value: object) -> bool:
    """gensim's 0/1 switches (``sg``, ``hs``, ``cbow_mean``, ...): 0, 1, False or True."""
    v = int_arg(name, value, 0, 2)
    return bool(v)


def real_arg(name: str, value: object, minimum: float | None = 0.0) -> float:
    """``value`` as a finite float (``>= minimum`` unless ``minimum`` is None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CandleEmbedTypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:
        raise CandleEmbedValueError(f"{name} is too large for a float: {value}") from None
    if not math.isfinite(v) or (minimum is not None and v < minimum):
        bound = "" if minimum is None else f" and >= {minimum}"
        raise CandleEmbedValueError(f"{name} must be finite{bound}, got {v}")
    return v


def minibatch_arg(value: object, sg: int, hs: int, negative: int) -> bool:
    """``minibatch`` (HogBatch windows / batches): a 0/1 flag, only for negative sampling
    (skip-gram or CBOW)."""
    on = flag_arg("minibatch", value)
    if on and not (not hs and negative > 0):
        raise CandleEmbedValueError(
            "minibatch=True (HogBatch) is negative sampling only (skip-gram or CBOW): "
            f"it needs hs=0, negative > 0 (got sg={sg}, hs={hs}, negative={negative})"
        )
    return on

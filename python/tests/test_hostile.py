"""The hostile-input sweep (issue 19): every public callable, every argument, hostile values,
in child processes (see ``hostile_sweep.py`` for the catalog and the judging).

CI runs a fixed sample (seed 19, a bounded number of values per argument, plus every value
that once found a bug); ``CANDLE_EMBED_HOSTILE_LONG=1`` runs every value in every argument of
every target (tens of thousands of calls: minutes to an hour). ``CANDLE_EMBED_HOSTILE_SEED``
draws another sample. A failure lists each violation with the call that reproduces it.
"""

from __future__ import annotations

import os
import random
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import candle_embed as ce
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import hostile_sweep as hs  # noqa: E402

LONG = os.environ.get("CANDLE_EMBED_HOSTILE_LONG") == "1"
SEED = int(os.environ.get("CANDLE_EMBED_HOSTILE_SEED", "19"))
PER_ARGUMENT = 6
WORKERS = 2

# Values that found a bug once, tried in every argument in CI too (regressions).
ALWAYS = [
    "H.deep(200_000)",
    "H.selfref()",
    "10**400",
    "2**64 - 1",
    "'\\ud800'",
    "H.fifo()",
    "np.broadcast_to(np.float32(1), (2**40, 4))",
]


def cases() -> list[tuple[str, str, str]]:
    rng = random.Random(SEED)
    out: list[tuple[str, str, str]] = []
    for t in hs.targets():
        if t.name in hs.SLOW_TARGETS and not LONG:
            params: tuple[str, ...] = t.params[:1]
        else:
            params = t.params
        for p in params:
            if LONG:
                values = hs.HOSTILE
            else:
                values = ALWAYS + rng.sample(hs.HOSTILE, PER_ARGUMENT)
            out.extend((t.name, p, v) for v in dict.fromkeys(values))
    return out


def test_every_public_callable_is_a_target() -> None:
    """The introspection finds every exported function, every class with a factory, and
    their methods (a new API is swept without editing the catalog)."""
    names = {t.name for t in hs.targets()}
    for name in ce.__all__:
        obj = getattr(ce, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            continue
        if isinstance(obj, type):
            if name in hs.FACTORIES:  # its constructor (if it has one) and methods
                assert any(n.startswith(name + ".") for n in names), name
        elif callable(obj):
            assert name in names, name
    assert "Embedding.__call__" in names and "optim.SGD.step" in names
    assert "Embedding.max_norm=" in names or any(n.endswith("=") for n in names)


def _sweep(todo: list[tuple[str, str, str]]) -> None:
    rng = random.Random(SEED)
    rng.shuffle(todo)
    batches = [todo[i::WORKERS] for i in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(hs.run_batch, batches))
    violations = [v for vs, _ in results for v in vs]
    ran = sum(n for _, n in results)
    assert ran == len(todo)
    if violations:
        report = "\n".join(hs.reproducer(v) for v in violations[:60])
        pytest.fail(f"{len(violations)} of {ran} hostile calls misbehaved:\n{report}")


def test_hostile_values_in_every_argument() -> None:
    _sweep(cases())


class _OwnError(Exception):
    pass


class _BadPath(os.PathLike[str]):
    def __fspath__(self) -> str:
        return 3  # type: ignore[return-value]


def test_typed_python_layer_covers_properties_generators_and_passes_user_errors() -> None:
    """The Python layer's one mechanism (``typed`` / ``typed_methods``): a property setter and
    a generator (``LineSentence`` iterated) raise only ``CandleEmbedError``s, while an
    exception of the user's own class (a callback's) comes out unchanged."""
    wv = ce.FastText(hs.H.SENTENCES, vector_size=4, min_count=1, epochs=1, workers=1, bucket=8).wv
    with pytest.raises(ce.CandleEmbedError):
        wv.vectors_ngrams = "x"  # type: ignore[assignment]
    with pytest.raises(ce.CandleEmbedTypeError):
        list(ce.LineSentence(_BadPath()))

    class Callback(ce.CallbackAny2Vec):
        def on_train_begin(self, model: Any) -> None:
            raise _OwnError("mine")

    with pytest.raises(_OwnError, match="mine"):
        ce.Word2Vec(hs.H.SENTENCES, min_count=1, epochs=1, workers=1, callbacks=[Callback()])

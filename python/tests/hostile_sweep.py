"""The hostile-input sweep (issue 19): every public callable of ``candle_embed``, found by
introspection, called with hostile values in each argument, in child processes.

A *target* is a callable reached from the public API: a module function, a class's
constructor, a method (bound to a fresh, valid instance), a classmethod / staticmethod, or a
property setter. Targets are enumerated from ``candle_embed.__all__`` and ``optim.__all__``, so
a new API is swept as soon as it is exported. Each case calls one target with a *valid*
baseline call (``BASELINES``; guessed from parameter names for a target that has none) in
which one argument is replaced by a hostile value, written as a Python expression so that a
failure prints a reproducer.

The child (``python hostile_sweep.py`` reading JSON cases on stdin) reports, per case, how the
call ended. The parent judges: every exception must be a ``CandleEmbedError`` and not the
internal ``CandleEmbedRuntimeError`` (a caught panic or an unanticipated candle error); the
process must not die (a signal, an abort) nor hang. This file is both the catalog and the
child; ``test_hostile.py`` runs it.
"""

from __future__ import annotations

import inspect
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- hostile values

HUGE_INTS = [
    "-1",
    "-(2**63) - 1",
    "2**31",
    "2**40",
    "2**62",
    "2**63 - 1",
    "2**63",
    "2**64 - 1",
    "2**64",
    "10**400",
    "-(10**400)",
    "np.int64(-1)",
    "np.uint64(2**64 - 1)",
]
FLOATS = [
    "float('nan')",
    "float('inf')",
    "-float('inf')",
    "1e308",
    "-0.0",
    "1.5",
    "np.float32('nan')",
    "np.float16(65504)",
]
SCALARS = [
    "None",
    "True",
    "object()",
    "'x'",
    "''",
    "'\\ud800'",
    "'a\\x00b'",
    "b'x'",
    "bytearray(b'ab')",
    "1j",
    "H.BadIndex()",
    "H.BadFloat()",
    "H.BadStr()",
    "H.BadArray()",
    "H.BadIter()",
    "H.Exploding()",
    "lambda *a, **k: 1 / 0",
    "print",
    "Ellipsis",
    "slice(None)",
]
CONTAINERS = [
    "[]",
    "()",
    "{}",
    "{'a': 1}",
    "{1: 2}",
    "{'rope_type': H.deep(200_000)}",
    "set()",
    "[[1], [2, 3]]",
    "[1, 'a']",
    "['a', None]",
    "[[[[1]]]]",
    "H.deep(200_000)",
    "H.deep(70)",
    "H.selfref()",
    "H.selfref_dict()",
    "[H.selfref()]",
    "['\\ud800']",
    "[b'x']",
    "iter([1, 2])",
    "range(2**62)",
    "[2**64]",
    "[10**400]",
    "[float('nan')]",
]
ARRAYS = [
    "np.broadcast_to(np.int64(3), (2**40,))",
    "np.broadcast_to(np.float32(1), (2**40, 4))",
    "np.broadcast_to(np.float64(1), (2**20, 2**20))",
    "np.zeros((1,) * 64)",
    "np.zeros((1,) * 64, np.int64)",
    "np.zeros((0,))",
    "np.zeros((0, 4), np.float32)",
    "np.zeros((4, 0), np.float32)",
    "np.zeros(())",
    "np.int64(3)",
    "np.arange(48).reshape(6, 8)[::2, ::-3]",
    "np.ones((10, 4), np.float32)[::-1]",
    "H.readonly(np.arange(8))",
    "H.readonly(np.ones((10, 4), np.float32))",
    "np.array([2**63 - 1, -(2**63)])",
    "np.array([2**64 - 1], np.uint64)",
    "np.array([np.nan, np.inf, -np.inf])",
    "np.arange(4, dtype='>i8')",
    "np.ones((2, 4), '>f4')",
    "np.ma.masked_array([1, 2], mask=[0, 1])",
    "memoryview(b'abcd')",
    "memoryview(np.ones(4))",
    "np.zeros(3, [('a', 'i4'), ('b', 'f8')])",
    "np.ones((2, 4), np.float32).view(np.dtype((np.void, 4)))",
] + [
    f"np.ones((2, 4), {dt!r})"
    for dt in [
        "object",
        "complex64",
        "complex128",
        "datetime64[s]",
        "timedelta64[s]",
        "V8",
        "U3",
        "S3",
        "bool",
        "float16",
        "float64",
        "longdouble",
        "int8",
        "uint64",
    ]
]
PATHS = [
    "H.fifo()",
    "H.unix_socket()",
    "H.devnode()",
    "H.longname()",
    "H.tmpdir()",
    "'\\ud800.bin'",
    "b'\\xff.bin'",
    "'no/such/dir/x.bin'",
    "'/proc/self/mem'",
    "H.path('')",
    "Path(H.fifo())",
]
HOSTILE: list[str] = HUGE_INTS + FLOATS + SCALARS + CONTAINERS + ARRAYS + PATHS

# --------------------------------------------------------------------------- baselines

# A valid call of each target, as keyword -> expression (evaluated with ``obj`` the fresh
# instance of the target's class). Keys are target names (see ``targets``).
FACTORIES: dict[str, str] = {
    "Embedding": "ce.Embedding(10, 4, seed=0)",
    "EmbeddingBag": "ce.EmbeddingBag(10, 4, mode='sum', seed=0)",
    "FastText": "H.fasttext()",
    "FastTextKeyedVectors": "H.fasttext().wv",
    "KeyedVectors": "ce.KeyedVectors(['a', 'b', 'c', 'd'], H.vectors(4, 4))",
    "QuantizedKeyedVectors": "ce.KeyedVectors(['a', 'b', 'c', 'd'], H.vectors(4, 4)).quantize(8)",
    "LearnedPositionalEmbedding": "ce.LearnedPositionalEmbedding(16, 4, seed=0)",
    "RelativePositionBias": "ce.RelativePositionBias(2, seed=0)",
    "RotaryEmbedding": "ce.RotaryEmbedding(8)",
    "SinusoidalPositionalEncoding": "ce.SinusoidalPositionalEncoding(8)",
    "SparseGrad": "ce.SparseGrad.from_rows([1, 3], np.ones((2, 4), np.float32), 10)",
    "TransformerEmbeddings": "H.transformer()",
    "Word2Vec": "ce.Word2Vec(H.SENTENCES, vector_size=8, min_count=1, epochs=1, workers=1)",
    "optim.SparseOptimizer": "optim.SGD(ce.Embedding(10, 4, seed=0, max_norm=None), 0.1)",
    "QuantizedEmbedding": "ce.Embedding(10, 4, seed=0).quantize(8)",
    "QuantizedEmbeddingBag": "ce.EmbeddingBag(10, 4, mode='sum', seed=0).quantize(4)",
}
for _opt in ("SGD", "Adagrad", "AdamW", "RowWiseAdagrad", "SparseAdam"):
    FACTORIES[f"optim.{_opt}"] = f"optim.{_opt}(ce.Embedding(10, 4, seed=0), 0.1)"

F4 = "np.ones((2, 4), np.float32)"
# A training run of a few milliseconds (Word2Vec, FastText).
SMALL_TRAINING = {"vector_size": "8", "min_count": "1", "epochs": "1", "workers": "1"}
BASELINES: dict[str, dict[str, str]] = {
    "Embedding": {"num_embeddings": "10", "embedding_dim": "4"},
    "Embedding.__call__": {"ids": "[[1, 2], [3, 4]]"},
    "Embedding.backward": {"ids": "[1, 2]", "grad_output": F4},
    "Embedding.attend": {"x": "np.ones((3, 4), np.float32)"},
    "Embedding.attend_backward": {
        "x": "np.ones((3, 4), np.float32)",
        "grad_logits": "np.ones((3, 10), np.float32)",
    },
    "Embedding.from_pretrained": {"weight": "np.ones((10, 4), np.float32)"},
    "EmbeddingBag": {"num_embeddings": "10", "embedding_dim": "4"},
    "EmbeddingBag.__call__": {"ids": "[1, 2, 3]", "offsets": "[0, 2]"},
    "EmbeddingBag.backward": {"ids": "[1, 2, 3]", "grad_output": F4, "offsets": "[0, 2]"},
    "EmbeddingBag.backward_per_sample_weights": {
        "ids": "[1, 2, 3]",
        "grad_output": F4,
        "offsets": "[0, 2]",
    },
    "EmbeddingBag.from_pretrained": {"weight": "np.ones((10, 4), np.float32)"},
    "FastText": {"sentences": "H.SENTENCES", **SMALL_TRAINING, "bucket": "50"},
    "FastText.train": {"sentences": "H.SENTENCES"},
    "FastText.set_output_layer": {"layer": "obj.output_layer()"},
    "FastTextKeyedVectors": {"vector_size": "8", "min_n": "3", "max_n": "6", "bucket": "50"},
    "FastTextKeyedVectors.from_tables": {
        "keys": "['a', 'b']",
        "table": "H.vectors(52, 8)",
        "min_n": "3",
        "max_n": "6",
        "bucket": "50",
    },
    "KeyedVectors": {"index_to_key": "['a', 'b', 'c', 'd']", "vectors": "H.vectors(4, 4)"},
    "KeyedVectors.most_similar": {"positive": "['a']"},
    "KeyedVectors.similarity": {"w1": "'a'", "w2": "'b'"},
    "KeyedVectors.evaluate_word_pairs": {"pairs": "H.pairs_file()"},
    "KeyedVectors.evaluate_word_analogies": {"analogies": "H.analogies_file()"},
    "KeyedVectors.load_word2vec_format": {"fname": "H.w2v_file()"},
    "KeyedVectors.load": {"fname": "H.kv_file()"},
    "LearnedPositionalEmbedding": {"max_len": "16", "dim": "4"},
    "LearnedPositionalEmbedding.__call__": {"x": "np.ones((2, 3, 4), np.float32)"},
    "LearnedPositionalEmbedding.backward": {"grad": "np.ones((2, 3, 4), np.float32)"},
    "RelativePositionBias": {"num_heads": "2"},
    "RelativePositionBias.__call__": {"q_len": "3", "k_len": "4"},
    "RelativePositionBias.backward": {
        "grad": "np.ones((2, 3, 4), np.float32)",
        "q_len": "3",
        "k_len": "4",
    },
    "RotaryEmbedding": {"head_dim": "8"},
    "RotaryEmbedding.frequencies": {"seq_len": "4"},
    "RotaryEmbedding.cos_sin": {"positions": "[0, 1, 2]"},
    "RotaryEmbedding.apply": {"x": "np.ones((2, 3, 8), np.float32)"},
    "RotaryEmbedding.apply_backward": {"grad_output": "np.ones((2, 3, 8), np.float32)"},
    "SinusoidalPositionalEncoding": {"dim": "8"},
    "SinusoidalPositionalEncoding.__call__": {"x": "np.ones((2, 3, 8), np.float32)"},
    "SparseGrad.from_rows": {"ids": "[1, 3]", "values": F4, "num_rows": "10"},
    "TransformerEmbeddings": {"vocab_size": "10", "dim": "8"},
    "TransformerEmbeddings.__call__": {"ids": "[[1, 2, 3]]"},
    "TransformerEmbeddings.backward": {"grad": "np.ones((1, 3, 8), np.float32)"},
    "Word2Vec": {"sentences": "H.SENTENCES", **SMALL_TRAINING},
    "Word2Vec.train": {"sentences": "H.SENTENCES"},
    "alibi_bias": {"num_heads": "2", "q_len": "3", "k_len": "4"},
    "alibi_slopes": {"num_heads": "2"},
    "coalesce": {"ids": "[1, 1, 2]", "values": "np.ones((3, 4), np.float32)"},
    "load_facebook_model": {"path": "H.fasttext_file()"},
    "load_facebook_vectors": {"path": "H.fasttext_file()"},
    "save_facebook_model": {"model": "H.fasttext()", "path": "H.path('ft.bin')"},
    "index_add": {
        "dst": "np.zeros((5, 4), np.float32)",
        "ids": "[1, 2]",
        "src": F4,
    },
    "plot_embeddings": {"vectors_or_keyed_vectors": "H.vectors(5, 3)", "path": "H.path('p.png')"},
    "position_ids_from_padding": {"ids": "[[1, 2, 0]]", "padding_idx": "0"},
    "relative_position_bucket": {"relative_position": "[[0, 1], [-1, 0]]"},
    "set_num_threads": {"n": "ce.get_num_threads()"},
    "optim.SparseOptimizer": {
        "params": "ce.Embedding(10, 4, seed=0)",
        "config": "ce._native.SGDConfig(lr=0.1)",
    },
    "optim.SparseOptimizer.step": {"grads": "H.grad()"},
    "optim.SparseOptimizer.load_state_dict": {"state": "obj.state_dict()"},
}
for _q in ("QuantizedEmbedding", "QuantizedEmbeddingBag"):
    BASELINES[f"{_q}.from_float"] = {"weight": "np.ones((10, 4), np.float32)", "bits": "8"}
    BASELINES[f"{_q}.from_packed"] = {"packed": "H.packed()", "bits": "8"}
    BASELINES[f"{_q}.attend"] = {"x": "np.ones((3, 4), np.float32)"}
    BASELINES[f"{_q}.save"] = {"path": "H.path('q.safetensors')"}
    BASELINES[f"{_q}.load"] = {"path": "H.quantized_file()"}
BASELINES["QuantizedEmbedding.__call__"] = {"ids": "[[1, 2], [3, 4]]"}
BASELINES["QuantizedEmbeddingBag.__call__"] = {"ids": "[1, 2, 3]", "offsets": "[0, 2]"}
for _opt in ("SGD", "Adagrad", "AdamW", "RowWiseAdagrad", "SparseAdam"):
    BASELINES[f"optim.{_opt}"] = {"params": "ce.Embedding(10, 4, seed=0)", "lr": "0.1"}
    BASELINES[f"optim.{_opt}.step"] = {"grads": "H.grad()"}
    BASELINES[f"optim.{_opt}.load_state_dict"] = {"state": "obj.state_dict()"}

# Guesses by parameter name, for a target without a baseline (a new API): the sweep still
# calls it with hostile values in every position, the other arguments guessed.
BY_NAME: dict[str, str] = {
    "ids": "[1, 2]",
    "x": "np.ones((2, 3, 8), np.float32)",
    "grad": "np.ones((2, 3, 8), np.float32)",
    "grad_output": F4,
    "weight": "np.ones((10, 4), np.float32)",
    "path": "H.path('t.bin')",
    "fname": "H.path('t.bin')",
    "key": "'a'",
    "word": "'a'",
    "words": "['a', 'b']",
    "dim": "8",
    "num_embeddings": "10",
    "embedding_dim": "4",
}

# Targets whose calls render or train (tens of milliseconds each): the fixed sweep gives them
# every hostile value only in the long run (CANDLE_EMBED_HOSTILE_LONG=1).
SLOW_TARGETS = {"plot_embeddings"}


@dataclass(frozen=True)
class Target:
    """A callable of the public API: ``name`` as in the baselines; ``owner`` the class name
    whose fresh instance it is bound to (None for module functions, constructors,
    classmethods); ``attr`` the attribute to call (or to set, for ``setter``)."""

    name: str
    owner: str | None
    attr: str
    params: tuple[str, ...]
    positional_only: tuple[str, ...] = ()
    setter: bool = False


PROTOCOL = ("__call__", "__getitem__", "__contains__", "__setitem__")


def _params(fn: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    names, pos_only = [], []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        names.append(p.name)
        if p.kind is p.POSITIONAL_ONLY:
            pos_only.append(p.name)
    return tuple(names), tuple(pos_only)


def _public_classes() -> Iterator[tuple[str, type]]:
    import candle_embed as ce
    from candle_embed import optim

    for name in ce.__all__:
        obj = getattr(ce, name)
        if isinstance(obj, type) and not issubclass(obj, BaseException):
            yield name, obj
    for name in optim.__all__:
        yield f"optim.{name}", getattr(optim, name)


def targets() -> list[Target]:
    """Every target of the public API (see the module docs)."""
    import candle_embed as ce

    out: list[Target] = []
    for name in ce.__all__:
        obj = getattr(ce, name)
        if callable(obj) and not isinstance(obj, type):
            p = _params(obj)
            if p is not None:
                out.append(Target(name, None, name, *p))
    for cname, cls in _public_classes():
        p = _params(cls)
        if p is not None and cname in FACTORIES:
            out.append(Target(cname, None, "", *p))
        instance = make_instance(cname) if cname in FACTORIES else None
        for attr in sorted(dir(cls)):
            if attr.startswith("_") and attr not in PROTOCOL:
                continue
            raw = inspect.getattr_static(cls, attr, None)
            if raw is None or getattr(object, attr, None) is raw:
                continue
            full = f"{cname}.{attr}"
            if isinstance(raw, (classmethod, staticmethod)) or type(raw).__name__ in (
                "classmethod_descriptor",
                "builtin_function_or_method",
            ):
                p = _params(getattr(cls, attr))
                if p is not None:
                    out.append(Target(full, cname + "!class", attr, *p))
            elif inspect.isdatadescriptor(raw):
                if instance is not None and _settable(instance, attr):
                    out.append(Target(full + "=", cname, attr, ("value",), setter=True))
            elif instance is not None and callable(getattr(instance, attr, None)):
                p = _params(getattr(instance, attr))
                if p is not None:
                    out.append(Target(full, cname, attr, *p))
    return out


def _settable(instance: Any, attr: str) -> bool:
    try:
        setattr(instance, attr, getattr(instance, attr))
    except AttributeError:
        return False
    except Exception:  # noqa: BLE001  (settable, just not with its own value)
        return True
    return True


def make_instance(cname: str) -> Any:
    return eval(FACTORIES[cname], namespace())  # noqa: S307  (our own catalog)


def baseline(t: Target) -> dict[str, str]:
    """The valid call of ``t``: its baseline, or for an instance method of a subclass its
    base class's, else guesses by parameter name (parameters with defaults are left out)."""
    known = BASELINES.get(t.name)
    if known is None and t.owner:
        known = BASELINES.get(f"{t.owner.removesuffix('!class')}.{t.attr}")
    if known is None and t.owner and t.owner.startswith("optim."):
        known = BASELINES.get(f"optim.SparseOptimizer.{t.attr}")
    if known is None and t.owner:  # a method inherited from a public base class
        for base in _class(t.owner.removesuffix("!class")).__mro__[1:]:
            known = BASELINES.get(f"{base.__name__}.{t.attr}")
            if known is not None:
                break
    if known is not None:
        return dict(known)
    return {p: BY_NAME[p] for p in t.params if p in BY_NAME}


# --------------------------------------------------------------------------- the child


class H:
    """Helpers the expressions use (constructed values, files of every kind)."""

    tmp = ""
    SENTENCES = [["a", "b", "c", "d"], ["b", "c", "a"], ["d", "a", "b"]] * 5
    _deep: dict[int, Any] = {}

    @staticmethod
    def deep(n: int) -> Any:
        if n not in H._deep:
            x: Any = [1]
            for _ in range(n):
                x = [x]
            H._deep[n] = x
        return H._deep[n]

    @staticmethod
    def selfref() -> list[Any]:
        a: list[Any] = [1]
        a.append(a)
        return a

    @staticmethod
    def selfref_dict() -> dict[str, Any]:
        d: dict[str, Any] = {"rope_type": "linear", "factor": 2.0}
        d["factor"] = d
        return d

    @staticmethod
    def readonly(a: Any) -> Any:
        a.flags.writeable = False
        return a

    @staticmethod
    def vectors(n: int, d: int) -> Any:
        import numpy as np

        return np.arange(n * d, dtype=np.float32).reshape(n, d) % 7 + 1

    @staticmethod
    def path(name: str) -> str:
        return os.path.join(H.tmp, name)

    @staticmethod
    def fifo() -> str:
        p = H.path("fifo")
        if not os.path.exists(p):
            os.mkfifo(p)
        return p

    @staticmethod
    def unix_socket() -> str:
        p = H.path("sock")
        if not os.path.exists(p):
            s = socket.socket(socket.AF_UNIX)
            s.bind(p)
            H._keep = s  # type: ignore[attr-defined]
        return p

    @staticmethod
    def devnode() -> str:
        """A character device (the null device's numbers) in our temporary directory, so a
        save that wrongly replaced it would not touch the machine's /dev/null; a FIFO where
        device nodes cannot be made (not root)."""
        p = H.path("devnull")
        if not os.path.exists(p):
            try:
                os.mknod(p, 0o666 | 0o020000, os.makedev(1, 3))
            except OSError:
                return H.fifo()
        return p

    @staticmethod
    def longname() -> str:
        return H.path("L" * 240 + ".bin")

    @staticmethod
    def tmpdir() -> str:
        p = H.path("adir")
        os.makedirs(p, exist_ok=True)
        return p

    @staticmethod
    def saved(name: str, save: Callable[[str], None]) -> str:
        p = H.path(name)
        if not os.path.exists(p):
            save(p)
        return p

    @staticmethod
    def kv() -> Any:
        import candle_embed as ce

        return ce.KeyedVectors(["a", "b", "c", "d"], H.vectors(4, 4))

    @staticmethod
    def w2v_file() -> str:
        return H.saved("kv.txt", lambda p: H.kv().save_word2vec_format(p))

    @staticmethod
    def kv_file() -> str:
        return H.saved("kv.safetensors", lambda p: H.kv().save(p))

    @staticmethod
    def table_file() -> str:
        import candle_embed as ce

        return H.saved("t.safetensors", lambda p: ce.Embedding(10, 4, seed=0).save(p))

    @staticmethod
    def packed() -> Any:
        """FBGEMM fused 8-bit rows of a (10, 4) table, as ``from_packed`` takes them."""
        import candle_embed as ce

        return ce.Embedding(10, 4, seed=0).quantize(8).packed

    @staticmethod
    def quantized_file() -> str:
        import candle_embed as ce

        q = ce.Embedding(10, 4, seed=0).quantize(8)
        return H.saved("q.safetensors", lambda p: q.save(p))

    @staticmethod
    def pairs_file() -> str:
        return H.saved("pairs.txt", lambda p: Path(p).write_text("a\tb\t1.0\nc\td\t2.0\n"))

    @staticmethod
    def analogies_file() -> str:
        return H.saved("an.txt", lambda p: Path(p).write_text(": s\na b c d\n"))

    @staticmethod
    def fasttext() -> Any:
        import candle_embed as ce

        return ce.FastText(H.SENTENCES, vector_size=8, min_count=1, epochs=1, workers=1, bucket=50)

    @staticmethod
    def fasttext_file() -> str:
        import candle_embed as ce

        return H.saved("ft.bin", lambda p: ce.save_facebook_model(H.fasttext(), p))

    @staticmethod
    def transformer() -> Any:
        import candle_embed as ce

        t = ce.TransformerEmbeddings(10, 8, seed=0)
        t([[1, 2, 3]])
        return t

    @staticmethod
    def grad() -> Any:
        import candle_embed as ce
        import numpy as np

        return ce.SparseGrad.from_rows([1], np.ones((1, 4), np.float32), 10)

    class UserError(Exception):
        """What the hostile objects' own methods raise: a user's exception, which a call may
        let through unchanged (Python's own conversions do)."""

    class BadIndex:
        def __index__(self) -> int:
            raise H.UserError("__index__")

        def __int__(self) -> int:
            raise H.UserError("__int__")

    class BadFloat:
        def __float__(self) -> float:
            raise H.UserError("__float__")

    class BadStr(str):
        def __str__(self) -> str:
            raise H.UserError("__str__")

        def __fspath__(self) -> str:
            raise H.UserError("__fspath__")

    class BadArray:
        def __array__(self, *a: Any, **k: Any) -> Any:
            raise H.UserError("__array__")

    class BadIter:
        def __iter__(self) -> Any:
            raise H.UserError("__iter__")

        def __len__(self) -> int:
            return 3

    class Exploding:
        """Everything a conversion might try raises."""

        def __getattr__(self, name: str) -> Any:
            raise H.UserError(name)


def namespace(obj: Any = None) -> dict[str, Any]:
    import candle_embed as ce
    import numpy as np
    from candle_embed import optim

    return {"np": np, "ce": ce, "optim": optim, "H": H, "Path": Path, "obj": obj}


class SweepTimeout(BaseException):
    """Raised in the child by the per-case alarm."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise SweepTimeout


def run_case(t: Target, param: str, expr: str) -> dict[str, Any]:
    """Call ``t`` with its baseline and ``param = eval(expr)``; how it ended."""
    import candle_embed as ce

    owner = t.owner.removesuffix("!class") if t.owner else None
    obj = make_instance(owner) if owner and t.owner == owner else None
    ns = namespace(obj)
    try:
        kwargs = {k: eval(v, ns) for k, v in baseline(t).items()}  # noqa: S307
        value = eval(expr, ns)  # noqa: S307
    except Exception as e:  # noqa: BLE001  (a value this platform cannot build)
        return {"end": "skipped", "why": repr(e)}
    if param:
        kwargs[param] = value
    if t.setter:
        fn: Callable[..., Any] = lambda: setattr(obj, t.attr, value)  # noqa: E731
    else:
        if t.owner is None:
            base = getattr(ce, t.name, None)
            if base is None:
                from candle_embed import optim

                base = getattr(optim, t.name.removeprefix("optim."))
        else:
            holder = obj if obj is not None else _class(owner or "")
            base = getattr(holder, t.attr)
        pos = [kwargs.pop(p) for p in t.positional_only if p in kwargs]
        fn = lambda: base(*pos, **kwargs)  # noqa: E731
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        fn()
    except SweepTimeout:
        return {"end": "timeout"}
    except BaseException as e:  # noqa: BLE001  (judged by the parent)
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {
            "end": "raised",
            "type": f"{type(e).__module__}.{type(e).__qualname__}",
            "ours": isinstance(e, (ce.CandleEmbedError, H.UserError)),
            "internal": isinstance(e, ce.CandleEmbedRuntimeError)
            or type(e).__name__ == "PanicException",
            "msg": _short(e),
        }
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {"end": "returned"}


def _short(e: BaseException) -> str:
    try:
        return str(e)[:300]
    except BaseException:  # noqa: BLE001
        return "<unprintable>"


def _class(cname: str) -> Any:
    return dict(_public_classes())[cname]


CASE_SECONDS = 20.0


def child_main() -> None:
    import faulthandler

    faulthandler.enable()
    H.tmp = tempfile.mkdtemp(prefix="hostile-")
    os.chdir(H.tmp)
    signal.signal(signal.SIGALRM, _on_alarm)
    by_name = {t.name: t for t in targets()}
    cases = json.load(sys.stdin)
    for i, (name, param, expr) in enumerate(cases):
        print(f"S {i}", flush=True)
        try:
            res = run_case(by_name[name], param, expr)
        except BaseException as e:  # noqa: BLE001  (a harness failure, reported as such)
            res = {"end": "harness", "msg": traceback.format_exc()[-600:] + repr(e)}
        print("R " + json.dumps(res), flush=True)
    print("DONE", flush=True)


# --------------------------------------------------------------------------- the parent


@dataclass
class Violation:
    name: str
    param: str
    expr: str
    what: str

    def __str__(self) -> str:
        return f"{self.name}({self.param}={self.expr}): {self.what}"


def judge(name: str, param: str, expr: str, res: dict[str, Any]) -> Violation | None:
    end = res["end"]
    if end in ("returned", "skipped"):
        return None
    if end == "raised":
        if res["internal"]:
            return Violation(name, param, expr, f"internal error {res['type']}: {res['msg']}")
        if not res["ours"]:
            return Violation(name, param, expr, f"untyped {res['type']}: {res['msg']}")
        return None
    return Violation(name, param, expr, f"{end}: {res.get('msg', '')}")


def run_batch(
    cases: list[tuple[str, str, str]], hang_seconds: float = 60.0
) -> tuple[list[Violation], int]:
    """Run ``cases`` in child processes; the violations, and the number of cases run. A
    child that dies or hangs is a violation of the case it was running; the rest of the batch
    goes on in a new child."""
    violations: list[Violation] = []
    start, ran = 0, 0
    env = dict(os.environ)
    import candle_embed as ce

    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(ce.__file__).resolve().parent.parent), env.get("PYTHONPATH", "")]
    )
    while start < len(cases):
        rest = cases[start:]
        proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=_limit_memory,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(rest))
        proc.stdin.close()
        current, done = -1, False
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + hang_seconds
        while True:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                proc.kill()
                break
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("S "):
                current = int(line[2:])
                deadline = time.monotonic() + hang_seconds
            elif line.startswith("R "):
                name, param, expr = rest[current]
                v = judge(name, param, expr, json.loads(line[2:]))
                if v is not None:
                    violations.append(v)
                ran += 1
            elif line.startswith("DONE"):
                done = True
        proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
        sel.close()
        if done:
            break
        if current < 0:
            raise RuntimeError(f"the sweep child failed to start:\n{err[-2000:]}")
        name, param, expr = rest[current]
        how = f"signal {-proc.returncode}" if (proc.returncode or 0) < 0 else "hang/exit"
        violations.append(Violation(name, param, expr, f"process died ({how}): {err[-800:]}"))
        ran += 1
        start += current + 1
    return violations, ran


def _limit_memory() -> None:
    """No child may take the machine's memory: an allocation beyond 16 GiB of address space
    fails (a MemoryError, or an abort the sweep reports) instead of swapping."""
    import resource

    limit = 16 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def reproducer(v: Violation) -> str:
    return (
        f"{v}\n  reproduce: target {v.name}, baseline {BASELINES.get(v.name, '(guessed)')}, "
        f"with {v.param} = {v.expr}"
    )


if __name__ == "__main__":
    child_main()

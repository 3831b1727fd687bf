"""What a user reads at the prompt: every public class, function, method and property of
``candle_embed`` (the compiled classes and the Python ones) has a real docstring, and
``inspect.signature`` works wherever CPython can give one, ``__call__`` included (a pyo3
``__call__`` is otherwise a slot wrapper saying "Call self as a function.")."""

from __future__ import annotations

import ctypes
import inspect
import pydoc
from collections.abc import Iterator
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed import _native

# Texts CPython (or a placeholder) puts where nobody wrote a docstring.
PLACEHOLDERS = ("Call self as a function.", "see the stub", "Create and return a new object.")


def public_objects() -> Iterator[tuple[str, Any, bool]]:
    """`(qualified name, object, whether a signature is expected)` for every public name of
    ``candle_embed`` and ``candle_embed.optim``, their public methods and properties, and
    ``__call__`` where a class defines it."""
    modules = [(ce, list(ce.__all__)), (ce.optim, list(ce.optim.__all__))]
    for module, names in modules:
        for name in names:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj):  # optim, __version__
                continue
            qual = f"{module.__name__}.{name}"
            if not inspect.isclass(obj):
                yield qual, obj, True
                continue
            if issubclass(obj, BaseException):
                yield qual, obj, False
                continue
            # A native class without a constructor (SparseGrad) has no signature to give.
            native = obj in vars(_native).values()
            yield qual, obj, not native or obj.__text_signature__ is not None
            for attr, raw in vars(obj).items():
                if attr.startswith("_") and attr != "__call__":
                    continue
                member = getattr(obj, attr)
                is_property = isinstance(raw, property) or inspect.isgetsetdescriptor(raw)
                yield f"{qual}.{attr}", (raw if is_property else member), not is_property


OBJECTS = list(public_objects())


def test_the_walk_sees_every_native_class_and_call() -> None:
    names = {q for q, _, _ in OBJECTS}
    for cls in ["Embedding", "EmbeddingBag", "SinusoidalPositionalEncoding", "RotaryEmbedding"]:
        assert f"candle_embed.{cls}" in names
    for cls in [
        "Embedding",
        "EmbeddingBag",
        "SinusoidalPositionalEncoding",
        "LearnedPositionalEmbedding",
        "TransformerEmbeddings",
        "RelativePositionBias",
    ]:
        assert f"candle_embed.{cls}.__call__" in names, cls
    assert "candle_embed.Embedding.weight" in names
    assert "candle_embed.optim.SGD" in names
    assert len(OBJECTS) > 120
    with pytest.raises(TypeError):  # made by backward / from_rows only: no signature to show
        ce.SparseGrad()  # type: ignore[call-arg]


@pytest.mark.parametrize(("qual", "obj", "has_signature"), OBJECTS, ids=[q for q, _, _ in OBJECTS])
def test_docstring_and_signature(qual: str, obj: Any, has_signature: bool) -> None:
    doc = inspect.getdoc(obj)
    assert doc is not None, f"{qual} has no docstring"
    assert len(doc.strip()) >= 20, f"{qual}: docstring too short: {doc!r}"
    assert not any(p in doc for p in PLACEHOLDERS), f"{qual}: placeholder docstring {doc!r}"
    if has_signature:
        inspect.signature(obj)  # raises ValueError / TypeError when there is none


def test_call_shows_its_real_signature_and_doc() -> None:
    sig = inspect.signature(ce.Embedding.__call__)
    assert list(sig.parameters) == ["self", "ids", "out", "dropout", "seed", "normalize"]
    assert sig.parameters["dropout"].default == 0.0
    assert sig.parameters["out"].kind is inspect.Parameter.KEYWORD_ONLY
    bag_sig = inspect.signature(ce.EmbeddingBag.__call__)
    assert list(bag_sig.parameters)[:4] == ["self", "ids", "offsets", "per_sample_weights"]
    text = pydoc.render_doc(ce.Embedding.__call__, renderer=pydoc.plaintext)
    assert "ids.shape + (embedding_dim,)" in text
    assert "Call self as a function" not in text
    page = pydoc.render_doc(ce.Embedding, renderer=pydoc.plaintext)
    assert "__call__(self, /, ids, *, out=None" in page
    assert "see the stub" not in page


def test_call_through_the_documented_entry_is_the_same_call() -> None:
    emb = ce.Embedding(10, 3, seed=0)
    ids = np.array([[1, 2], [9, 0]])
    np.testing.assert_array_equal(emb.__call__(ids), emb(ids))
    np.testing.assert_array_equal(
        ce.Embedding.__call__(emb, ids, normalize=True), emb(ids, normalize=True)
    )
    bag = ce.EmbeddingBag(10, 3, mode="sum", seed=0)
    np.testing.assert_array_equal(bag.__call__(ids), bag(ids))
    pe = ce.SinusoidalPositionalEncoding(4, max_len=8)
    x = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(pe.__call__(x, offset=2), pe(x, offset=2))
    rpb = ce.RelativePositionBias(2, seed=0)
    np.testing.assert_array_equal(rpb.__call__(2, 3), rpb(2, 3))
    # The descriptor checks its receiver like any method: no call on a foreign object.
    with pytest.raises(TypeError):
        ce.Embedding.__call__(bag, ids)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ce.Embedding.__call__(object(), ids)  # type: ignore[arg-type]


def test_calls_keep_the_native_slot() -> None:
    """The documented ``__call__`` must not reroute ``obj(...)`` through a Python-level lookup
    (CPython's generic ``slot_tp_call``, which a class statement with ``__call__`` gets)."""
    get_slot = ctypes.pythonapi.PyType_GetSlot
    get_slot.restype = ctypes.c_void_p
    get_slot.argtypes = [ctypes.py_object, ctypes.c_int]
    py_tp_call = 50  # Py_tp_call in typeslots.h

    class PythonLevel:
        def __call__(self) -> None:
            pass

    generic = get_slot(PythonLevel, py_tp_call)
    for cls in [ce.Embedding, ce.EmbeddingBag, ce.TransformerEmbeddings]:
        slot = get_slot(cls, py_tp_call)
        assert slot and slot != generic, cls


def test_test_hooks_are_private() -> None:
    for cls in [ce.Embedding, ce.EmbeddingBag, ce.RotaryEmbedding, ce.SinusoidalPositionalEncoding]:
        hooks = [n for n in dir(cls) if "portable" in n or n in ("_autograd", "_transform_grad")]
        assert hooks == [], (cls, hooks)
    assert not [n for n in dir(ce) if "portable" in n]
    assert not [n for n in dir(_native) if "portable" in n]
    from candle_embed._native import _testing

    assert callable(_testing.lookup_portable)
    assert "_testing" not in ce.__all__

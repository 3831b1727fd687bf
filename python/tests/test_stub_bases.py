"""The stub's shared bases (``_Table``, ``_Quantized``, ``_OptimizerConfig`` in
``_native.pyi``) exist only in the stub: each runtime class defines those members itself.
stubtest checks only the members a stub class declares in its own body, so the inherited ones
are checked here: every member a stub-only base declares must exist on every runtime class the
stub derives from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from candle_embed import _native

STUB = Path(__file__).resolve().parents[1] / "candle_embed" / "_native.pyi"


def inherited_members() -> list[tuple[str, str, str]]:
    """``(runtime class, stub-only base, member)`` for every member each base declares."""
    classes = {n.name: n for n in ast.parse(STUB.read_text()).body if isinstance(n, ast.ClassDef)}
    out = []
    for name, node in classes.items():
        if not hasattr(_native, name):
            continue
        for base in node.bases:
            if isinstance(base, ast.Name) and not hasattr(_native, base.id):
                body = classes[base.id].body
                members = {f.name for f in body if isinstance(f, ast.FunctionDef)}
                out += [(name, base.id, m) for m in sorted(members)]
    return out


CASES = inherited_members()


def test_every_stub_only_base_is_checked() -> None:
    bases = {base for _, base, _ in CASES}
    assert bases == {"_Table", "_Quantized", "_OptimizerConfig"}
    assert len({cls for cls, _, _ in CASES}) == 9


@pytest.mark.parametrize(("cls", "base", "member"), CASES)
def test_runtime_class_has_member_of_stub_base(cls: str, base: str, member: str) -> None:
    assert hasattr(getattr(_native, cls), member), f"{cls} lacks {base}.{member}"

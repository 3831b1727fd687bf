"""The built-in demo corpus: English text that ships with Python itself, so nothing is
downloaded. It is the docstrings of the standard library's own source files (every
triple-quoted string in ``Lib/**/*.py``, tests and IDLE excluded) plus the language reference
topics of ``pydoc_data.topics`` (the text ``help()`` shows): about 350 000 words of technical
English about programming (lists, files, threads, errors, ...).
"""

from __future__ import annotations

import os
import re
import sysconfig

_SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "site-packages",
    "dist-packages",
    "lib2to3",
    "__pycache__",
    "turtledemo",
    "ensurepip",
}
_STRINGS = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)
_SENTENCE = re.compile(r"[.!?:;]\s+|\n\s*\n")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _texts() -> list[str]:
    texts: list[str] = []
    try:
        from pydoc_data import topics

        texts.extend(topics.topics[k] for k in sorted(topics.topics))
    except ImportError:  # pragma: no cover - stripped-down Pythons
        pass
    root = sysconfig.get_paths()["stdlib"]
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                    src = f.read()
            except OSError:
                continue
            texts.extend(m.group(1) or m.group(2) or "" for m in _STRINGS.finditer(src))
    return texts


def stdlib_sentences(min_len: int = 3) -> list[list[str]]:
    """The demo corpus as lower-cased token lists, one per sentence."""
    out: list[list[str]] = []
    for text in _texts():
        for sent in _SENTENCE.split(text.lower()):
            toks = _WORD.findall(sent)
            if len(toks) >= min_len:
                out.append(toks)
    return out

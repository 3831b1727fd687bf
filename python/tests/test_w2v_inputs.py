"""Word2Vec's corpus inputs and bad values (issue #13 defect 3, issue #19 classes 4 and 6).

- compressed corpora (gzip, bzip2, xz) read transparently, for ``corpus_file=`` and for
  ``sentences=LineSentence(path)`` / ``PathLineSentences(dir)``: the trained vectors (one worker,
  a seed) are bit-identical to those of the plain text file;
- binary input (a PNG, random bytes, a damaged archive) refused with a ``ValueError`` that is a
  ``CandleEmbedError``, nothing trained;
- ``epochs=2**62`` and other huge user-sized quantities: a ``CandleEmbedError`` before any work,
  never a wrapped count (``jobs x epochs`` used to wrap to 0 and train nothing).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib
from pathlib import Path
from typing import Any, Callable

import candle_embed as ce
import numpy as np
import pytest

_LINES = [
    "the quick brown fox jumps over the lazy dog",
    "a lazy dog sleeps while the quick fox runs",
    "brown dogs and brown foxes are quick animals",
] * 40
_OPENERS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_HP: dict[str, Any] = dict(vector_size=8, min_count=1, seed=7, workers=1, epochs=2)


def _plain(tmp_path: Path) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text("\n".join(_LINES) + "\n", encoding="utf-8")
    return p


def _compressed(tmp_path: Path, ext: str, name: str = "corpus") -> Path:
    p = tmp_path / f"{name}.txt{ext}"
    with _OPENERS[ext](p, "wb") as f:
        f.write(("\n".join(_LINES) + "\n").encode("utf-8"))
    return p


@pytest.mark.parametrize("ext", sorted(_OPENERS))
def test_compressed_corpus_file_is_read(tmp_path: Path, ext: str) -> None:
    """gensim refuses a compressed ``corpus_file`` (``test_file_should_not_be_compressed``);
    issue #13 asks for it to be read: same vectors as the plain file."""
    want = ce.Word2Vec(corpus_file=_plain(tmp_path), **_HP)
    got = ce.Word2Vec(corpus_file=_compressed(tmp_path, ext), **_HP)
    assert got.corpus_total_words == want.corpus_total_words == sum(len(s.split()) for s in _LINES)
    assert got.wv.index_to_key == want.wv.index_to_key
    np.testing.assert_array_equal(got.wv.vectors, want.wv.vectors)


@pytest.mark.parametrize("ext", sorted(_OPENERS))
def test_compressed_line_sentence_path(tmp_path: Path, ext: str) -> None:
    """gensim's LineSentence opens ``.gz`` / ``.bz2`` (smart_open); we recognise the content."""
    path = _compressed(tmp_path, ext)
    assert list(ce.LineSentence(path)) == [s.split() for s in _LINES]
    want = ce.Word2Vec(ce.LineSentence(_plain(tmp_path)), **_HP)
    got = ce.Word2Vec(ce.LineSentence(path), **_HP)
    np.testing.assert_array_equal(got.wv.vectors, want.wv.vectors)


def test_path_line_sentences_mixes_compressions(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    for i, ext in enumerate(sorted(_OPENERS)):
        _compressed(d, ext, name=f"{i}")
    (d / "3.txt").write_text("\n".join(_LINES) + "\n", encoding="utf-8")
    assert list(ce.PathLineSentences(d)) == [s.split() for s in _LINES] * 4


def _png() -> bytes:
    """A valid 1x1 PNG (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


_BINARIES = {
    "png": _png(),
    "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "nul": b"words then a nul\x00 byte\n",
    "damaged.gz": gzip.compress(b"some words\n" * 100)[:-20] + b"\x00" * 20,
    "truncated.xz": lzma.compress(b"some words\n" * 1000)[:40],
}


@pytest.mark.parametrize("kind", sorted(_BINARIES))
def test_binary_corpus_is_refused(tmp_path: Path, kind: str) -> None:
    p = tmp_path / f"input.{kind}"
    p.write_bytes(_BINARIES[kind])
    with pytest.raises(ValueError) as e:
        ce.Word2Vec(corpus_file=p, min_count=1)
    assert isinstance(e.value, ce.CandleEmbedError)
    with pytest.raises(ce.CandleEmbedError):
        ce.Word2Vec(ce.LineSentence(p), min_count=1)
    with pytest.raises(ce.CandleEmbedError):
        list(ce.LineSentence(p))


def test_binary_corpus_leaves_model_unchanged(tmp_path: Path) -> None:
    m = ce.Word2Vec(corpus_file=_plain(tmp_path), **_HP)
    before = m.wv.vectors.copy()
    p = tmp_path / "x.png"
    p.write_bytes(_png())
    with pytest.raises(ce.CandleEmbedError):
        m.build_vocab(corpus_file=p, update=True)
    with pytest.raises(ce.CandleEmbedError):
        m.train(corpus_file=p, total_words=m.corpus_total_words, epochs=1)
    np.testing.assert_array_equal(m.wv.vectors, before)
    assert len(m.wv) == len(before)


# --- issue #19 class 4: sizes that overflow ----------------------------------------------
@pytest.mark.parametrize("epochs", [2**62, 2**63 - 1])
def test_huge_epochs_is_refused_not_wrapped(tmp_path: Path, epochs: int) -> None:
    with pytest.raises(ValueError, match="epochs") as e:
        ce.Word2Vec([["a", "b", "c"]] * 10, min_count=1, epochs=epochs)
    assert isinstance(e.value, ce.CandleEmbedError)
    m = ce.Word2Vec([["a", "b", "c"]] * 10, min_count=1, vector_size=4, seed=1, workers=1)
    before = m.wv.vectors.copy()
    with pytest.raises(ce.CandleEmbedError, match="epochs"):
        m.train([["a", "b", "c"]] * 10, total_examples=10, epochs=epochs)
    np.testing.assert_array_equal(m.wv.vectors, before)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(epochs=2**64),
        dict(epochs=-1),
        dict(epochs=1.5),
        dict(workers=0),
        dict(workers=2**64),
        dict(vector_size=2**62),
        dict(window=2**64),
        dict(negative=-3),
        dict(min_count=-1),
        dict(max_vocab_size=0),
        dict(max_final_vocab=-1),
        dict(batch_words=0),
        dict(alpha=float("nan")),
        dict(alpha=10**400),
        dict(sample=-0.1),
        dict(ns_exponent=float("inf")),
        dict(hs=2),
        dict(cbow_mean="yes"),
        dict(seed=-1),
    ],
)
def test_bad_values_are_candle_embed_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)) as e:
        ce.Word2Vec([["a", "b", "c"]] * 5, **{"vector_size": 4, "min_count": 1, **kwargs})
    assert isinstance(e.value, ce.CandleEmbedError), repr(e.value)


def test_bad_line_sentence_values_are_candle_embed_errors(tmp_path: Path) -> None:
    for kwargs in (dict(max_sentence_length=0), dict(limit=0), dict(max_sentence_length=2.0)):
        with pytest.raises((ValueError, TypeError)) as e:
            ce.LineSentence(_plain(tmp_path), **kwargs)
        assert isinstance(e.value, ce.CandleEmbedError), repr(e.value)


def test_huge_vector_size_with_vocab_is_a_memory_error_not_a_crash() -> None:
    """vocab x vector_size beyond what can be allocated: a typed error, never an abort."""
    with pytest.raises(ce.CandleEmbedError):
        ce.Word2Vec([[str(i) for i in range(50)]], min_count=1, vector_size=2**40)


def test_train_call_errors_are_candle_embed_errors(tmp_path: Path) -> None:
    m = ce.Word2Vec([["a", "b", "c"]] * 10, min_count=1, vector_size=4)
    for call in (
        lambda: m.train([["a"]]),  # no epochs / total
        lambda: m.train([["a"]], total_examples=1, epochs=0),
        lambda: m.train(corpus_file=tmp_path / "missing.txt", total_words=3, epochs=1),
        lambda: m.train(corpus_file=os.fspath(tmp_path), total_words=3, epochs=1),
        lambda: m.predict_output_word(["a"], topn=-1),
        lambda: ce.Word2Vec.load(tmp_path / "missing.safetensors"),
        lambda: m.load(tmp_path / "x"),
    ):
        with pytest.raises(Exception) as e:
            call()
        assert isinstance(e.value, ce.CandleEmbedError), repr(e.value)

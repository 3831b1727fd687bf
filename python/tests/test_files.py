"""Files (issue 19, class 8) from Python: saves keep modes, take long names, refuse special
files; loads never block on a FIFO; a save killed half-way leaves no temporary file."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import candle_embed as ce
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types and modes")


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


@pytest.mark.parametrize("bits", [0o600, 0o640, 0o444])
def test_save_over_a_file_keeps_its_mode(tmp_path: Path, bits: int) -> None:
    p = tmp_path / "t.safetensors"
    p.write_bytes(b"old")
    p.chmod(bits)
    ce.Embedding(6, 3, seed=0).save(p)
    assert stat.S_IMODE(p.stat().st_mode) == bits
    assert ce.Embedding.load(p).num_embeddings == 6
    fresh = tmp_path / "new.safetensors"
    ce.EmbeddingBag(6, 3, seed=0).save(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~_umask()
    assert sorted(os.listdir(tmp_path)) == ["new.safetensors", "t.safetensors"]


def test_a_240_character_name_saves(tmp_path: Path) -> None:
    p = tmp_path / ("L" * 236 + ".bin")
    t = ce.Embedding(6, 3, seed=0)
    t.save(p)
    t.save(p)
    np.testing.assert_array_equal(ce.Embedding.load(p).weight, t.weight)
    assert os.listdir(tmp_path) == [p.name]


def test_special_files_refused_on_save(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/null")):
        with pytest.raises(ce.CandleEmbedValueError, match=str(target)):
            ce.Embedding(6, 3, seed=0).save(target)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def _run(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_loading_a_fifo_without_writer_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = _run(
        f"""
        import candle_embed as ce
        for load in (ce.Embedding.load, ce.EmbeddingBag.load):
            for p in ({str(fifo)!r}, "/dev/zero"):
                try:
                    load(p)
                except ce.CandleEmbedValueError as e:
                    assert p in str(e), e
                else:
                    raise SystemExit("loaded " + p)
        print("ok")
        """,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_every_loader_refuses_special_files(tmp_path: Path) -> None:
    """The loaders of word vectors, vocabularies, evaluation files, corpora and fastText models
    (opened in Python by ``_files.open_regular`` or in Rust by ``io::open``) refuse a FIFO with
    no writer and a device with an error naming the path; in a child process, so that a
    regression hangs only it."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = _run(
        f"""
        import numpy as np
        import candle_embed as ce
        kv = ce.KeyedVectors(["a", "b"], np.ones((2, 3), np.float32))
        calls = {{
            "load_word2vec_format": ce.KeyedVectors.load_word2vec_format,
            "binary": lambda p: ce.KeyedVectors.load_word2vec_format(p, binary=True),
            "load": ce.KeyedVectors.load,
            "evaluate_word_pairs": kv.evaluate_word_pairs,
            "evaluate_word_analogies": kv.evaluate_word_analogies,
            "LineSentence": lambda p: list(ce.LineSentence(p)),
            "corpus_file": lambda p: ce.Word2Vec(corpus_file=p, min_count=1),
            "load_facebook_vectors": ce.load_facebook_vectors,
            "load_facebook_model": ce.load_facebook_model,
        }}
        # the fastText reader answers OSError (test_fasttext_reliability), the others ValueError
        refused = (ce.CandleEmbedValueError, ce.CandleEmbedOSError)
        for name, call in calls.items():
            for p in ({str(fifo)!r}, "/dev/zero"):
                try:
                    call(p)
                except refused as e:
                    assert p in str(e), (name, e)
                else:
                    raise SystemExit(name + " read " + p)
        print("ok")
        """,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr + r.stdout


def test_a_killed_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    """kill -9 a child in the middle of saving a large table: the directory then holds only
    what was there (O_TMPFILE: the partial file never had a name), and a later save works."""
    target = tmp_path / "big.safetensors"
    ce.Embedding(4, 2, seed=0).save(target)
    before = target.read_bytes()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import candle_embed as ce
                t = ce.Embedding(1_000_000, 64, seed=0)
                print("saving", flush=True)
                while True:
                    t.save({str(target)!r})
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "saving"
    time.sleep(0.5)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    names = os.listdir(tmp_path)
    assert names == ["big.safetensors"], names
    # the file is a whole table: the old one or a complete new one
    loaded = ce.Embedding.load(target)
    assert loaded.num_embeddings in (4, 1_000_000)
    if loaded.num_embeddings == 4:
        assert target.read_bytes() == before
    ce.Embedding(4, 2, seed=1).save(target)
    assert os.listdir(tmp_path) == ["big.safetensors"]


@pytest.mark.parametrize(
    "path",
    ["'\\ud800.bin'", "'a\\x00b'", "3", "None"],
)
def test_unusable_paths_are_typed(tmp_path: Path, path: str) -> None:
    bad = eval(path)  # noqa: S307  (our own literals)
    with pytest.raises((ce.CandleEmbedValueError, ce.CandleEmbedTypeError)):
        ce.Embedding(2, 2, seed=0).save(bad)
    with pytest.raises((ce.CandleEmbedValueError, ce.CandleEmbedTypeError)):
        ce.Embedding.load(bad)

"""The ``candle-embed`` command line for a new user (issue #13 item 4, #19 class 9): every
failure is one line on stderr and a non-zero status, never a traceback; ``demo`` runs with no
optional package installed (tqdm, matplotlib hidden) and writes what it says it writes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import candle_embed
import numpy as np
import pytest
from candle_embed.keyed_vectors import KeyedVectors


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
         ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([sys.executable, "-m", "candle_embed", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd)  # fmt: skip


def _one_line_error(r: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "error" in lines[0] and needle in lines[0], lines[0]
    assert "Traceback" not in r.stderr and "panicked" not in r.stderr


def test_version() -> None:
    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"candle-embed {candle_embed.__version__}"


def test_bad_flags_are_one_line(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n" * 10)
    out = str(tmp_path / "v.txt")
    _one_line_error(_cli("train", str(corpus), "--out", out, "--dim", "17179869184"), 2, "--dim")
    _one_line_error(_cli("train", str(corpus), "--out", out, "--window", "x"), 2, "--window")
    _one_line_error(_cli("train", str(corpus), "--out", out, "--negative", "0"), 2, "--hs")
    _one_line_error(_cli("train", str(corpus), "--out", out, "--cbow-mean", "1"), 2, "--cbow")
    _one_line_error(_cli("frobnicate"), 2, "frobnicate")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


def test_bad_inputs_are_one_line(tmp_path: Path) -> None:
    out = str(tmp_path / "v.txt")
    _one_line_error(_cli("train", str(tmp_path), "--out", out), 2, "directory")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _one_line_error(_cli("train", str(empty), "--out", out), 2, "empty")
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\x00\x01\x02abc\n")
    _one_line_error(_cli("train", str(binary), "--out", out), 2, "binary")
    latin = tmp_path / "l.txt"
    latin.write_bytes("caf\u00e9 au lait\n".encode("latin-1") * 5)
    _one_line_error(_cli("train", str(latin), "--out", out), 2, "UTF-8")
    good = tmp_path / "g.txt"
    good.write_text("a b c\n")
    _one_line_error(_cli("train", str(good), "--out", str(tmp_path)), 2, "directory")
    _one_line_error(_cli("train", str(good), "--out", str(tmp_path / "no" / "v.txt")), 2, "exist")
    _one_line_error(_cli("train", str(good), "--out", out, "--quiet"), 2, "min_count")


def test_train_writes_each_format(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(("the cat sat on the mat and the dog sat on the log\n") * 50)
    for ext in (".txt", ".bin", ".safetensors"):
        out = tmp_path / f"v{ext}"
        r = _cli("train", str(corpus), "--out", str(out), "--dim", "8", "--min-count", "1",
                 "--epochs", "1", "--threads", "1")  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "word2vec:" in r.stderr and "100%" in r.stderr  # the plain progress line
        kv = KeyedVectors.load(out)
        assert kv.vector_size == 8 and "cat" in kv


def _hide(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment where importing ``modules`` fails as when they are not installed."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    for m in modules:
        (shadow / f"{m}.py").write_text(f'raise ImportError("No module named {m!r}")\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), env.get("PYTHONPATH", "")])
    return env


def test_demo_runs_without_tqdm_or_matplotlib(tmp_path: Path) -> None:
    env = _hide(tmp_path, "tqdm", "matplotlib")
    r = _cli("demo", "--epochs", "1", "--dim", "16", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "nearest neighbours" in r.stdout and "skipped pca.png" in r.stdout
    vectors = tmp_path / "candle_embed_demo" / "vectors.txt"
    assert str(vectors) in r.stdout
    kv = KeyedVectors.load_word2vec_format(vectors)
    assert kv.vector_size == 16 and "file" in kv


def test_demo_png_is_0644(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    r = _cli("demo", "--epochs", "1", "--dim", "16", "--quiet", "--out-dir", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    png = tmp_path / "d" / "pca.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(png.stat().st_mode) == 0o666 & ~umask


def test_plot_labels_do_not_overlap(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from candle_embed.plot import overlaps, plot_embeddings

    rng = np.random.default_rng(0)
    crowded = rng.normal(scale=0.05, size=(30, 8))  # 30 points in a small cloud
    crowded[:, 0] += np.repeat(np.arange(3), 10)
    fig = plot_embeddings(crowded, words=[f"label{i}" for i in range(30)])
    assert overlaps(fig) == 0

"""Forged, truncated and bit-flipped fastText ``.bin`` files: a ``ValueError`` (or a model,
when a flip only changes a weight or a count), never a crash, a hang or a huge allocation.
The fuzz loops run in a subprocess, so a crash would fail the test instead of the run."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import candle_embed as ce
import numpy as np
import pytest

gensim_utils = pytest.importorskip("gensim.test.utils")
DATA = Path(gensim_utils.datapath(""))
MAGIC = struct.pack("<i", 793712314)


def run_isolated(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"crashed ({proc.returncode}): {proc.stderr[-3000:]}"
    return proc.stdout


FUZZ = """
import os, random, tempfile
import candle_embed as ce
src = open({path!r}, "rb").read()
rng = random.Random({seed})
path = os.path.join(tempfile.mkdtemp(), "f.bin")
outcomes = {{}}
def attempt(data):
    with open(path, "wb") as f:
        f.write(data)
    for load in (ce.load_facebook_vectors, ce.load_facebook_model):
        try:
            load(path)
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        except ce.CandleEmbedValueError:
            outcomes["ValueError"] = outcomes.get("ValueError", 0) + 1
{cases}
print(sorted(outcomes.items()))
"""


def test_every_truncation_is_a_value_error() -> None:
    src = DATA / "toy-model.bin"
    n = src.stat().st_size
    cases = f"""
for cut in range({n}):
    attempt(src[:cut])
assert outcomes == {{"ValueError": {2 * n}}}, outcomes
"""
    out = run_isolated(FUZZ.format(path=str(src), seed=0, cases=cases))
    assert "ValueError" in out


@pytest.mark.parametrize("name", ["toy-model.bin", "lee_fasttext.bin", "cp852_fasttext.bin"])
def test_byte_flips_and_random_bytes(name: str) -> None:
    # Flips concentrated on the header and dictionary (where sizes live), some anywhere, and
    # random words of the header overwritten with extreme values.
    cases = """
head = min(len(src), 2000)
for _ in range(1500):
    b = bytearray(src)
    pos = rng.randrange(head) if rng.random() < 0.8 else rng.randrange(len(b))
    b[pos] ^= 1 << rng.randrange(8)
    attempt(bytes(b))
for _ in range(300):
    b = bytearray(src)
    pos = rng.randrange(0, min(len(b), 120) - 8)
    value = rng.choice([2**31 - 1, 2**63 - 1, -1, 2**62, 0])
    b[pos:pos + 8] = value.to_bytes(8, "little", signed=True)
    attempt(bytes(b))
attempt(b"")
attempt(os.urandom(5000))
assert outcomes.get("ValueError", 0) > 0
"""
    run_isolated(FUZZ.format(path=str(DATA / name), seed=len(name), cases=cases))


def test_forged_sizes_do_not_allocate(tmp_path: Path) -> None:
    # A header announcing 2**31 - 1 words of a 2**31 - 1 dimensional model: refused from the
    # sizes alone (bounded by the file's length), fast and without a MemoryError.
    src = (DATA / "toy-model.bin").read_bytes()
    forged = bytearray(src)
    forged[8:12] = struct.pack("<i", 2**31 - 1)  # dim
    forged[8 + 12 * 4 + 8 : 8 + 12 * 4 + 16] = struct.pack("<ii", 2**31 - 1, 2**31 - 1)
    path = tmp_path / "forged.bin"
    path.write_bytes(bytes(forged))
    with pytest.raises(ce.CandleEmbedValueError, match="byte"):
        ce.load_facebook_model(path)
    # bucket so large that the input matrix cannot fit in the file
    forged = bytearray(src)
    forged[8 + 8 * 4 : 8 + 9 * 4] = struct.pack("<i", 2**31 - 1)
    path.write_bytes(bytes(forged))
    with pytest.raises(ce.CandleEmbedValueError, match="matrix"):
        ce.load_facebook_vectors(path)


def test_unsupported_and_odd_files(tmp_path: Path) -> None:
    with pytest.raises(ce.CandleEmbedOSError) as missing:
        ce.load_facebook_vectors(tmp_path / "missing.bin")
    assert isinstance(missing.value, FileNotFoundError)
    with pytest.raises(ce.CandleEmbedOSError, match="regular"):
        ce.load_facebook_vectors(tmp_path)
    with pytest.raises(ce.CandleEmbedValueError):
        ce.load_facebook_vectors(DATA / "euclidean_vectors.bin")  # a word2vec binary
    newer = bytearray((DATA / "toy-model.bin").read_bytes())
    newer[4:8] = struct.pack("<i", 13)
    (tmp_path / "v13.bin").write_bytes(bytes(newer))
    with pytest.raises(ce.CandleEmbedValueError, match="version 13"):
        ce.load_facebook_vectors(tmp_path / "v13.bin")
    # A lone surrogate is a path byte (surrogateescape) on POSIX: not found, not a crash.
    with pytest.raises(ce.CandleEmbedError):
        ce.load_facebook_vectors("\udc80.bin")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.bin"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            ce.load_facebook_vectors(fifo)
        except BaseException as e:  # noqa: BLE001 - recorded and checked below
            errors.append(e)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "loading a FIFO with no writer blocked"
    assert len(errors) == 1 and isinstance(errors[0], ce.CandleEmbedOSError), errors


def test_save_refuses_what_the_format_cannot_hold(tmp_path: Path) -> None:
    m = ce.load_facebook_model(DATA / "toy-model.bin")
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    words = list(m.wv.index_to_key)
    for bad in ["a\0b", "\udc80"]:
        m.wv.index_to_key[3] = bad
        with pytest.raises(ce.CandleEmbedValueError):
            ce.save_facebook_model(m, target)
        assert target.read_bytes() == b"old"
    m.wv.index_to_key[:] = words
    with pytest.raises(ce.CandleEmbedTypeError):
        ce.save_facebook_model(m.wv, target)  # type: ignore[arg-type]
    with pytest.raises(ce.CandleEmbedValueError):
        ce.save_facebook_model(m, target, encoding="nope")
    with pytest.raises(ce.CandleEmbedValueError):
        ce.save_facebook_model(ce.FastText(vector_size=4, bucket=10), target)
    m.counts = np.zeros(2, np.uint64)
    with pytest.raises(ce.CandleEmbedValueError):
        ce.save_facebook_model(m, target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]

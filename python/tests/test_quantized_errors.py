"""Bad input to quantized tables: wrong bits, unquantizable values, packed arrays of the wrong
type or width, corrupted files, bad ids and bags. Each is a typed error (also a
CandleEmbedError) and leaves every table as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import candle_embed as ce
import numpy as np
import pytest


def raises(cls: type[Exception], f: Callable[[], Any], match: str | None = None) -> None:
    with pytest.raises(cls, match=match) as e:
        f()
    assert isinstance(e.value, ce.CandleEmbedError), repr(e.value)


W = np.random.default_rng(0).normal(size=(10, 6)).astype(np.float32)


def test_wrong_bits() -> None:
    emb = ce.Embedding.from_pretrained(W)
    for bits in (0, 1, 2, 3, 5, 16, 32):
        raises(ValueError, lambda b=bits: ce.QuantizedEmbedding.from_float(W, b), "8 or 4")
        raises(ValueError, lambda b=bits: emb.quantize(b), "8 or 4")
        raises(
            ValueError,
            lambda b=bits: ce.QuantizedEmbeddingBag.from_packed(np.zeros((2, 9), np.uint8), b),
        )
    raises(ValueError, lambda: ce.QuantizedEmbedding.from_float(W, -8))
    raises(TypeError, lambda: ce.QuantizedEmbedding.from_float(W, 8.0))  # type: ignore[arg-type]
    np.testing.assert_array_equal(emb.weight, W)


def test_values_that_cannot_be_quantized_are_refused_before_anything_changes() -> None:
    raises(ValueError, lambda: ce.QuantizedEmbedding.from_float(np.zeros((3, 5)), 4), "even")
    for bad, row in [(np.nan, 4), (np.inf, 7), (-np.inf, 0)]:
        w = W.copy()
        w[row, 2] = bad
        emb = ce.Embedding.from_pretrained(w)
        for bits in (8, 4):
            raises(ValueError, lambda b=bits, e=emb: e.quantize(b), f"row {row}:")
        np.testing.assert_array_equal(emb.weight, w)
    wide = np.array([[-3e38, 3e38]], np.float32)
    raises(ValueError, lambda: ce.QuantizedEmbedding.from_float(wide, 8), "float32's range")
    for beyond_f16 in ([[0.0, 1e6]], [[-7e4, 0.0]]):
        raises(ValueError, lambda v=beyond_f16: ce.QuantizedEmbedding.from_float(v, 4), "float16")
    assert ce.QuantizedEmbedding.from_float([[0.0, 1e6]], 8).bits == 8
    raises(ValueError, lambda: ce.QuantizedEmbedding.from_float(np.zeros(5), 8), "2-D")
    raises(TypeError, lambda: ce.QuantizedEmbedding.from_float(np.zeros((2, 2), complex)))
    with_norm = ce.Embedding.from_pretrained(W, max_norm=1.0)
    raises(ValueError, lambda: with_norm.quantize(8), "max_norm")
    raises(
        ValueError, lambda: ce.EmbeddingBag.from_pretrained(W, max_norm=1.0).quantize(4), "max_norm"
    )


def test_packed_arrays_of_the_wrong_type_or_width() -> None:
    good = ce.QuantizedEmbedding.from_float(W, 8).packed
    raises(
        TypeError, lambda: ce.QuantizedEmbedding.from_packed(good.astype(np.float32), 8), "uint8"
    )
    raises(TypeError, lambda: ce.QuantizedEmbedding.from_packed(good.astype(np.int8), 8), "uint8")
    raises(ValueError, lambda: ce.QuantizedEmbedding.from_packed(good.ravel(), 8), "2-D")
    raises(ValueError, lambda: ce.QuantizedEmbedding.from_packed(good[:, :7], 8), "at least 8")
    raises(ValueError, lambda: ce.QuantizedEmbedding.from_packed(good[:, :3], 4), "at least 4")
    # 8-bit rows read as 4-bit ones: widths do not say, but the scales and biases then do
    raises(ValueError, lambda: ce.QuantizedEmbedding.from_packed(np.full((2, 9), 255, np.uint8), 4))
    corrupt = good.copy()
    corrupt[6, -8:-4] = np.frombuffer(np.float32(np.nan).tobytes(), np.uint8)
    raises(ValueError, lambda: ce.QuantizedEmbeddingBag.from_packed(corrupt, 8), "packed row 6")
    q = ce.QuantizedEmbedding.from_packed(np.zeros((10, 8), np.uint8), 8)  # zero-width rows
    assert q.embedding_dim == 0 and q([1, 2]).shape == (2, 0)


def test_bad_ids_bags_and_outputs_leave_the_table_unchanged() -> None:
    q = ce.QuantizedEmbedding.from_float(W, 4)
    qb = ce.QuantizedEmbeddingBag.from_float(W, 8, mode="mean")
    before = (q.packed, qb.packed)
    raises(IndexError, lambda: q([0, 10]), "10 is out of range")
    raises(IndexError, lambda: q([-1]))
    raises(IndexError, lambda: qb([[3, 11]]))
    raises(TypeError, lambda: q([0.5]))
    raises(ValueError, lambda: qb([1, 2, 3], [0, 2, 1]), "non-decreasing")
    raises(ValueError, lambda: qb([1, 2, 3]), "offsets are required")
    raises(ValueError, lambda: qb([1, 2], [0], [1.0, 2.0]), "mode='sum'")
    qs = ce.QuantizedEmbeddingBag.from_float(W, 8, mode="sum")
    raises(ValueError, lambda: qs([1, 2], [0], [1.0]), "per_sample_weights")
    raises(ValueError, lambda: q([1, 2], out=np.empty((2, 6), np.float64)), "dtype")
    raises(ValueError, lambda: q([1, 2], out=np.empty((3, 6), np.float32)), "shape")
    raises(TypeError, lambda: q([1, 2], dtype="int8"))
    raises(ValueError, lambda: ce.QuantizedEmbeddingBag.from_float(W, mode="median"))
    raises(IndexError, lambda: ce.QuantizedEmbedding.from_float(W, padding_idx=10))
    raises(ValueError, lambda: q.attend(np.zeros((2, 5))), "shape")
    raises(ValueError, lambda: q.attend(np.float32(1.0)), "shape")
    after = (q.packed, qb.packed)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def write_file(path: Path, tensors: dict[str, tuple[str, list[int], bytes]], meta: Any) -> None:
    """A safetensors file with any header we like (to forge corrupted ones)."""
    header: dict[str, Any] = {"__metadata__": meta}
    start = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [start, start + len(data)]}
        start += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(
        len(text).to_bytes(8, "little") + text + b"".join(t[2] for t in tensors.values())
    )


def config(**kw: Any) -> dict[str, str]:
    return {"candle_embed.config": json.dumps(kw)}


@pytest.mark.parametrize("mmap", [False, True])
def test_corrupted_quantized_files_are_value_errors(mmap: bool, tmp_path: Path) -> None:
    q = ce.QuantizedEmbedding.from_float(W, 8)
    packed = q.packed
    p = tmp_path / "q.safetensors"

    def load_fails(match: str) -> None:
        raises(ValueError, lambda: ce.QuantizedEmbedding.load(p, mmap=mmap), match)
        raises(ValueError, lambda: ce.QuantizedEmbeddingBag.load(p, mmap=mmap), match)

    body = ("U8", [10, 14], packed.tobytes())
    write_file(p, {"packed": body}, config(bits=8, num_embeddings=10, embedding_dim=6))
    assert ce.QuantizedEmbedding.load(p, mmap=mmap).embedding_dim == 6  # the forger is right
    write_file(p, {"packed": body}, config(num_embeddings=10))
    load_fails("bits")
    write_file(p, {"packed": body}, config(bits=5))
    load_fails("8 or 4")
    write_file(p, {"packed": body}, config(bits=8, embedding_dim=7))
    load_fails("embedding_dim")
    write_file(p, {"packed": body}, config(bits=8, format="gguf"))
    load_fails("format")
    write_file(
        p, {"packed": ("F32", [10, 14], packed.astype(np.float32).tobytes()[:560])}, config(bits=8)
    )
    load_fails("uint8")
    write_file(p, {"weight": body}, config(bits=8))
    load_fails("no tensor named 'packed'")
    # the header promises more bytes than the file has: refused before mapping anything
    write_file(p, {"packed": body}, config(bits=8))
    p.write_bytes(p.read_bytes()[:-20])
    load_fails("not a valid safetensors file")
    # a float table's file is not a quantized one
    ce.Embedding.from_pretrained(W).save(p)
    load_fails("bits")
    # a row whose scale is NaN: refused when the rows are read into memory; a mapped table
    # reads nothing up front and returns what the bytes say
    bad = packed.copy()
    bad[3, 6:10] = np.frombuffer(np.float32(np.nan).tobytes(), np.uint8)
    write_file(p, {"packed": ("U8", [10, 14], bad.tobytes())}, config(bits=8))
    if mmap:
        assert np.all(np.isnan(ce.QuantizedEmbedding.load(p, mmap=True)([3])))
    else:
        load_fails("packed row 3")


def test_random_corruptions_load_or_fail_typed_never_crash(tmp_path: Path) -> None:
    """Random bit flips, truncations and garbage in quantized and float table files, loaded with
    and without mmap, in a subprocess: every load either works (and the table answers) or is a
    CandleEmbedError; the process never dies (no SIGBUS from a mapping past the file's end)."""
    script = r"""
import sys, numpy as np, candle_embed as ce
from pathlib import Path
tmp = Path(sys.argv[1])
w = np.random.default_rng(1).normal(size=(9, 6)).astype(np.float32)
sources = {"q8": ce.QuantizedEmbeddingBag.from_float(w, 8, mode="sum"),
           "q4": ce.QuantizedEmbedding.from_float(w, 4), "f": ce.EmbeddingBag.from_pretrained(w)}
rng = np.random.default_rng(0)
counts = {"loaded": 0, "rejected": 0}
for name, table in sources.items():
    path = tmp / f"{name}.safetensors"
    table.save(path)
    data = path.read_bytes()
    load = {"q8": ce.QuantizedEmbeddingBag.load, "q4": ce.QuantizedEmbedding.load,
            "f": ce.EmbeddingBag.load}[name]
    for trial in range(150):
        buf = bytearray(data)
        how = trial % 3
        if how == 0:
            for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 4))):
                buf[pos] ^= 1 << int(rng.integers(0, 8))
        elif how == 1:
            buf = buf[: int(rng.integers(0, len(buf)))]
        else:
            buf += bytes(int(rng.integers(1, 40)))
        p = tmp / "c.safetensors"
        p.write_bytes(bytes(buf))
        for mmap in (None, True):
            try:
                t = load(p, mmap=mmap)
            except ce.CandleEmbedError:
                counts["rejected"] += 1
                continue
            n = t.num_embeddings
            if n:
                t(np.arange(n).reshape(n, 1)) if name != "q4" else t(np.arange(n))
            counts["loaded"] += 1
            t = None  # unmap before the file is rewritten
print(counts["loaded"], counts["rejected"])
"""
    res = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-2000:]
    loaded, rejected = map(int, res.stdout.split())
    assert rejected > 200 and loaded > 20, (loaded, rejected)

"""Atomicity (a failed call changes nothing), concurrency (no torn rows, no deadlock),
determinism (seeds, thread counts), safe persistence (atomic saves, corrupted files) and leaks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed import optim
from candle_embed._native import _testing

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = (IndexError, TypeError, ValueError, KeyError, MemoryError)


def snapshot(tables: list[ce.Embedding], opt: optim.SparseOptimizer | None) -> tuple[Any, ...]:
    ws = tuple(t.weight.tobytes() for t in tables)
    if opt is None:
        return ws
    sd = opt.state_dict()
    state = tuple(
        tuple(sorted((k, v.dtype.str, v.shape, v.tobytes()) for k, v in s.items()))
        for s in sd["state"]
    )
    return ws, sd["kind"], tuple(sd["step"]), state


OPTS: dict[str, Callable[[Any], optim.SparseOptimizer]] = {
    "SGD": lambda p: optim.SGD(p, 0.1, momentum=0.9, weight_decay=0.01),
    "Adagrad": lambda p: optim.Adagrad(p, 0.1, lr_decay=0.01),
    "RowWiseAdagrad": lambda p: optim.RowWiseAdagrad(p, 0.1),
    "SparseAdam": lambda p: optim.SparseAdam(p, 0.01),
}


# ----------------------------------------------------------------------------- atomicity


@pytest.mark.parametrize("kind", list(OPTS))
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_failed_calls_leave_tables_and_state_bit_identical(
    kind: str, dtype: str, tmp_path: Path
) -> None:
    a = ce.Embedding(30, 6, dtype=dtype, seed=1, max_norm=0.7, padding_idx=2)
    b = ce.Embedding(12, 6, dtype=dtype, seed=2, scale_grad_by_freq=True)
    opt = OPTS[kind]([a, b])
    ft = np.float32 if dtype == "bfloat16" else np.dtype(dtype).type
    opt.step([a.backward([1, 3, 3], np.ones((3, 6), ft)), b.backward([4], np.ones((1, 6), ft))])
    before = snapshot([a, b], opt)
    good = a.backward([5, 6], np.ones((2, 6), ft))
    bad_path = tmp_path / "bad.safetensors"
    bad_path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    out = np.full((3, 6), 9.0, np.float32 if dtype == "bfloat16" else ft)
    failing: list[Callable[[], Any]] = [
        lambda: a([0, 1, 29, 30]),  # max_norm would renormalise rows 0, 1, 29 first
        lambda: a(np.array([[7, 8], [9, -1]])),
        lambda: a([0, 1, 99], out=out),
        lambda: _testing.lookup_portable(a, [3, 40]),
        lambda: a.backward([1, 2, 30], np.ones((3, 6), ft)),
        lambda: a.backward([1, 2], np.ones((2, 5), ft)),
        lambda: b.backward([1, 2], np.ones((3, 6), ft)),
        lambda: opt.step([good, ce.SparseGrad.from_rows([1], np.ones((1, 5), np.float32), 12)]),
        lambda: opt.step([good, ce.SparseGrad.from_rows([1], np.ones((1, 6), np.float32), 13)]),
        lambda: opt.step([good]),
        lambda: opt.step([good, "g"]),
        lambda: opt.load_state_dict({**opt.state_dict(), "step": [1]}),
        lambda: opt.load_state_dict({**opt.state_dict(), "kind": "Nope"}),
        lambda: setattr(a, "weight", np.ones((30, 7), np.float32)),
        lambda: setattr(a, "weight", np.ones((29, 6), np.float32)),
        lambda: setattr(a, "weight", np.array([["x"] * 6] * 30)),
        lambda: ce.Embedding.load(bad_path),
        lambda: a.save(tmp_path / "no" / "such" / "dir" / "x.safetensors"),
    ]
    failures = []
    for i, call in enumerate(failing):
        try:
            call()
            failures.append(f"call {i} did not fail")
        except ALLOWED + (OSError,) as e:
            assert not isinstance(e, RuntimeError), repr(e)
        if snapshot([a, b], opt) != before:
            failures.append(f"call {i} changed state")
    assert not failures, failures
    assert np.all(out == 9.0)  # a failed lookup writes nothing into out=
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors"]


# ----------------------------------------------------------------------------- concurrency


def run_threads(targets: list[Callable[[], None]], timeout: float = 60.0) -> None:
    errors: list[BaseException] = []

    def wrap(f: Callable[[], None]) -> Callable[[], None]:
        def go() -> None:
            try:
                f()
            except BaseException as e:  # noqa: BLE001  (reported below)
                errors.append(e)

        return go

    threads = [threading.Thread(target=wrap(f), daemon=True) for f in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "deadlock: a thread did not finish"
    if errors:
        raise errors[0]


def test_steps_and_lookups_never_see_torn_rows() -> None:
    """A writer thread runs SGD steps that move *every* row from constant k to k+1 in one step;
    readers (lookup, portable lookup, weight copy, backward, max_norm-free) must see each call's
    rows all equal to one k, never a mix (one step holds the table's write lock throughout)."""
    v, d, steps = 2000, 64, 60
    emb = ce.Embedding.from_pretrained(np.zeros((v, d)), freeze=False)
    opt = optim.SGD(emb, 1.0)
    all_ids = np.arange(v)
    minus_one = np.full((v, d), -1.0)
    done = threading.Event()
    start = threading.Barrier(5)
    seen: set[float] = set()

    def writer() -> None:
        start.wait()
        try:
            for _ in range(steps):
                opt.step(ce.SparseGrad.from_rows(all_ids, minus_one, v))
        finally:
            done.set()

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        last = 0.0
        start.wait()
        while not done.is_set():
            ids = rng.integers(0, v, size=(8, 256))
            for y in (emb(ids), _testing.lookup_portable(emb, ids), emb.weight):
                k = y.flat[0]
                assert np.all(y == k), f"torn read: values {np.unique(y)[:5]}"
                assert k >= last, "a read went back in time"
                last = k
                seen.add(float(k))

    def backwarder(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not done.is_set():
            ids = rng.integers(0, v, size=500)
            g = rng.standard_normal((500, d))
            ref = np.zeros((v, d))
            np.add.at(ref, ids, g)
            np.testing.assert_allclose(emb.backward(ids, g).to_dense(), ref, rtol=1e-12, atol=1e-12)

    run_threads(
        [writer]
        + [lambda s=s: reader(s) for s in range(4)]
        + [lambda s=s: backwarder(s) for s in (10, 11)]
    )
    assert np.all(emb.weight == steps)
    assert len(seen) >= 2, seen  # the readers really ran while the writer stepped


def test_many_threads_lookup_backward_shared_tables() -> None:
    tables = [ce.Embedding(3000, 32, seed=s) for s in range(3)]
    weights = [t.weight for t in tables]

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(25):
            i = int(rng.integers(0, 3))
            ids = rng.integers(0, 3000, size=(16, 40))
            np.testing.assert_array_equal(tables[i](ids), weights[i][ids])
            g = rng.standard_normal(ids.shape + (32,)).astype(np.float32)
            sg = tables[i].backward(ids, g)
            np.testing.assert_array_equal(sg.indices, np.unique(ids))
            u, s = ce.coalesce(ids, g)
            np.testing.assert_array_equal(s, sg.values)  # same kernel, same order: bit-identical

    run_threads([lambda s=s: worker(s) for s in range(8)])


def test_concurrent_steps_on_shared_table_serialize() -> None:
    """Two optimizers stepping the same table from different threads: each step is applied whole
    (integer-valued float64 updates, so the end result is exact whatever the interleaving)."""
    emb = ce.Embedding.from_pretrained(np.zeros((500, 8)), freeze=False)
    o1, o2 = optim.SGD(emb, 1.0), optim.SGD(emb, 2.0)
    ids = np.arange(500)
    g = ce.SparseGrad.from_rows(ids, -np.ones((500, 8)), 500)
    run_threads([lambda: [o1.step(g) for _ in range(40)], lambda: [o2.step(g) for _ in range(40)]])
    assert np.all(emb.weight == 40 * 1.0 + 40 * 2.0)


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_same_seed_same_table(dtype: str) -> None:
    a = ce.Embedding(777, 33, dtype=dtype, seed=123, padding_idx=5)
    b = ce.Embedding(777, 33, dtype=dtype, seed=123, padding_idx=5)
    c = ce.Embedding(777, 33, dtype=dtype, seed=124, padding_idx=5)
    assert a.weight.tobytes() == b.weight.tobytes() != c.weight.tobytes()


def train(threads: int, kind: str) -> tuple[Any, ...]:
    before = ce.get_num_threads()
    ce.set_num_threads(threads)
    try:
        rng = np.random.default_rng(5)
        emb = ce.Embedding(4000, 48, seed=9, max_norm=3.0, scale_grad_by_freq=True)
        opt = OPTS[kind](emb)
        for _ in range(6):
            ids = rng.integers(0, 4000, size=(64, 300))  # large: the parallel paths run
            y = emb(ids)
            g = (y * 0.5 + rng.standard_normal(y.shape).astype(np.float32)).astype(np.float32)
            opt.step(emb.backward(ids, g))
        return snapshot([emb], opt)
    finally:
        ce.set_num_threads(before)


@pytest.mark.parametrize("kind", list(OPTS))
def test_training_run_bit_identical_for_1_and_2_threads(kind: str) -> None:
    assert train(1, kind) == train(2, kind) == train(3, kind)


# ----------------------------------------------------------------------------- persistence


def test_save_is_atomic_and_failed_save_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    small = ce.Embedding(4, 3, seed=1)
    small.save(path)
    old = path.read_bytes()
    # a save that fails half-way (file size limit hit while writing the temporary file)
    code = f"""
import resource, signal
import candle_embed as ce
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
big = ce.Embedding(1000, 100, seed=2)
try:
    big.save({str(path)!r})
except OSError as e:
    print("OSError", type(e).__name__)
else:
    print("saved")
"""
    # the child imports the same candle_embed as this process (the installed wheel in CI, the
    # source tree with its built extension in development)
    package_parent = str(Path(ce.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": package_parent + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("OSError"), res.stdout
    assert path.read_bytes() == old  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]  # no temporary file left
    # rename onto a directory fails: the temporary file is removed too
    (tmp_path / "d.safetensors").mkdir()
    (tmp_path / "d.safetensors" / "keep").write_text("x")
    with pytest.raises(OSError):
        small.save(tmp_path / "d.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.safetensors", "t.safetensors"]
    # overwriting a good file with a good save replaces it whole
    big = ce.Embedding(50, 7, seed=3)
    big.save(path)
    np.testing.assert_array_equal(ce.Embedding.load(path).weight, big.weight)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_random_corruptions_load_or_value_error(dtype: str, tmp_path: Path) -> None:
    emb = ce.Embedding(9, 5, dtype=dtype, seed=4, padding_idx=1, max_norm=2.0)
    path = tmp_path / "e.safetensors"
    emb.save(path)
    data = path.read_bytes()
    hlen = int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(0)
    outcomes = {"loaded": 0, "rejected": 0}
    for trial in range(400):
        buf = bytearray(data)
        how = trial % 5
        if how == 0:  # bit flips anywhere
            for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 4))):
                buf[pos] ^= 1 << int(rng.integers(0, 8))
        elif how == 1:  # bit flip inside the header (length or JSON)
            pos = int(rng.integers(0, 8 + hlen))
            buf[pos] ^= 1 << int(rng.integers(0, 8))
        elif how == 2:  # truncation
            buf = buf[: int(rng.integers(0, len(buf)))]
        elif how == 3:  # random bytes over a random span
            s = int(rng.integers(0, len(buf)))
            n = int(rng.integers(1, 16))
            buf[s : s + n] = rng.integers(
                0, 256, size=len(buf[s : s + n]), dtype=np.uint8
            ).tobytes()
        else:  # appended garbage
            buf += rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        p = tmp_path / f"c{trial}.safetensors"
        p.write_bytes(bytes(buf))
        try:
            back = ce.Embedding.load(p)
        except ValueError as e:
            assert isinstance(e, ce.CandleEmbedError), repr(e)
            outcomes["rejected"] += 1
        else:
            n, d = back.weight.shape
            assert back.num_embeddings == n and back.embedding_dim == d
            if n:
                back(np.arange(n))
            outcomes["loaded"] += 1
        p.unlink()
    assert outcomes["rejected"] > 100, outcomes  # the checks really run


def test_no_pickle_anywhere() -> None:
    hits = []
    for sub in ("python/candle_embed", "src", "bindings"):
        for f in (ROOT / sub).rglob("*"):
            if f.suffix in {".py", ".rs", ".pyi"}:
                text = f.read_text(encoding="utf-8")
                if "import pickle" in text or "pickle." in text or "allow_pickle=True" in text:
                    hits.append(str(f))
    assert hits == []


# ----------------------------------------------------------------------------- leaks


def test_rss_flat_over_many_lookup_backward_calls() -> None:
    sys.path.insert(0, str(ROOT / "benches"))
    try:
        from bench_leaks import measure
    finally:
        sys.path.pop(0)
    growth_mib, _ = measure(calls=20_000, checkpoints=4)
    assert growth_mib < 8.0, f"RSS grew {growth_mib:.1f} MiB over 20k lookup+backward calls"


@pytest.mark.parametrize("ext,binary", [(".txt", False), (".bin", True), (".safetensors", False)])
def test_word_vector_files_corrupted_load_or_value_error(
    ext: str, binary: bool, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    kv = ce.KeyedVectors(
        [f"w{i}" for i in range(12)], rng.standard_normal((12, 6)).astype(np.float32)
    )
    path = tmp_path / f"kv{ext}"
    kv.save(path)
    data = path.read_bytes()
    rejected = 0
    for trial in range(300):
        buf = bytearray(data)
        if trial % 3 == 0:
            buf = buf[: int(rng.integers(0, len(buf)))]
        else:
            for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 4))):
                buf[pos] ^= 1 << int(rng.integers(0, 8))
        p = tmp_path / f"c{ext}"
        p.write_bytes(bytes(buf))
        try:
            back = (
                ce.KeyedVectors.load(p)
                if ext == ".safetensors"
                else ce.KeyedVectors.load_word2vec_format(p, binary=binary)
            )
        except ValueError as e:
            assert isinstance(e, ce.CandleEmbedError), repr(e)
            rejected += 1
        else:
            assert back.vectors.shape == (len(back.index_to_key), back.vector_size)
    assert rejected > 50
    # forged headers: a count / dimension far beyond the file is a ValueError, not an abort
    forged = [b"%d 3\nw 1 2 3\n" % n for n in (2**64 - 1, 10**14)] + [
        b"1 %d\nw 1 2 3\n" % n for n in (2**64 - 1, 10**14)
    ]
    for k, text in enumerate(forged):
        p = tmp_path / f"forged{k}.txt"
        p.write_bytes(text)
        with pytest.raises(ValueError):
            ce.KeyedVectors.load_word2vec_format(p)
        p.write_bytes(text.split(b"\n")[0] + b"\nw \x00\x00\x80\x3f")
        with pytest.raises(ValueError):
            ce.KeyedVectors.load_word2vec_format(p, binary=True)

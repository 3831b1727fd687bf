"""word2vec: format fidelity against gensim's own files, training learns planted structure,
determinism, the CLI, and every bad-input class."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import candle_embed as ce
import numpy as np
import pytest
from candle_embed.keyed_vectors import KeyedVectors

gensim = pytest.importorskip("gensim")
from gensim.models import KeyedVectors as GKV  # noqa: E402

DATA = Path(os.path.dirname(gensim.__file__)) / "test" / "test_data"


def _same(ours: KeyedVectors, theirs: object) -> None:
    assert ours.index_to_key == list(theirs.index_to_key)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)  # type: ignore[attr-defined]


# --- format fidelity against gensim ---------------------------------------------------------
@pytest.mark.parametrize(
    "name,binary,no_header",
    [
        ("toy-model.vec", False, False),  # word2vec text
        ("crime-and-punishment.vec", False, False),
        ("high_precision.kv.txt", False, False),
        ("word2vec_pre_kv_c", False, False),
        ("euclidean_vectors.bin", True, False),  # word2vec binary
        ("high_precision.kv.bin", True, False),
        ("poincare_vectors.bin", True, False),
        ("test_glove.txt", False, True),  # GloVe: no header
        ("lee_fasttext.vec", False, False),  # fastText .vec
    ],
)
def test_reads_like_gensim(name: str, binary: bool, no_header: bool) -> None:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{name} not in this gensim's test data")
    ours = KeyedVectors.load_word2vec_format(path, binary=binary, no_header=no_header)
    theirs = GKV.load_word2vec_format(str(path), binary=binary, no_header=no_header)
    _same(ours, theirs)


def test_header_promising_more_rows_is_rejected_like_gensim() -> None:
    path = DATA / "pretrained.vec"  # header "3 5", one vector
    with pytest.raises(EOFError):
        GKV.load_word2vec_format(str(path))
    with pytest.raises(ValueError, match="line 3"):
        KeyedVectors.load_word2vec_format(path)


def test_limit_like_gensim() -> None:
    path = DATA / "euclidean_vectors.bin"
    ours = KeyedVectors.load_word2vec_format(path, binary=True, limit=7)
    theirs = GKV.load_word2vec_format(str(path), binary=True, limit=7)
    assert len(ours) == 7
    _same(ours, theirs)


@pytest.mark.parametrize("binary", [False, True])
def test_written_files_load_in_gensim(tmp_path: Path, binary: bool) -> None:
    rng = np.random.default_rng(0)
    words = ["the", "quick", "brown", "fox", "naïve", "日本"]
    vecs = rng.standard_normal((len(words), 7)).astype(np.float32)
    vecs[0, 0] = 1e-30
    vecs[1, 1] = 3.4e38
    kv = KeyedVectors(words, vecs)
    path = tmp_path / ("v.bin" if binary else "v.txt")
    kv.save_word2vec_format(path, binary=binary)
    _same(kv, GKV.load_word2vec_format(str(path), binary=binary))
    _same(KeyedVectors.load_word2vec_format(path, binary=binary), kv)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_safetensors_round_trip_and_embedding(tmp_path: Path) -> None:
    kv = KeyedVectors(["a", "b", "c"], np.arange(12, dtype=np.float32).reshape(3, 4))
    kv.save(tmp_path / "v.safetensors")
    back = KeyedVectors.load(tmp_path / "v.safetensors")
    _same(back, kv)
    emb = ce.Embedding.load(str(tmp_path / "v.safetensors"))
    np.testing.assert_array_equal(emb.weight, kv.vectors)
    np.testing.assert_array_equal(kv.embedding(np.array([2, 0])), kv.vectors[[2, 0]])


# --- similarity and evaluation against gensim on the same vectors ---------------------------
@pytest.fixture(scope="module")
def pair() -> tuple[KeyedVectors, object]:
    path = DATA / "word2vec_pre_kv_c"  # 1750 words of the Lee corpus
    return KeyedVectors.load_word2vec_format(path), GKV.load_word2vec_format(str(path))


def test_most_similar_matches_gensim(pair: tuple[KeyedVectors, object]) -> None:
    ours, theirs = pair
    for kw in [
        {"positive": "government"},
        {"positive": ["police", "said"], "negative": ["he"]},
        {"positive": ["australia"], "topn": 3},
        {"positive": ["australia"], "topn": 5, "restrict_vocab": 200},
    ]:
        a = ours.most_similar(**kw)  # type: ignore[arg-type]
        b = theirs.most_similar(**kw)  # type: ignore[attr-defined]
        assert [w for w, _ in a] == [w for w, _ in b]
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-5)
    assert ours.similarity("police", "government") == pytest.approx(
        theirs.similarity("police", "government"),
        abs=1e-6,  # type: ignore[attr-defined]
    )


def test_evaluations_match_gensim(pair: tuple[KeyedVectors, object]) -> None:
    ours, theirs = pair
    p1, s1, o1 = ours.evaluate_word_pairs(DATA / "wordsim353.tsv")
    p2, s2, o2 = theirs.evaluate_word_pairs(str(DATA / "wordsim353.tsv"))  # type: ignore[attr-defined]
    assert p1[0] == pytest.approx(p2[0], abs=1e-5)
    assert s1[0] == pytest.approx(s2[0], abs=1e-5)
    assert o1 == pytest.approx(o2)
    sc1, sec1 = ours.evaluate_word_analogies(DATA / "questions-words.txt")
    sc2, sec2 = theirs.evaluate_word_analogies(str(DATA / "questions-words.txt"))  # type: ignore[attr-defined]
    assert sc1 == pytest.approx(sc2)
    assert [s["section"] for s in sec1] == [s["section"] for s in sec2]
    assert sec1[-1]["correct"] == sec2[-1]["correct"]


# --- training ---------------------------------------------------------------------------
def _planted(n_sent: int = 1500, seed: int = 0) -> list[list[str]]:
    """Two topics: sentences draw from topic A (a0..a9) or topic B (b0..b9), plus shared
    filler words; words of one topic co-occur, never with the other's."""
    rng = np.random.default_rng(seed)
    filler = [f"f{i}" for i in range(5)]
    out = []
    for _ in range(n_sent):
        topic = "a" if rng.random() < 0.5 else "b"
        words = [f"{topic}{rng.integers(10)}" for _ in range(8)] + [
            filler[rng.integers(5)] for _ in range(2)
        ]
        rng.shuffle(words)
        out.append(words)
    return out


def test_training_learns_planted_structure() -> None:
    m = ce.Word2Vec(_planted(), vector_size=16, window=3, min_count=1, epochs=5, workers=2)
    wv = m.wv
    assert len(wv) == 25 and wv.vectors.shape == (25, 16)
    for t, other in (("a", "b"), ("b", "a")):
        for i in range(10):
            near = [w for w, _ in wv.most_similar(f"{t}{i}", topn=5)]
            assert all(w.startswith(t) for w in near), (t, i, near)
        same = np.mean([wv.similarity(f"{t}0", f"{t}{j}") for j in range(1, 10)])
        cross = np.mean([wv.similarity(f"{t}0", f"{other}{j}") for j in range(10)])
        assert same > cross + 0.3
    assert m.stats["raw_words"] == 5 * 15000


def test_vocabulary_counts_and_order() -> None:
    sents = [["a", "b", "b", "c", "c", "c"], ["c", "d"]]
    m = ce.Word2Vec(sents, vector_size=4, min_count=2, epochs=1, workers=1)
    assert m.wv.index_to_key == ["c", "b"]
    assert m.counts.tolist() == [4, 2]


def test_seed_reproducible_with_one_worker(tmp_path: Path) -> None:
    s = _planted(300)
    a = ce.Word2Vec(s, vector_size=8, min_count=1, seed=3, workers=1).wv.vectors
    b = ce.Word2Vec(s, vector_size=8, min_count=1, seed=3, workers=1).wv.vectors
    c = ce.Word2Vec(s, vector_size=8, min_count=1, seed=4, workers=1).wv.vectors
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_corpus_file_equals_sentences(tmp_path: Path) -> None:
    s = _planted(200)
    f = tmp_path / "c.txt"
    f.write_text("\n".join(" ".join(x) for x in s) + "\n")
    a = ce.Word2Vec(s, vector_size=8, min_count=1, workers=1).wv
    b = ce.Word2Vec(corpus_file=f, vector_size=8, min_count=1, workers=1).wv
    assert a.index_to_key == b.index_to_key
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_progress_callback_sees_all_words() -> None:
    seen: list[tuple[int, int]] = []
    ce.Word2Vec(
        _planted(100),
        vector_size=4,
        min_count=1,
        epochs=2,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen and seen[-1] == (2000, 2000)


# --- bad input --------------------------------------------------------------------------
def test_bad_corpus_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ce.Word2Vec(corpus_file=tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="empty"):
        ce.Word2Vec(corpus_file=empty)
    with pytest.raises(ValueError, match="empty"):
        ce.Word2Vec([[], []])
    with pytest.raises(ValueError, match="min_count"):
        ce.Word2Vec([["a", "b"]], min_count=5)
    with pytest.raises(TypeError):
        ce.Word2Vec("not a list of sentences")
    with pytest.raises(TypeError):
        ce.Word2Vec([["a", 3]])
    with pytest.raises(ValueError):
        ce.Word2Vec([["a"]], sg=2)
    with pytest.raises(ValueError):
        ce.Word2Vec([["a"]], vector_size=0, min_count=1)
    with pytest.raises(ValueError):
        ce.Word2Vec([["a"]], min_count=1, alpha=-1.0)


def test_progress_exception_propagates() -> None:
    def boom(d: int, t: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        ce.Word2Vec(_planted(3000), vector_size=32, min_count=1, epochs=50, progress=boom)


def test_unknown_word_is_key_error(pair: tuple[KeyedVectors, object]) -> None:
    kv = pair[0]
    for call in (
        lambda: kv["no-such-word"],
        lambda: kv.most_similar("no-such-word"),
        lambda: kv.similarity("police", "no-such-word"),
    ):
        with pytest.raises(KeyError, match="no-such-word"):
            call()


@pytest.mark.parametrize(
    "content,binary,line",
    [
        ("2 3\na 1 2 3\nb 1 2\n", False, 3),
        ("2 3\na 1 2 3\nb 1 x 3\n", False, 3),
        ("3 3\na 1 2 3\nb 1 2 3\n", False, 4),
        ("two 3\na 1 2 3\n", False, 1),
        ("", False, 1),
    ],
)
def test_malformed_text_names_the_line(
    tmp_path: Path, content: str, binary: bool, line: int
) -> None:
    p = tmp_path / "bad.txt"
    p.write_text(content)
    with pytest.raises(ValueError, match=f"line {line}"):
        KeyedVectors.load_word2vec_format(p, binary=binary)


def test_truncated_binary(tmp_path: Path) -> None:
    good = tmp_path / "v.bin"
    KeyedVectors(["a", "b"], np.ones((2, 4), np.float32)).save_word2vec_format(good, binary=True)
    data = good.read_bytes()
    bad = tmp_path / "bad.bin"
    bad.write_bytes(data[:-6])
    with pytest.raises(ValueError, match="line 3"):
        KeyedVectors.load_word2vec_format(bad, binary=True)


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    kv = KeyedVectors(["a b"], np.ones((1, 2), np.float32))  # a space cannot be written
    with pytest.raises(ValueError):
        kv.save_word2vec_format(tmp_path / "v.txt")
    target = tmp_path / "sub" / "v.txt"  # directory missing
    with pytest.raises(OSError):
        KeyedVectors(["a"], np.ones((1, 2), np.float32)).save_word2vec_format(target)
    assert list(tmp_path.iterdir()) == []


# --- CLI ----------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "candle_embed", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_help() -> None:
    r = _cli("--help")
    assert r.returncode == 0 and "demo" in r.stdout and "train" in r.stdout
    r = _cli("train", "--help")
    assert r.returncode == 0 and "--min-count" in r.stdout and ".safetensors" in r.stdout
    r = _cli("demo", "--help")
    assert r.returncode == 0 and "standard" in r.stdout


@pytest.mark.parametrize("ext", [".txt", ".bin", ".safetensors"])
def test_cli_train(tmp_path: Path, ext: str) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in _planted(300)) + "\n")
    out = tmp_path / f"v{ext}"
    r = _cli("train", str(corpus), "--out", str(out), "--dim", "8", "--min-count", "1",
             "--epochs", "2", "--threads", "1", "--quiet")  # fmt: skip
    assert r.returncode == 0, r.stderr
    kv = KeyedVectors.load(out)
    assert len(kv) == 25 and kv.vector_size == 8


def test_cli_errors(tmp_path: Path) -> None:
    r = _cli("train", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "v.txt"))
    assert r.returncode == 2 and "not found" in r.stderr
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n")
    r = _cli("train", str(corpus), "--out", str(tmp_path / "v.txt"), "--quiet")
    assert r.returncode == 2 and "min_count" in r.stderr
    r = _cli("train", str(corpus), "--out", str(tmp_path / "v.xyz"))
    assert r.returncode == 2 and ".safetensors" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]

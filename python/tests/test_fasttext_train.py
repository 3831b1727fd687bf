"""FastText training (the Word2Vec trainer on bags of rows): gensim's training tests ported from
``gensim/test/test_fasttext.py`` (names cited), reproducibility, the result read back through
Facebook's format by gensim, and typed errors for what is not implemented or invalid."""

from __future__ import annotations

import warnings
from pathlib import Path

import candle_embed as ce
import fasttext_ref as ref
import numpy as np
import pytest

gensim_utils = pytest.importorskip("gensim.test.utils")
DATA = Path(gensim_utils.datapath(""))
LEE = DATA / "lee_background.cor"
BUCKET = 10000  # gensim's test_fasttext.py BUCKET

COMMON_TEXTS = [
    ["human", "interface", "computer"],
    ["survey", "user", "computer", "system", "response", "time"],
    ["eps", "user", "interface", "system"],
    ["system", "human", "system", "eps"],
    ["user", "response", "time"],
    ["trees"],
    ["graph", "trees"],
    ["graph", "minors", "trees"],
    ["graph", "minors", "survey"],
]


def structural_sanity(model: ce.FastText) -> None:
    # gensim TestFastTextModel.model_structural_sanity
    wv = model.wv
    assert wv.vectors.shape == (len(wv), model.vector_size)
    assert wv.vectors_vocab.shape == (len(wv), model.vector_size)
    assert wv.vectors_ngrams.shape == (wv.bucket, model.vector_size)
    assert np.isfinite(wv.vectors_ngrams).all() and np.isfinite(wv.vectors_vocab).all()
    assert model.syn1neg is not None and np.isfinite(model.syn1neg).all()


def test_training_small_corpus() -> None:
    # gensim TestFastTextModel.test_training, with negative sampling (its hs=1 case: below)
    model = ce.FastText(
        COMMON_TEXTS, vector_size=12, min_count=1, seed=42, workers=1, bucket=BUCKET
    )
    structural_sanity(model)
    assert model.wv.vectors.shape == (12, 12) and len(model.wv) == 12
    sims = model.wv.most_similar("graph", topn=10)
    graph = model.wv.get_vector("graph", norm=True)
    sims2 = [(w, s) for w, s in model.wv.most_similar(positive=[graph], topn=11) if w != "graph"]
    assert [w for w, _ in sims] == [w for w, _ in sims2]
    np.testing.assert_allclose([s for _, s in sims], [s for _, s in sims2], rtol=1e-5)
    assert model.wv["minors"].shape == (12,) and model.wv["minor"].shape == (12,)
    assert "minor" not in model.wv.key_to_index
    # The composed vectors follow fastText's rule from the trained tables.
    wv = model.wv
    i = wv.key_to_index["graph"]
    want = ref.word_vector(wv._input, "graph", i, len(wv), wv.min_n, wv.max_n, wv.bucket)
    np.testing.assert_allclose(wv["graph"], want, rtol=1e-5, atol=1e-7)
    assert model.counts[i] == 3
    assert model.corpus_total_words == sum(len(s) for s in COMMON_TEXTS)


@pytest.mark.parametrize("sg", [0, 1])
def test_training_hierarchical_softmax(sg: int) -> None:
    # gensim TestFastTextModel.test_training: hs=1, negative=0 (its own parameters).
    model = ce.FastText(
        COMMON_TEXTS, vector_size=12, min_count=1, hs=1, negative=0, sg=sg, seed=42, workers=1,
        bucket=BUCKET,
    )  # fmt: skip
    wv = model.wv
    assert model.syn1 is not None and model.syn1.shape == (12, 12) and model.syn1neg is None
    assert np.isfinite(model.syn1).all() and np.any(model.syn1 != 0)
    assert wv.vectors.shape == (12, 12) and wv.vectors_ngrams.shape == (BUCKET, 12)
    for w in ["graph", "minor", "unseenword"]:
        own = wv.key_to_index.get(w)
        want = ref.word_vector(wv._input, w, own, len(wv), wv.min_n, wv.max_n, wv.bucket)
        np.testing.assert_allclose(wv[w], want, rtol=1e-5, atol=1e-7, err_msg=w)


def test_same_seed_one_worker_is_bit_identical_and_files_match(tmp_path: Path) -> None:
    # gensim test_training's "build vocab and train in one step; must be the same", and
    # test_training_fromfile: sentences and the same text as a file give the same model.
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in COMMON_TEXTS))
    kw = dict(vector_size=12, min_count=1, seed=42, workers=1, bucket=BUCKET, epochs=3)
    a = ce.FastText(COMMON_TEXTS, **kw)
    b = ce.FastText(corpus_file=corpus, **kw)
    np.testing.assert_array_equal(a.wv._input, b.wv._input)
    np.testing.assert_array_equal(a.syn1neg, b.syn1neg)
    c = ce.FastText(COMMON_TEXTS, **(kw | {"seed": 43}))
    assert not np.array_equal(a.wv.vectors, c.wv.vectors)


@pytest.mark.parametrize(
    ("sg", "alpha", "expected"),
    [
        # gensim TestFastTextModel.test_cbow_neg_training
        (
            0,
            0.05,
            [
                "night.",
                "night,",
                "eight",
                "fight",
                "month",
                "hearings",
                "Washington",
                "remains",
                "overnight",
                "running",
            ],
        ),  # fmt: skip
        # gensim TestFastTextModel.test_sg_neg_training
        (
            1,
            0.025,
            [
                "night.",
                "night,",
                "eight",
                "overnight",
                "overnight.",
                "month",
                "land",
                "firm",
                "singles",
                "death",
            ],
        ),  # fmt: skip
    ],
)
def test_neg_training_on_lee(sg: int, alpha: float, expected: list[str]) -> None:
    model = ce.FastText(
        corpus_file=LEE, vector_size=48, sg=sg, cbow_mean=1, alpha=alpha, window=5, negative=5,
        min_count=5, epochs=10, sample=1e-3, min_n=3, max_n=6, workers=1, min_alpha=0.0,
        bucket=BUCKET * (4 if sg else 1),
    )  # fmt: skip
    structural_sanity(model)
    sims = [w for w, _ in model.wv.most_similar("night", topn=10)]
    overlap = set(sims) & set(expected)
    assert len(overlap) >= 2, f"only {overlap} of {expected} in {sims}"


def test_trained_model_round_trips_through_facebook_format(tmp_path: Path) -> None:
    # gensim SaveFacebookFormatModelTest._check_roundtrip (negative sampling): trained, saved,
    # loaded by us and by gensim, with the same parameters and vectors.
    gensim_ft = pytest.importorskip("gensim.models.fasttext")
    model = ce.FastText(
        corpus_file=LEE, vector_size=10, min_count=1, seed=42, bucket=BUCKET, workers=1, epochs=2
    )
    path = tmp_path / "m.bin"
    ce.save_facebook_model(model, path)
    ours = ce.load_facebook_model(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = gensim_ft.load_facebook_model(str(path))
    for loaded in (ours, theirs):
        for attr in ["vector_size", "window", "epochs", "negative", "hs", "sg", "sample"]:
            assert getattr(loaded, attr) == getattr(model, attr), attr
        assert loaded.wv.bucket == model.wv.bucket
        assert (loaded.wv.min_n, loaded.wv.max_n) == (model.wv.min_n, model.wv.max_n)
        assert list(loaded.wv.index_to_key) == list(model.wv.index_to_key)
        for w in model.wv.index_to_key[:200] + ["nights", "unseenword"]:
            np.testing.assert_allclose(loaded.wv[w], model.wv[w], rtol=1e-6, atol=1e-7)


def test_not_implemented_and_invalid_parameters() -> None:
    with pytest.raises(NotImplementedError):
        ce.FastText(word_ngrams=2)
    for bad in [dict(vector_size=0), dict(bucket=-1), dict(window=-1), dict(epochs=2**40)]:
        with pytest.raises(ce.CandleEmbedValueError):
            ce.FastText(COMMON_TEXTS, min_count=1, **bad)
    with pytest.raises(ce.CandleEmbedValueError):  # window 0 is refused by the trainer
        ce.FastText(COMMON_TEXTS, min_count=1, bucket=10, window=0)
    with pytest.raises(ce.CandleEmbedValueError):
        ce.FastText(COMMON_TEXTS, min_count=100, bucket=10)  # empty vocabulary
    with pytest.raises(ce.CandleEmbedTypeError):
        ce.FastText("not a list of sentences", bucket=10)  # type: ignore[arg-type]
    with pytest.raises(ce.CandleEmbedValueError):
        ce.FastText(bucket=10).train(COMMON_TEXTS, corpus_file=LEE)
    m = ce.FastText(vector_size=4, max_n=2, min_n=3)
    assert m.wv.bucket == 0  # no n-gram lengths: no buckets (gensim)


def test_progress_callback_and_its_exception() -> None:
    seen: list[tuple[int, int]] = []
    ce.FastText(COMMON_TEXTS, min_count=1, bucket=100, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]

    def boom(done: int, total: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        ce.FastText(corpus_file=LEE, min_count=1, bucket=100, epochs=50, progress=boom)


def test_demo_lines_show_unseen_words() -> None:
    from candle_embed.fasttext.demo import demo_lines, misspellings, oov_neighbours

    model = ce.FastText(corpus_file=LEE, vector_size=24, min_count=3, bucket=20000, seed=1)
    typos = misspellings(model.wv, 3)
    assert len(typos) == 3 and not any(t in model.wv.key_to_index for t in typos)
    rows = oov_neighbours(model.wv, typos + ["the"], topn=3)
    assert [r[1] for r in rows] == [False, False, False, True]
    assert all(len(r[2]) == 3 for r in rows)
    lines = demo_lines([s.split() for s in LEE.read_text().splitlines()][:300], words=["nigth"])
    assert lines[0].startswith("fastText:") and "nigth (unseen)" in lines[1]

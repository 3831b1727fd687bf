"""Facebook fastText ``.bin`` files: every fastText ``.bin`` in gensim's test data read by our
loader and by gensim's (run live here) gives the same vocabulary, tables and vectors, in and
out of the vocabulary; the ``.vec`` files fastText wrote beside them agree; gensim's own
expectations are ported from ``gensim/test/test_fasttext.py`` (test names cited). Saving:
byte-identical to gensim's ``save_facebook_model`` of the same model, read back by gensim (and
by the ``fasttext`` package when it is installed)."""

from __future__ import annotations

import os
import shutil
import struct
import warnings
from pathlib import Path

import candle_embed as ce
import numpy as np
import pytest

gensim_ft = pytest.importorskip("gensim.models.fasttext")
from gensim.test.utils import datapath  # noqa: E402

DATA = Path(datapath(""))
#: Every fastText model in gensim's test data, with the encoding its words use.
FASTTEXT_BINS = {
    "lee_fasttext.bin": "utf-8",
    "lee_fasttext_new.bin": "utf-8",
    "non_ascii_fasttext.bin": "utf-8",
    "cp852_fasttext.bin": "cp852",
    "crime-and-punishment.bin": "utf-8",
    "toy-model.bin": "utf-8",
    "toy-model-pretrained.bin": "utf-8",
}
SUPERVISED = "pang_lee_polarity_fasttext.bin"
OOV_WORDS = ["rejection", "nights", "steamtrain", "паровоз", "který", "", "x", "🚑🚒", "b c"]


def gensim_vectors(name: str, encoding: str):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gensim_ft.load_facebook_vectors(str(DATA / name), encoding=encoding)


def looks_like_fasttext(path: Path) -> bool:
    """fastText's header (fastText ``FastText::checkModel`` / gensim ``_load_fasttext_format``):
    the magic 793712314 then the version, or (the old format, no magic) ``dim`` then ``ws``.
    gensim's loader itself takes any bytes as an old-format header, so it cannot tell."""
    magic, second = struct.unpack("<ii", path.read_bytes()[:8])
    return magic == 793712314 or (0 < magic <= 10_000 and 0 < second <= 1_000)


def test_the_list_covers_every_fasttext_bin_in_gensims_test_data() -> None:
    # Every .bin with fastText's header is listed (the supervised one refused by both loaders);
    # the others are word2vec / pickle binaries.
    found = {p.name for p in DATA.glob("*.bin") if looks_like_fasttext(p)}
    assert found == set(FASTTEXT_BINS) | {SUPERVISED}
    with pytest.raises(NotImplementedError):
        gensim_vectors(SUPERVISED, "utf-8")


@pytest.mark.parametrize("name", sorted(FASTTEXT_BINS))
def test_vectors_equal_gensims_loader(name: str) -> None:
    encoding = FASTTEXT_BINS[name]
    ours = ce.load_facebook_vectors(DATA / name, encoding=encoding)
    theirs = gensim_vectors(name, encoding)
    assert ours.index_to_key == theirs.index_to_key
    assert (ours.min_n, ours.max_n, ours.bucket) == (theirs.min_n, theirs.max_n, theirs.bucket)
    np.testing.assert_array_equal(ours.vectors_vocab, theirs.vectors_vocab)
    np.testing.assert_array_equal(ours.vectors_ngrams, theirs.vectors_ngrams)
    np.testing.assert_allclose(ours.vectors, theirs.vectors, rtol=1e-6, atol=1e-7)
    for w in OOV_WORDS + ours.index_to_key[:50]:
        np.testing.assert_allclose(ours[w], theirs[w], rtol=1e-6, atol=1e-7, err_msg=w)
        want = theirs.get_vector(w, norm=True)
        if np.isnan(want).all():  # gensim divides a zero vector by its zero norm
            assert not np.any(ours[w]) and np.isfinite(ours.get_vector(w, norm=True)).all()
            continue
        np.testing.assert_allclose(ours.get_vector(w, norm=True), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FASTTEXT_BINS))
def test_models_equal_gensims_loader(name: str) -> None:
    encoding = FASTTEXT_BINS[name]
    ours = ce.load_facebook_model(DATA / name, encoding=encoding)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = gensim_ft.load_facebook_model(str(DATA / name), encoding=encoding)
    for attr in ["vector_size", "window", "epochs", "negative", "hs", "sg", "min_count", "sample"]:
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert ours.corpus_total_words == theirs.corpus_total_words
    counts = [theirs.wv.get_vecattr(w, "count") for w in theirs.wv.index_to_key]
    np.testing.assert_array_equal(ours.counts, counts)
    if theirs.negative:
        np.testing.assert_array_equal(ours.syn1neg, theirs.syn1neg)
    if theirs.hs:
        np.testing.assert_array_equal(ours.syn1, theirs.syn1)


@pytest.mark.parametrize(
    ("vec", "name"),
    [
        ("lee_fasttext.vec", "lee_fasttext.bin"),
        ("crime-and-punishment.vec", "crime-and-punishment.bin"),
        ("toy-model.vec", "toy-model.bin"),
    ],
)
def test_vectors_equal_the_vec_file_fasttext_wrote(vec: str, name: str) -> None:
    # gensim NativeTrainingContinuationTest.test_in_vocab / FTHashResultsTest: fastText's own
    # print of every vocabulary vector (5 significant digits).
    kv = ce.load_facebook_vectors(DATA / name)
    text = ce.KeyedVectors.load_word2vec_format(DATA / vec)
    assert len(text) > 0
    for w in text.index_to_key:
        if w == "</s>":
            # fastText gives the end-of-sentence token no n-grams (dictionary.cc: `if (word !=
            # EOS_) computeSubwords`); gensim's loader gives it its n-grams, and so do we
            # (test_vectors_equal_gensims_loader).
            continue
        np.testing.assert_allclose(kv[w], text[w], rtol=1e-4, atol=1e-4, err_msg=w)


def test_gensim_expected_values_lee() -> None:
    # gensim TestFastTextModel.test_load_fasttext_format and test_load_fasttext_new_format.
    m = ce.load_facebook_model(DATA / "lee_fasttext.bin")
    assert m.wv.vectors.shape == (1762, 10)
    assert m.wv.vectors_ngrams.shape == (m.wv.bucket, 10)
    hundred = [-0.57144, -0.0085561, 0.15748, -0.67855, -0.25459,
               -0.58077, -0.09913, 1.1447, 0.23418, 0.060007]  # fmt: skip
    rejection = [-0.21929, -0.53778, -0.22463, -0.41735, 0.71737,
                 -1.59758, -0.24833, 0.62028, 0.53203, 0.77568]  # fmt: skip
    np.testing.assert_allclose(m.wv["hundred"], hundred, atol=1e-4)
    np.testing.assert_allclose(m.wv["rejection"], rejection, atol=1e-4)
    assert (m.min_count, m.window, m.epochs, m.negative, m.sample) == (5, 5, 5, 5, 0.0001)
    assert (m.wv.bucket, m.wv.max_n, m.wv.min_n) == (1000, 6, 3)

    new = ce.load_facebook_model(DATA / "lee_fasttext_new.bin")
    assert new.wv.vectors.shape == (1763, 10)
    hundred = [-0.025627, -0.11448, 0.18116, -0.96779, 0.2532,
               -0.93224, 0.3929, 0.12679, -0.19685, -0.13179]  # fmt: skip
    rejection = [-0.49111, -0.13122, -0.02109, -0.88769, -0.20105,
                 -0.91732, 0.47243, 0.19708, -0.17856, 0.19815]  # fmt: skip
    np.testing.assert_allclose(new.wv["hundred"], hundred, atol=1e-4)
    np.testing.assert_allclose(new.wv["rejection"], rejection, atol=1e-4)


def test_gensim_expected_values_hash_and_oov() -> None:
    # gensim FTHashResultsTest.test_out_of_vocab and NativeTrainingContinuationTest setUp
    # (values from `fasttext print-word-vectors`).
    kv = ce.load_facebook_vectors(DATA / "crime-and-punishment.bin")
    expected = {
        "steamtrain": [0.031988, 0.022966, 0.059483, 0.094547, 0.062693],
        "паровоз": [-0.0033987, 0.056236, 0.036073, 0.094008, 0.00085222],
        "rechtsschutzversicherungsgesellschaften": [
            -0.012889,
            0.029756,
            0.018020,
            0.099077,
            0.041939,
        ],
    }
    for w, v in expected.items():
        np.testing.assert_allclose(kv[w], v, atol=1e-5, err_msg=w)
    # test_load_native_vectors, test_no_ngrams
    assert "landlord" not in kv.key_to_index and "landlady" in kv.key_to_index
    assert not np.allclose(kv["landlord"], kv["landlady"])
    assert not np.any(kv[""])
    toy = ce.load_facebook_vectors(DATA / "toy-model.bin")
    oov = {
        "quick": [0.023393, 0.11499, 0.11684, -0.13349, 0.022543],
        "brown": [0.015288, 0.050404, -0.041395, -0.090371, 0.06441],
        "fox": [0.061692, 0.082914, 0.020081, -0.039159, 0.03296],
        "jumps": [0.070107, 0.081465, 0.051763, 0.012084, 0.0050402],
        "over": [0.055023, 0.03465, 0.01648, -0.11129, 0.094555],
        "lazy": [-0.022103, -0.020126, -0.033612, -0.049473, 0.0054174],
        "dog": [0.084983, 0.09216, 0.020204, -0.13616, 0.01118],
    }
    for w, v in oov.items():
        np.testing.assert_allclose(toy[w], v, atol=1e-5, err_msg=w)
    # test_load_native_pretrained
    pre = ce.load_facebook_model(DATA / "toy-model-pretrained.bin")
    np.testing.assert_allclose(
        pre.wv["monarchist"], [0.76222, 1.0669, 0.7055, -0.090969, -0.53508], atol=1e-3
    )


def test_non_ascii_and_cp852_vocabularies() -> None:
    # gensim test_load_model_with_non_ascii_vocab and test_load_model_non_utf8_encoding.
    m = ce.load_facebook_model(DATA / "non_ascii_fasttext.bin")
    assert "který" in m.wv and "který" in m.wv.key_to_index
    assert m.wv["který"].shape == (m.vector_size,)
    cp = ce.load_facebook_model(DATA / "cp852_fasttext.bin", encoding="cp852")
    assert "který" in cp.wv.key_to_index
    with pytest.raises(ce.CandleEmbedValueError, match="encoding"):
        ce.load_facebook_vectors(DATA / "toy-model.bin", encoding="no-such-codec")


def test_supervised_model_is_refused() -> None:
    # gensim test_load_model_supervised raises NotImplementedError; ours is a ValueError
    # naming the reason (the file holds label vectors, not a word table).
    with pytest.raises(ce.CandleEmbedValueError, match="supervised"):
        ce.load_facebook_model(DATA / SUPERVISED)
    with pytest.raises(ValueError, match="supervised"):
        ce.load_facebook_vectors(DATA / SUPERVISED)


@pytest.mark.parametrize("name", sorted(FASTTEXT_BINS))
def test_save_is_byte_identical_to_gensims_save(name: str, tmp_path: Path) -> None:
    # gensim SaveGensimByteIdentityTest, across loaders: the same model saved by gensim and by
    # us gives the same bytes; gensim then reads ours back with the same vectors.
    encoding = FASTTEXT_BINS[name]
    ours, theirs = tmp_path / "ours.bin", tmp_path / "theirs.bin"
    ce.save_facebook_model(ce.load_facebook_model(DATA / name, encoding=encoding), ours, encoding)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = gensim_ft.load_facebook_model(str(DATA / name), encoding=encoding)
        gensim_ft.save_facebook_model(g, str(theirs), encoding=encoding)
        back = gensim_ft.load_facebook_vectors(str(ours), encoding=encoding)
    assert ours.read_bytes() == theirs.read_bytes()
    for w in OOV_WORDS + g.wv.index_to_key[:20]:
        np.testing.assert_allclose(back[w], g.wv[w], rtol=1e-6, atol=1e-7)
    assert oct(os.stat(ours).st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_fasttext_package_reads_our_files(tmp_path: Path) -> None:
    # gensim SaveFacebookFormatReadingTest, with the `fasttext` package instead of the CLI.
    fasttext = pytest.importorskip("fasttext")
    path = tmp_path / "m.bin"
    m = ce.load_facebook_model(DATA / "lee_fasttext_new.bin")
    ce.save_facebook_model(m, path)
    fb = fasttext.load_model(str(path))
    for w in ["hundred", "rejection", "nights", "the"]:
        np.testing.assert_allclose(fb.get_word_vector(w), m.wv[w], rtol=1e-5, atol=1e-6)


def test_fasttext_cli_reads_our_files(tmp_path: Path) -> None:
    exe = shutil.which("fasttext")
    if exe is None:
        pytest.skip("the fasttext command is not installed")
    import subprocess

    path = tmp_path / "m.bin"
    m = ce.load_facebook_model(DATA / "toy-model.bin")
    ce.save_facebook_model(m, path)
    words = ["quick", "fox", "nights"]
    out = subprocess.run(
        [exe, "print-word-vectors", str(path)], input="\n".join(words).encode(),
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for w, line in zip(words, out.splitlines()):
        got = np.array([float(x) for x in line.split()[1:]], np.float32)
        np.testing.assert_allclose(got, m.wv[w], atol=1e-4)

"""Facebook fastText's ``.bin`` model files: ``load_facebook_model``,
``load_facebook_vectors`` and ``save_facebook_model`` (gensim's names, arguments and results).

Reading and writing are in Rust (``candle_embed._native._ft_read_bin`` / ``_ft_write_bin``):
every size in the file is bounded by the file's length before anything is allocated, and a
truncated, forged, supervised, quantized or otherwise unusable file is a ``ValueError``
(``CandleEmbedValueError``) naming the byte offset. Writing is atomic. Words are stored as
bytes; they are decoded here with ``encoding`` (undecodable bytes become ``\\xNN`` escapes, as
gensim does) and encoded with it on saving.
"""

from __future__ import annotations

import codecs
from os import PathLike, fspath
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from candle_embed import _native
from candle_embed._errors import CandleEmbedTypeError, CandleEmbedValueError, typed
from candle_embed._w2v_args import int_arg
from candle_embed.fasttext.keyed_vectors import FastTextKeyedVectors

if TYPE_CHECKING:
    from candle_embed.fasttext.model import FastText

_PathLike = Union[str, "PathLike[str]"]

LOSS_HS, LOSS_NS = 1, 2
MODEL_CBOW, MODEL_SG = 1, 2


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise CandleEmbedValueError(f"unknown encoding {encoding!r}") from None


def _read(path: _PathLike, encoding: str, full_model: bool) -> tuple[dict[str, Any], list[str]]:
    codec = _codec(encoding)
    raw = _native._ft_read_bin(fspath(path), full_model)
    words = [w.decode(codec, "backslashreplace") for w in raw["words"]]
    return raw, words


@typed
def load_facebook_vectors(path: _PathLike, encoding: str = "utf-8") -> FastTextKeyedVectors:
    """The word vectors of a fastText ``.bin`` model (the output layer is skipped): vectors
    for every word, in or out of the vocabulary, equal to gensim's
    ``gensim.models.fasttext.load_facebook_vectors``."""
    raw, words = _read(path, encoding, full_model=False)
    return FastTextKeyedVectors.from_tables(
        words, raw["input"], raw["minn"], raw["maxn"], raw["bucket"]
    )


@typed
def load_facebook_model(path: _PathLike, encoding: str = "utf-8") -> FastText:
    """A whole fastText ``.bin`` model: hyper-parameters, vocabulary with counts, the input
    table (``wv``) and the output layer (``syn1neg`` / ``syn1``), as gensim's
    ``gensim.models.fasttext.load_facebook_model``. Supervised, quantized (``.ftz``) and
    pruned models are refused (``ValueError``)."""
    from candle_embed.fasttext.model import FastText

    raw, words = _read(path, encoding, full_model=True)
    model = FastText(
        vector_size=raw["dim"],
        window=raw["ws"],
        epochs=raw["epoch"],
        negative=raw["neg"],
        hs=int(raw["loss"] == LOSS_HS),
        sg=int(raw["model"] == MODEL_SG),
        bucket=raw["bucket"],
        min_count=raw["min_count"],
        sample=raw["t"],
        min_n=raw["minn"],
        max_n=raw["maxn"],
    )
    model.wv = FastTextKeyedVectors.from_tables(
        words, raw["input"], raw["minn"], raw["maxn"], raw["bucket"]
    )
    model.counts = raw["counts"].astype(np.uint64)
    model.corpus_total_words = int(raw["ntokens"])
    model.set_output_layer(raw["output"])
    return model


@typed
def save_facebook_model(
    model: FastText,
    path: _PathLike,
    encoding: str = "utf-8",
    lr_update_rate: int = 100,
    word_ngrams: int = 1,
) -> None:
    """Write ``model`` as a fastText ``.bin`` file (format version 12), atomically: what
    gensim's ``save_facebook_model`` writes, readable by ``fasttext`` and gensim.
    ``lr_update_rate`` and ``word_ngrams`` are stored for fastText (unused here)."""
    from candle_embed.fasttext.model import FastText

    if not isinstance(model, FastText):
        raise CandleEmbedTypeError(
            f"model must be a candle_embed.FastText, got {type(model).__name__}"
        )
    codec = _codec(encoding)
    wv = model.wv
    output = model.output_layer()
    try:
        words = [w.encode(codec) for w in wv.index_to_key]
    except UnicodeError as e:
        raise CandleEmbedValueError(f"a word cannot be encoded as {encoding}: {e}") from None
    if wv.vectors_vocab.shape[0] != len(words):
        raise CandleEmbedValueError(
            f"the vocabulary has {len(words)} words but vectors_vocab {wv.vectors_vocab.shape[0]} "
            "rows (words added with add_vector have no fastText row)"
        )
    counts = np.asarray(model.counts)
    if counts.shape != (len(words),):
        raise CandleEmbedValueError(f"model.counts must hold {len(words)} counts")
    _native._ft_write_bin(
        fspath(path),
        words,
        [int(c) for c in counts],
        wv._input,
        output,
        ws=model.window,
        epoch=model.epochs,
        min_count=model.min_count,
        neg=model.negative,
        word_ngrams=int_arg("word_ngrams", word_ngrams, 0, 2**31),
        loss=LOSS_HS if model.hs else LOSS_NS,
        model=MODEL_SG if model.sg else MODEL_CBOW,
        bucket=wv.bucket,
        minn=wv.min_n,
        maxn=wv.max_n,
        lr_update_rate=int_arg("lr_update_rate", lr_update_rate, 0, 2**31),
        t=model.sample,
        ntokens=model.corpus_total_words,
    )

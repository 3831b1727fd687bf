"""candle-embed: embedding lookup, EmbeddingBag, positional encodings and sparse-gradient
training on candle, with NumPy arrays in and out.

The compiled module ``candle_embed._native`` does the work; this package re-exports it and adds
the pure-Python parts.
"""

from __future__ import annotations

from candle_embed import optim
from candle_embed._errors import (
    CandleEmbedAttributeError,
    CandleEmbedError,
    CandleEmbedIndexError,
    CandleEmbedKeyError,
    CandleEmbedMemoryError,
    CandleEmbedNotImplementedError,
    CandleEmbedOSError,
    CandleEmbedRuntimeError,
    CandleEmbedTypeError,
    CandleEmbedValueError,
)
from candle_embed._native import (
    Embedding,
    EmbeddingBag,
    LearnedPositionalEmbedding,
    QuantizedEmbedding,
    QuantizedEmbeddingBag,
    RelativePositionBias,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    SparseGrad,
    TransformerEmbeddings,
    TransformerEmbeddingsState,
    __version__,
    alibi_bias,
    alibi_slopes,
    coalesce,
    devices,
    get_num_threads,
    index_add,
    position_ids_from_padding,
    relative_position_bucket,
    set_num_threads,
)
from candle_embed.callbacks import CallbackAny2Vec
from candle_embed.corpora import LineSentence, PathLineSentences
from candle_embed.fasttext import (
    FastText,
    FastTextKeyedVectors,
    load_facebook_model,
    load_facebook_vectors,
    save_facebook_model,
)
from candle_embed.keyed_vectors import KeyedVectors, QuantizedKeyedVectors
from candle_embed.plot import plot_embeddings
from candle_embed.word2vec import Word2Vec

__all__ = [
    "CallbackAny2Vec",
    "CandleEmbedAttributeError",
    "CandleEmbedError",
    "CandleEmbedIndexError",
    "CandleEmbedKeyError",
    "CandleEmbedMemoryError",
    "CandleEmbedNotImplementedError",
    "CandleEmbedOSError",
    "CandleEmbedRuntimeError",
    "CandleEmbedTypeError",
    "CandleEmbedValueError",
    "Embedding",
    "EmbeddingBag",
    "FastText",
    "FastTextKeyedVectors",
    "KeyedVectors",
    "LearnedPositionalEmbedding",
    "LineSentence",
    "PathLineSentences",
    "QuantizedEmbedding",
    "QuantizedEmbeddingBag",
    "QuantizedKeyedVectors",
    "RelativePositionBias",
    "RotaryEmbedding",
    "SinusoidalPositionalEncoding",
    "SparseGrad",
    "TransformerEmbeddings",
    "TransformerEmbeddingsState",
    "Word2Vec",
    "__version__",
    "alibi_bias",
    "alibi_slopes",
    "coalesce",
    "devices",
    "get_num_threads",
    "index_add",
    "load_facebook_model",
    "load_facebook_vectors",
    "optim",
    "plot_embeddings",
    "position_ids_from_padding",
    "relative_position_bucket",
    "save_facebook_model",
    "set_num_threads",
]

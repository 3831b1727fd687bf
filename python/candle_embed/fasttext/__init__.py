"""FastText: subword word vectors (a vector for any word) and Facebook's ``.bin`` format.

- :class:`FastText`: training (gensim's names), ``model.wv`` a :class:`FastTextKeyedVectors`;
- :func:`load_facebook_model`, :func:`load_facebook_vectors`, :func:`save_facebook_model`;
- :func:`oov_neighbours`: nearest vocabulary words of words the model never saw (the demo).
"""

from __future__ import annotations

from candle_embed.fasttext.demo import oov_neighbours
from candle_embed.fasttext.facebook import (
    load_facebook_model,
    load_facebook_vectors,
    save_facebook_model,
)
from candle_embed.fasttext.keyed_vectors import FastTextKeyedVectors
from candle_embed.fasttext.model import FastText

__all__ = [
    "FastText",
    "FastTextKeyedVectors",
    "load_facebook_model",
    "load_facebook_vectors",
    "oov_neighbours",
    "save_facebook_model",
]

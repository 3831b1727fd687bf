"""``KeyedVectors``: keys (words) and their vectors, gensim's names and semantics.

The class is built in layers, one module each: the container (``_base``: keys, vectors,
per-key attributes, norms), the queries (``_queries``: similarity methods on the Rust kernels),
the evaluations (``_evaluate``) and the files (``_files``: word2vec formats, safetensors save and
memory-mapped load). ``QuantizedKeyedVectors`` (``_quantized``, from ``KeyedVectors.quantize``)
answers the same queries from int8 rows. Everything it raises is a
``candle_embed.CandleEmbedError``.
"""

from __future__ import annotations

from candle_embed.keyed_vectors._files import KeyedVectors, format_for_path
from candle_embed.keyed_vectors._quantized import QuantizedKeyedVectors

__all__ = ["KeyedVectors", "QuantizedKeyedVectors", "format_for_path"]

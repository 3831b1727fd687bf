"""An independent float64 NumPy reference of fastText's word vectors, written from fastText's
C++ source (``src/dictionary.cc``: ``Dictionary::hash``, ``computeSubwords``, ``initNgrams``;
``src/fasttext.cc``: ``getWordVector``), not from candle_embed's code:

- ``hash``: FNV-1a over the bytes, each byte read as a *signed* char
  (``h = (h ^ uint32_t(int8_t(c))) * 16777619``);
- n-grams of ``"<" + word + ">"``: for each character start ``i`` (a byte that is not
  ``0b10xxxxxx``), lengths ``n = 1..maxn`` characters, kept when ``n >= minn`` except the
  one-character ``"<"`` and ``">"``; row ``nwords + hash % bucket``;
- a word's vector: the mean of its rows (its own row first when in the vocabulary).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def ft_hash(data: bytes) -> int:
    h = 2166136261
    for b in data:
        signed = b - 256 if b >= 128 else b
        h = ((h ^ (signed & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
    return h


def ngrams(word: str, minn: int, maxn: int) -> list[bytes]:
    w = b"<" + word.encode("utf-8") + b">"
    out = []
    for i in range(len(w)):
        if w[i] & 0xC0 == 0x80:
            continue
        j, n = i, 1
        while j < len(w) and n <= maxn:
            j += 1
            while j < len(w) and w[j] & 0xC0 == 0x80:
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == len(w))):
                out.append(w[i:j])
            n += 1
    return out


def rows(word: str, own: int | None, nwords: int, minn: int, maxn: int, bucket: int) -> list[int]:
    grams = ngrams(word, minn, maxn) if bucket > 0 else []
    own_rows = [] if own is None else [own]
    return own_rows + [nwords + ft_hash(g) % bucket for g in grams]


def word_vector(
    table: npt.NDArray[np.floating],
    word: str,
    own: int | None,
    nwords: int,
    minn: int,
    maxn: int,
    bucket: int,
) -> npt.NDArray[np.float64]:
    r = rows(word, own, nwords, minn, maxn, bucket)
    if not r:
        return np.zeros(table.shape[1])
    return np.asarray(table, np.float64)[r].mean(axis=0)

"""FastText skip-gram's per-pair update (the Hogwild path's loop, ``candle_embed::fasttext::
train::sg_sentence_on_tables`` through ``_testing.ft_sg_sentence``) against a float64 NumPy
transcription of the reference implementations:

- the loop: gensim's ``fasttext_inner.pyx::fasttext_train_any`` (every centre ``i``, every
  ``j != i`` of its window) calling ``fasttext_fast_sentence_sg_neg(c, i, j)``: the *centre*
  word's bag is the input and the context word ``c.indexes[j]`` the target (fastText's
  ``FastText::skipgram``: ``model_->update(getSubwords(line[w]), line, w + c, ...)``);
- the input: fastText's ``Model::computeHidden``, the mean of the bag (the word's own row and
  its n-gram rows), recomputed for every pair;
- the targets: the true word with label 1, then ``negative`` noise words with label 0 (a draw
  equal to the target is skipped), each ``g = (label - sigma(h . out[t])) * alpha``,
  ``work += g * out[t]``, ``out[t] += g * h``, skipped when ``|h . out[t]| >= 6``, sigma read
  from gensim's ``EXP_TABLE`` (``word2vec_inner.pyx``: 1000 points on [-6, 6));
- the gradient: ``work`` added, unscaled, to every row of the centre's bag (gensim's
  ``our_saxpy(..., c.work, ..., syn0_ngrams[...])`` per subword; fastText's ``Model::update``
  outside supervised mode).

The hook fixes the trainer's random draws (full windows, no subsampling, every noise word 0),
so the comparison is exact up to float32 rounding. Two conventions the code must *not* follow
are checked to be far outside the tolerance: the context word's bag as the input (word2vec's
order) and gensim's skip-gram normalisation by the number of n-grams only
(``norm_factor = ONEF / subwords_len``, which leaves the word's own row out of the count).
"""

from __future__ import annotations

import candle_embed as ce
import numpy as np
import numpy.typing as npt
import pytest
from candle_embed._native import _testing

EXP_TABLE_SIZE, MAX_EXP = 1000, 6.0
NWORDS, BUCKET, DIM = 6, 5, 8
# word w: its own row w, then n-gram rows NWORDS + k (shared between words; one repeated)
BAGS = [[0, 6, 7], [1, 7, 8, 8], [2], [3, 9, 10], [4, 6], [5, 8, 9, 10]]
SENTENCE = [1, 2, 0, 3, 4, 5, 2, 1, 3]
WINDOW, NEGATIVE, ALPHA = 2, 2, 0.2
HOW = (WINDOW, NEGATIVE, ALPHA)

F64 = npt.NDArray[np.float64]


def sigmoid_table(f: float) -> float:
    """gensim's ``EXP_TABLE[<int>((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))]``."""
    i = min(int((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2)), EXP_TABLE_SIZE - 1)
    x = (i / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP
    return float(np.exp(x) / (np.exp(x) + 1))


def sg_sentence_ref(
    inp: F64, out: F64, *, centre_input: bool = True, word_row_counted: bool = True
) -> tuple[F64, F64]:
    inp, out = inp.astype(np.float64), out.astype(np.float64)
    n = len(SENTENCE)
    for i in range(n):
        for j in range(max(0, i - WINDOW), min(n, i + WINDOW + 1)):
            if j == i:
                continue
            src, target = (SENTENCE[i], SENTENCE[j]) if centre_input else (SENTENCE[j], SENTENCE[i])
            bag = BAGS[src]
            count = len(bag) if word_row_counted or len(bag) == 1 else len(bag) - 1
            h = inp[bag].sum(axis=0) / count
            work = np.zeros(DIM)
            for t, label in [(target, 1.0)] + [(0, 0.0)] * NEGATIVE:
                if label == 0.0 and t == target:
                    continue
                f = float(h @ out[t])
                if abs(f) >= MAX_EXP:
                    continue
                g = (label - sigmoid_table(f)) * ALPHA
                work += g * out[t]
                out[t] += g * h
            for r in bag:
                inp[r] += work
    return inp, out


def test_sg_sentence_matches_the_reference_update() -> None:
    rng = np.random.default_rng(7)
    inp = rng.uniform(-0.5, 0.5, (NWORDS + BUCKET, DIM)).astype(np.float32)
    out = rng.uniform(-0.5, 0.5, (NWORDS, DIM)).astype(np.float32)
    got_in, got_out = _testing.ft_sg_sentence(inp, BAGS, out, SENTENCE, HOW)
    want_in, want_out = sg_sentence_ref(inp, out)
    # the updates are of the order of the tables: a wrong convention moves them by far more
    change = np.abs(want_in - inp).max()
    assert change > 0.1
    np.testing.assert_allclose(got_in, want_in, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got_out, want_out, rtol=0, atol=1e-5)
    for wrong in (dict(centre_input=False), dict(word_row_counted=False)):
        other_in, _ = sg_sentence_ref(inp, out, **wrong)
        assert np.abs(other_in - want_in).max() > 1e-2, wrong


def test_sg_sentence_hook_rejects_a_word_outside_the_bags() -> None:
    inp = np.zeros((NWORDS + BUCKET, DIM), np.float32)
    out = np.zeros((NWORDS, DIM), np.float32)
    with pytest.raises(ce.CandleEmbedError):
        _testing.ft_sg_sentence(inp, BAGS, out, [0, NWORDS], HOW)
    with pytest.raises(ce.CandleEmbedError):
        _testing.ft_sg_sentence(inp, BAGS, out[:-1], [0, 1], HOW)

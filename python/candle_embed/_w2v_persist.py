"""``Word2Vec.save`` / ``Word2Vec.load``: the native tables and vocabulary go to one
safetensors file (``_native._W2VModel.save``), the Python-side settings and training state
(``_SAVED``) with them as JSON, never pickled."""

from __future__ import annotations

import json
from os import PathLike, fspath
from typing import Any, Union

from candle_embed import _native
from candle_embed._errors import CandleEmbedValueError

_PathLike = Union[str, "PathLike[str]"]
_SAVED = (
    "alpha min_alpha epochs workers min_count sample max_vocab_size max_final_vocab sorted_vocab "
    "batch_words compute_loss running_training_loss min_alpha_yet_reached corpus_count "
    "corpus_total_words train_count total_train_time effective_min_count _session"
).split()


def save_model(m: Any, fname: _PathLike) -> None:
    """Write ``m``'s native model with its ``_SAVED`` attributes (and ``cbow_mean``,
    ``deterministic``, ``minibatch``)."""
    state = {k: getattr(m, k) for k in _SAVED}
    state["cbow_mean"] = m.cbow_mean
    state["deterministic"], state["minibatch"] = m.deterministic, m.minibatch
    m._native.save(fspath(fname), json.dumps(state))


def load_model(m: Any, fname: _PathLike) -> None:
    """Fill the bare instance ``m`` (``Word2Vec.__new__``) from a file ``save_model`` wrote."""
    native, state_json = _native._W2VModel.load(fspath(fname))
    state = json.loads(state_json)
    if not isinstance(state, dict):
        raise CandleEmbedValueError(f"{fspath(fname)}: no model state in the file")
    m._native = native
    m.stats = {}
    m._scanned = None
    m._report = {}
    p = native.params()
    m.vector_size = m.layer1_size = p["vector_size"]
    m.sg, m.hs, m.negative = int(p["sg"]), int(p["hs"]), p["negative"]
    m.cbow_mean, m.window = int(p["cbow_mean"]), p["window"]
    m.shrink_windows, m.ns_exponent, m.seed = p["shrink_windows"], p["ns_exponent"], p["seed"]
    try:
        for k in _SAVED:
            setattr(m, k, state[k])
    except KeyError as e:
        raise CandleEmbedValueError(f"{fspath(fname)}: the model state lacks {e}") from None
    # files written before these keywords train the default way
    m.deterministic = bool(state.get("deterministic", False))
    m.minibatch = bool(state.get("minibatch", False))

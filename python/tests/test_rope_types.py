"""Every RoPE type of transformers 5.x (``ROPE_INIT_FUNCTIONS``: linear, dynamic, yarn,
longrope, llama3, proportional; plus "default") and the stateful dynamic mode, against the
float64 references of ``rope_refs.py`` (issue #18 item 1)."""

from __future__ import annotations

from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed._native import _testing
from rope_refs import DynamicUpdateRef, ref_apply, ref_inv_freq

RNG = np.random.default_rng(18)
LAYOUTS = ["half", "interleaved"]

# One configuration per type of transformers 5.x's ROPE_INIT_FUNCTIONS, and "default".
TYPES: dict[str, dict[str, Any]] = {
    "default": {"rope_type": "default"},
    "linear": {"rope_type": "linear", "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0},
    "yarn": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 64},
    "longrope": {
        "rope_type": "longrope",
        "short_factor": list(np.linspace(1.0, 1.5, 16)),
        "long_factor": list(np.linspace(1.0, 9.0, 16)),
        "original_max_position_embeddings": 64,
    },
    "llama3": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    },
    "proportional": {"rope_type": "proportional", "partial_rotary_factor": 0.25},
}


def test_every_transformers_rope_type_is_known() -> None:
    # TYPES holds one entry per key of transformers 5.x modeling_rope_utils.ROPE_INIT_FUNCTIONS,
    # plus "default"; the error for an unknown type lists every type the library knows.
    with pytest.raises(ValueError, match="proportional") as e:
        ce.RotaryEmbedding(32, scaling={"rope_type": "ntk"})
    known = str(e.value).split("expected one of ")[1].split(", ")
    assert sorted(known) == sorted(TYPES)


@pytest.mark.parametrize("kind", sorted(TYPES))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_type_frequencies_and_rotation(kind: str, layout: str) -> None:
    sc = TYPES[kind]
    head, max_pos, base = 32, 256, 5e4
    r = ce.RotaryEmbedding(
        head, base=base, max_position_embeddings=max_pos, layout=layout, scaling=sc
    )
    assert r.rope_type == kind
    inv0, att = ref_inv_freq(sc, base, head, max_pos)
    np.testing.assert_allclose(r.inv_freq, inv0, rtol=1e-13, atol=0)
    assert r.attention_scaling == pytest.approx(att, rel=1e-14)
    # calls short and long enough to switch the length-dependent types
    for pos in [RNG.integers(0, 200, size=12), RNG.integers(300, 5000, size=12)]:
        seq_len = int(pos.max()) + 1
        inv, att = ref_inv_freq(sc, base, head, max_pos, seq_len)
        np.testing.assert_allclose(r.frequencies(seq_len), inv, rtol=1e-13, atol=0)
        x = RNG.standard_normal((2, 3, 12, head))
        want = ref_apply(x, pos, inv, att, r.rotary_dim, layout)
        np.testing.assert_allclose(r.apply(x, pos), want, rtol=1e-11, atol=1e-11)
        back = ref_apply(x, pos, inv, att, r.rotary_dim, layout, sign=-1.0)
        np.testing.assert_allclose(r.apply_backward(x, pos), back, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(
            _testing.rope_apply_portable(r, x, pos), want, rtol=1e-11, atol=1e-11
        )


# ---------------------------------------------------------------- proportional (Gemma 4)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("partial", "factor"), [(0.25, 1.0), (0.25, 2.0), (0.5, 1.0), (1.0, 4.0), (0.0, 1.0)]
)
def test_proportional_rotates_the_whole_head_with_zero_tail(
    layout: str, partial: float, factor: float
) -> None:
    head, base = 64, 1e6
    sc: dict[str, Any] = {"rope_type": "proportional", "factor": factor}
    r = ce.RotaryEmbedding(
        head, base=base, partial_rotary_factor=partial, layout=layout, scaling=sc
    )
    assert r.rotary_dim == head and r.attention_scaling == 1.0
    live = int(partial * head // 2)
    inv = r.inv_freq
    assert inv.shape == (head // 2,)
    # the exponents run over the whole head_dim, not over the live part
    want = 1.0 / base ** (np.arange(0, 2 * live, 2) / head) / factor
    np.testing.assert_allclose(inv[:live], want, rtol=1e-14)
    np.testing.assert_array_equal(inv[live:], 0.0)
    np.testing.assert_allclose(
        inv, ref_inv_freq(dict(sc, partial_rotary_factor=partial), base, head, 0)[0]
    )
    x = RNG.standard_normal((2, 4, 9, head))
    pos = RNG.integers(0, 10_000, size=9)
    y = r.apply(x, pos)
    np.testing.assert_allclose(y, ref_apply(x, pos, inv, 1.0, head, layout), atol=1e-11)
    # pairs with a zero frequency pass through bit for bit
    if layout == "half":
        keep = np.r_[live : head // 2, head // 2 + live : head]
    else:
        keep = np.arange(2 * live, head)
    np.testing.assert_array_equal(y[..., keep], x[..., keep])


def test_proportional_reads_partial_rotary_factor_from_the_dict() -> None:
    sc = {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1e6}
    a = ce.RotaryEmbedding(128, scaling=sc)
    b = ce.RotaryEmbedding(
        128, base=1e6, partial_rotary_factor=0.25, scaling={"rope_type": "proportional"}
    )
    np.testing.assert_array_equal(a.inv_freq, b.inv_freq)
    assert (a.partial_rotary_factor, a.base, np.count_nonzero(a.inv_freq)) == (0.25, 1e6, 16)
    # a partial factor of 0 is valid only for proportional (nothing rotates)
    with pytest.raises(ValueError, match="partial_rotary_factor"):
        ce.RotaryEmbedding(128, partial_rotary_factor=0.0)
    for bad in [-0.1, 1.5, float("nan")]:
        with pytest.raises(ValueError, match="partial_rotary_factor"):
            ce.RotaryEmbedding(
                128, partial_rotary_factor=bad, scaling={"rope_type": "proportional"}
            )
    for bad_factor in [0.0, -2.0]:
        with pytest.raises(ValueError, match="factor"):
            ce.RotaryEmbedding(128, scaling={"rope_type": "proportional", "factor": bad_factor})
    with pytest.raises(TypeError):
        ce.RotaryEmbedding(128, scaling={"rope_type": "proportional", "factor": "2"})


# ---------------------------------------------------------------- stateful dynamic


def run_calls(r: ce.RotaryEmbedding, ref: DynamicUpdateRef, lengths: list[int], head: int) -> None:
    for n in lengths:
        pos = np.arange(n)
        inv = ref.forward(pos)
        x = RNG.standard_normal((1, n, head))
        np.testing.assert_allclose(
            r.apply(x, pos), ref_apply(x, pos, inv, 1.0, head, "half"), rtol=1e-11, atol=1e-11
        )
        assert r.max_seq_len_cached == ref.max_seq_len_cached, n


def test_stateful_dynamic_keeps_the_longest_length_like_transformers() -> None:
    head, max_pos = 32, 64
    sc = {"rope_type": "dynamic", "factor": 2.0}
    r = ce.RotaryEmbedding(head, max_position_embeddings=max_pos, scaling=sc, stateful_dynamic=True)
    assert r.stateful_dynamic and r.max_seq_len_cached == max_pos
    ref = DynamicUpdateRef(sc, 1e4, head, max_pos)
    # grow, keep (shorter but past max_pos), grow, reset (< max_pos), grow again, equal length
    run_calls(r, ref, [10, 200, 100, 64, 300, 250, 50, 120, 120, 63, 64], head)
    # a stateless embedding follows each call's own length instead
    s = ce.RotaryEmbedding(head, max_position_embeddings=max_pos, scaling=sc)
    assert not s.stateful_dynamic
    x = RNG.standard_normal((1, 100, head))
    r.apply(RNG.standard_normal((1, 300, head)))
    kept = ref_inv_freq(sc, 1e4, head, max_pos, 300)[0]
    own = ref_inv_freq(sc, 1e4, head, max_pos, 100)[0]
    np.testing.assert_allclose(
        r.apply(x), ref_apply(x, np.arange(100), kept, 1.0, head, "half"), atol=1e-11
    )
    np.testing.assert_allclose(
        s.apply(x), ref_apply(x, np.arange(100), own, 1.0, head, "half"), atol=1e-11
    )


def test_stateful_dynamic_state_moves_only_on_calls() -> None:
    head, max_pos = 16, 32
    sc = {"rope_type": "dynamic", "factor": 4.0}
    r = ce.RotaryEmbedding(head, max_position_embeddings=max_pos, scaling=sc, stateful_dynamic=True)
    # frequencies() is a query: it says what a call would use, and moves nothing
    np.testing.assert_allclose(r.frequencies(100), ref_inv_freq(sc, 1e4, head, max_pos, 100)[0])
    assert r.max_seq_len_cached == max_pos
    # cos_sin and apply_backward are calls (transformers' forward returns cos/sin)
    r.cos_sin(np.arange(100))
    assert r.max_seq_len_cached == 100
    r.apply_backward(np.zeros((2, 150, head)))
    assert r.max_seq_len_cached == 150
    # offsets count: positions offset..offset+T-1
    r.apply(np.zeros((1, 5, head)), offset=195)
    assert r.max_seq_len_cached == 200
    # the kept frequencies answer shorter queries, a reset length the original ones
    np.testing.assert_allclose(r.frequencies(40), ref_inv_freq(sc, 1e4, head, max_pos, 200)[0])
    np.testing.assert_allclose(r.frequencies(20), r.inv_freq)
    # rejected calls leave the state unchanged
    x = np.zeros((2, 5, head))
    with pytest.raises(ValueError):
        r.apply(x, np.arange(4) + 1000)  # T mismatch
    with pytest.raises(IndexError):
        r.apply(x, offset=-1)
    with pytest.raises(ValueError):
        r.apply(np.zeros((2, 5, head + 2)), offset=5000)
    assert r.max_seq_len_cached == 200
    # a switch that only "dynamic" reads: other types behave as without it
    y = ce.RotaryEmbedding(head, scaling=TYPES["linear"], stateful_dynamic=True)
    y.apply(np.zeros((1, 5000, head)))
    assert y.max_seq_len_cached == 2048


def test_stateful_dynamic_threads_agree_with_some_order() -> None:
    from concurrent.futures import ThreadPoolExecutor

    head, max_pos = 16, 32
    sc = {"rope_type": "dynamic", "factor": 2.0}
    r = ce.RotaryEmbedding(head, max_position_embeddings=max_pos, scaling=sc, stateful_dynamic=True)
    lengths = [40, 400, 90, 20, 300, 33] * 5
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda n: r.apply(np.zeros((1, n, head))), lengths))
    # whatever the interleaving, the state is one a serial run of some order could leave
    assert r.max_seq_len_cached in {max_pos, *lengths}

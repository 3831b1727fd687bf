"""RotaryEmbedding against float64 NumPy references of the formulas (semantics.md §3.3-3.4)."""

from __future__ import annotations

import math
from typing import Any

import candle_embed as ce
import numpy as np
import pytest
from candle_embed._native import _testing
from rope_refs import ref_apply, ref_default_inv_freq, ref_inv_freq

RNG = np.random.default_rng(7)
LAYOUTS = ["half", "interleaved"]

# ---------------------------------------------------------------- frequencies


def test_default_inv_freq_and_properties() -> None:
    r = ce.RotaryEmbedding(64, base=10000.0)
    np.testing.assert_allclose(r.inv_freq, ref_default_inv_freq(1e4, 64), rtol=1e-15)
    assert r.inv_freq.dtype == np.float64
    assert r.attention_scaling == 1.0
    assert (r.head_dim, r.rotary_dim, r.layout, r.rope_type) == (64, 64, "half", "default")
    assert r.max_position_embeddings == 2048 and r.partial_rotary_factor == 1.0


def test_llama3_spot_values() -> None:
    sc = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    r = ce.RotaryEmbedding(128, base=5e5, max_position_embeddings=131072, scaling=sc)
    inv = r.inv_freq
    assert inv[0] == 1.0
    plain = ref_default_inv_freq(5e5, 128)
    assert plain[63] == pytest.approx(2.455e-6, rel=1e-3)
    assert inv[63] == pytest.approx(3.069e-7, rel=1e-3)
    assert inv[63] == pytest.approx(plain[63] / 8, rel=1e-12)
    ref, att = ref_inv_freq(sc, 5e5, 128, 131072)
    np.testing.assert_allclose(inv, ref, rtol=1e-13)
    assert r.attention_scaling == att == 1.0
    # some frequencies are in the smoothed band (neither kept nor divided)
    medium = (inv != plain) & ~np.isclose(inv, plain / 8, rtol=1e-12)
    assert medium.any()


def test_yarn_spot_values() -> None:
    sc = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096}
    r = ce.RotaryEmbedding(128, base=1e4, max_position_embeddings=16384, scaling=sc)
    assert r.attention_scaling == pytest.approx(1.13863, abs=1e-5)
    assert r.attention_scaling == pytest.approx(0.1 * math.log(4) + 1, rel=1e-15)
    ref, att = ref_inv_freq(sc, 1e4, 128, 16384)
    np.testing.assert_allclose(r.inv_freq, ref, rtol=1e-13)
    # low = 20, high = 46: below 20 extrapolated (unchanged), from 46 interpolated (/factor)
    plain = ref_default_inv_freq(1e4, 128)
    np.testing.assert_allclose(r.inv_freq[:21], plain[:21], rtol=1e-13)
    assert r.inv_freq[21] != pytest.approx(plain[21], rel=1e-6)
    np.testing.assert_allclose(r.inv_freq[46:], plain[46:] / 4, rtol=1e-13)
    assert r.inv_freq[45] != pytest.approx(plain[45] / 4, rel=1e-6)


@pytest.mark.parametrize(
    "sc",
    [
        {"rope_type": "linear", "factor": 2.0},
        {"type": "linear", "factor": 4},
        {"rope_type": "yarn", "factor": 8.0, "beta_fast": 16, "beta_slow": 2, "truncate": False},
        {"rope_type": "yarn", "factor": 40, "mscale": 1.0, "mscale_all_dim": 0.707},
        {"rope_type": "yarn", "factor": 2.0, "attention_factor": 0.9},
        {
            "rope_type": "llama3",
            "factor": 32.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 1024,
        },
        {"rope_type": "default"},
    ],
)
def test_scaling_inv_freq_matches_reference(sc: dict[str, Any]) -> None:
    r = ce.RotaryEmbedding(64, base=5e4, max_position_embeddings=4096, scaling=sc)
    ref, att = ref_inv_freq(sc, 5e4, 64, 4096)
    np.testing.assert_allclose(r.inv_freq, ref, rtol=1e-13)
    assert r.attention_scaling == pytest.approx(att, rel=1e-14)


def test_dynamic_recomputes_past_max_positions() -> None:
    sc = {"rope_type": "dynamic", "factor": 2.0}
    r = ce.RotaryEmbedding(32, max_position_embeddings=64, scaling=sc)
    base_freq = ref_default_inv_freq(1e4, 32)
    np.testing.assert_allclose(r.inv_freq, base_freq, rtol=1e-14)
    np.testing.assert_allclose(r.frequencies(64), base_freq, rtol=1e-14)
    long = r.frequencies(200)
    np.testing.assert_allclose(long, ref_inv_freq(sc, 1e4, 32, 64, 200)[0], rtol=1e-13)
    assert long[-1] < base_freq[-1] and long[0] == 1.0
    # apply uses the frequencies of max(position) + 1
    x = RNG.standard_normal((2, 100, 32))
    got = r.apply(x)
    np.testing.assert_allclose(got, ref_apply(x, np.arange(100), long_at(r, 100), 1.0, 32, "half"))
    short = r.apply(x[:, :50])
    np.testing.assert_allclose(
        short, ref_apply(x[:, :50], np.arange(50), base_freq, 1.0, 32, "half"), rtol=1e-12
    )
    assert not np.allclose(got[:, :50], short)


def long_at(r: ce.RotaryEmbedding, n: int) -> np.ndarray:
    return ref_inv_freq({"rope_type": "dynamic", "factor": 2.0}, 1e4, 32, 64, n)[0]


def test_longrope_switches_at_original_length() -> None:
    short = list(np.linspace(1.0, 2.0, 8))
    long = list(np.linspace(1.0, 16.0, 8))
    sc = {
        "rope_type": "longrope",
        "short_factor": short,
        "long_factor": long,
        "original_max_position_embeddings": 32,
    }
    r = ce.RotaryEmbedding(16, base=1e4, max_position_embeddings=128, scaling=sc)
    ref_s, att = ref_inv_freq(sc, 1e4, 16, 128, None)
    ref_l, _ = ref_inv_freq(sc, 1e4, 16, 128, 33)
    assert att == pytest.approx(math.sqrt(1 + math.log(4) / math.log(32)), rel=1e-15)
    assert r.attention_scaling == pytest.approx(att, rel=1e-15)
    np.testing.assert_allclose(r.inv_freq, ref_s, rtol=1e-14)
    np.testing.assert_allclose(r.frequencies(32), ref_s, rtol=1e-14)
    np.testing.assert_allclose(r.frequencies(33), ref_l, rtol=1e-14)
    x = RNG.standard_normal((3, 33, 16))
    np.testing.assert_allclose(
        r.apply(x), ref_apply(x, np.arange(33), ref_l, att, 16, "half"), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        r.apply(x[:, :32]), ref_apply(x[:, :32], np.arange(32), ref_s, att, 16, "half"), atol=1e-12
    )
    # explicit factor and attention factor win
    sc2 = dict(sc, factor=2.0)
    assert ce.RotaryEmbedding(16, scaling=sc2).attention_scaling == pytest.approx(
        math.sqrt(1 + math.log(2) / math.log(32))
    )
    sc3 = dict(sc, attention_factor=1.5)
    assert ce.RotaryEmbedding(16, scaling=sc3).attention_scaling == 1.5


# ---------------------------------------------------------------- apply


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("partial", [1.0, 0.5, 0.25])
def test_apply_matches_reference(layout: str, partial: float) -> None:
    d = 64
    r = ce.RotaryEmbedding(d, partial_rotary_factor=partial, layout=layout)
    rot = int(d * partial)
    x = RNG.standard_normal((2, 3, 17, d))
    pos = np.arange(17)
    want = ref_apply(x, pos, ref_default_inv_freq(1e4, rot), 1.0, rot, layout)
    np.testing.assert_allclose(r.apply(x), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        r.apply(x, offset=5),
        ref_apply(x, pos + 5, ref_default_inv_freq(1e4, rot), 1.0, rot, layout),
        atol=1e-12,
    )
    # pass-through dims are bit-identical
    np.testing.assert_array_equal(r.apply(x)[..., rot:], x[..., rot:])
    x32 = x.astype(np.float32)
    got32 = r.apply(x32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=1e-5, atol=2e-6)
    x16 = x.astype(np.float16)
    got16 = r.apply(x16)
    assert got16.dtype == np.float16
    np.testing.assert_allclose(got16, want, rtol=2e-3, atol=4e-3)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_explicit_and_per_batch_positions(layout: str) -> None:
    sc = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256}
    r = ce.RotaryEmbedding(32, layout=layout, scaling=sc, max_position_embeddings=1024)
    inv, att = ref_inv_freq(sc, 1e4, 32, 1024)
    x = RNG.standard_normal((3, 4, 9, 32))
    pos = RNG.integers(0, 5000, size=9).astype(np.int32)
    np.testing.assert_allclose(r.apply(x, pos), ref_apply(x, pos, inv, att, 32, layout), atol=1e-11)
    pb = RNG.integers(0, 5000, size=(3, 9)).astype(np.uint16)
    want = ref_apply(x, pb.astype(np.int64), inv, att, 32, layout)
    np.testing.assert_allclose(r.apply(x, pb), want, atol=1e-11)
    for b in range(3):
        np.testing.assert_allclose(r.apply(x[b], pb[b]), want[b], atol=1e-11)
    # (T, D) input and 5-D input
    np.testing.assert_allclose(
        r.apply(x[0, 0], pos), want_2d(x[0, 0], pos, inv, att, layout), atol=1e-11
    )
    x5 = RNG.standard_normal((3, 2, 2, 9, 32))
    np.testing.assert_allclose(r.apply(x5, pb), ref_apply(x5, pb, inv, att, 32, layout), atol=1e-11)


def want_2d(x: np.ndarray, pos: np.ndarray, inv: np.ndarray, att: float, layout: str) -> Any:
    return ref_apply(x, pos, inv, att, x.shape[-1], layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cos_sin(layout: str) -> None:
    sc = {"rope_type": "yarn", "factor": 4.0}
    r = ce.RotaryEmbedding(16, scaling=sc, layout=layout)
    inv, att = ref_inv_freq(sc, 1e4, 16, 2048)
    pos = np.array([0, 3, 100, 7])
    c, s = r.cos_sin(pos)
    assert c.shape == s.shape == (4, 8)
    np.testing.assert_allclose(c, np.cos(pos[:, None] * inv) * att, atol=1e-14)
    np.testing.assert_allclose(s, np.sin(pos[:, None] * inv) * att, atol=1e-14)
    c2, _ = r.cos_sin(pos.reshape(2, 2))
    assert c2.shape == (2, 2, 8)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_is_transpose(layout: str, dtype: Any) -> None:
    sc = {"rope_type": "yarn", "factor": 4.0}
    r = ce.RotaryEmbedding(48, partial_rotary_factor=0.5, layout=layout, scaling=sc)
    x = RNG.standard_normal((2, 5, 11, 48)).astype(dtype)
    y = r.apply(x, offset=3)
    back = r.apply_backward(y, offset=3)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    scale = np.ones(48)
    scale[:24] = r.attention_scaling**2
    np.testing.assert_allclose(back, x * scale, rtol=tol, atol=tol)
    # <apply(x), g> == <x, apply_backward(g)>: exactly the adjoint
    g = RNG.standard_normal(x.shape).astype(dtype)
    lhs = float(np.sum(y.astype(np.float64) * g))
    rhs = float(np.sum(x.astype(np.float64) * r.apply_backward(g, offset=3)))
    assert lhs == pytest.approx(rhs, rel=tol * 10)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_finite_difference_gradient(layout: str) -> None:
    r = ce.RotaryEmbedding(8, layout=layout, scaling={"rope_type": "yarn", "factor": 2.0})
    x = RNG.standard_normal((2, 3, 8))
    g = RNG.standard_normal((2, 3, 8))
    pos = np.array([[1, 5, 9], [0, 2, 40]])
    analytic = r.apply_backward(g, pos)
    eps = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (np.sum(r.apply(xp, pos) * g) - np.sum(r.apply(xm, pos) * g)) / (2 * eps)
    np.testing.assert_allclose(analytic, num, rtol=1e-6, atol=1e-8)
    # candle autograd through the CustomOp agrees with apply_backward
    np.testing.assert_allclose(
        _testing.rope_autograd(r, x, g, pos), analytic, rtol=1e-14, atol=1e-14
    )


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("partial", [1.0, 0.5])
def test_fast_equals_portable_and_fused(layout: str, partial: float) -> None:
    sc = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    }
    r = ce.RotaryEmbedding(64, partial_rotary_factor=partial, layout=layout, scaling=sc)
    x = RNG.standard_normal((2, 4, 40, 64))
    pb = RNG.integers(0, 1000, size=(2, 40))
    for pos, off in [(None, 0), (None, 77), (pb[0], 0), (pb, 0)]:
        fast = r.apply(x, pos, offset=off)
        np.testing.assert_allclose(
            fast, _testing.rope_apply_portable(r, x, pos, offset=off), rtol=1e-15, atol=1e-15
        )
        np.testing.assert_allclose(
            fast, _testing.rope_apply_fused(r, x, pos, offset=off), rtol=1e-15, atol=1e-15
        )
        bwd = r.apply_backward(x, pos, offset=off)
        np.testing.assert_allclose(
            bwd,
            _testing.rope_apply_portable(r, x, pos, offset=off, backward=True),
            rtol=1e-15,
            atol=1e-15,
        )
        x32 = x.astype(np.float32)
        f32 = r.apply(x32, pos, offset=off)
        np.testing.assert_allclose(
            f32, _testing.rope_apply_portable(r, x32, pos, offset=off), rtol=1e-6, atol=1e-6
        )
        np.testing.assert_allclose(
            f32, _testing.rope_apply_fused(r, x32, pos, offset=off), rtol=1e-6, atol=1e-6
        )


def test_out_and_threads_bit_identical() -> None:
    r = ce.RotaryEmbedding(128)
    x = RNG.standard_normal((4, 8, 64, 128)).astype(np.float32)
    want = r.apply(x)
    out = np.empty_like(x)
    assert r.apply(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    n = ce.get_num_threads()
    try:
        ce.set_num_threads(1)
        np.testing.assert_array_equal(r.apply(x), want)
    finally:
        ce.set_num_threads(n)
    # non-contiguous input
    xt = np.swapaxes(np.swapaxes(x, 1, 2).copy(), 1, 2)
    assert not xt.flags.c_contiguous
    np.testing.assert_array_equal(r.apply(xt), want)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"head_dim": 63}, ValueError),
        ({"head_dim": 70, "partial_rotary_factor": 0.1}, ValueError),  # rotary_dim 7
        ({"head_dim": 10, "partial_rotary_factor": 0.5}, ValueError),  # rotary_dim 5
        ({"head_dim": 64, "partial_rotary_factor": 0.0}, ValueError),
        ({"head_dim": 64, "partial_rotary_factor": 1.5}, ValueError),
        ({"head_dim": 64, "layout": "diagonal"}, ValueError),
        ({"head_dim": 64, "base": -1.0}, ValueError),
        ({"head_dim": -4}, ValueError),
        ({"head_dim": 64, "scaling": {"rope_type": "ntk-by-parts"}}, ValueError),
        ({"head_dim": 64, "scaling": {"rope_type": "linear"}}, ValueError),
        ({"head_dim": 64, "scaling": {"rope_type": "llama3", "factor": 8.0}}, ValueError),
        ({"head_dim": 64, "scaling": {"rope_type": "longrope", "short_factor": [1.0]}}, ValueError),
        (
            {
                "head_dim": 8,
                "scaling": {
                    "rope_type": "longrope",
                    "short_factor": [1.0] * 3,
                    "long_factor": [1.0] * 4,
                },
            },
            ValueError,
        ),
        ({"head_dim": 64, "scaling": {"rope_type": "linear", "factor": "2"}}, TypeError),
        ({"head_dim": 64, "scaling": {"rope_type": 3}}, TypeError),
        (
            {"head_dim": 64, "scaling": {"rope_type": "yarn", "factor": 2.0, "truncate": 1}},
            TypeError,
        ),
        (
            {
                "head_dim": 8,
                "scaling": {
                    "rope_type": "longrope",
                    "short_factor": ["a"] * 4,
                    "long_factor": [1.0] * 4,
                },
            },
            TypeError,
        ),
        ({"head_dim": 64, "scaling": [("rope_type", "linear")]}, TypeError),
    ],
)
def test_bad_constructor_args(kwargs: dict[str, Any], exc: type[Exception]) -> None:
    head_dim = kwargs.pop("head_dim")
    with pytest.raises(exc) as e:
        ce.RotaryEmbedding(head_dim, **kwargs)
    assert isinstance(e.value, ce.CandleEmbedError) or exc is TypeError


def test_error_messages_name_the_problem() -> None:
    with pytest.raises(ValueError, match="factor"):
        ce.RotaryEmbedding(64, scaling={"rope_type": "linear"})
    with pytest.raises(ValueError, match="ntk-by-parts"):
        ce.RotaryEmbedding(64, scaling={"rope_type": "ntk-by-parts"})
    with pytest.raises(ValueError, match="low_freq_factor"):
        ce.RotaryEmbedding(64, scaling={"rope_type": "llama3", "factor": 8.0})


def test_bad_apply_inputs_leave_state_unchanged() -> None:
    r = ce.RotaryEmbedding(16)
    x = RNG.standard_normal((2, 5, 16))
    before = (r.inv_freq.copy(), r.apply(x))
    cases: list[tuple[Any, dict[str, Any], type[Exception]]] = [
        (RNG.standard_normal((2, 5, 15)), {}, ValueError),  # wrong last dim
        (RNG.standard_normal(16), {}, ValueError),  # 1-D
        (x, {"positions": np.arange(4)}, ValueError),  # T mismatch
        (x, {"positions": np.zeros((3, 5), np.int64)}, ValueError),  # B mismatch
        (x, {"positions": np.zeros((1, 2, 5), np.int64)}, ValueError),  # 3-D positions
        (x, {"positions": np.arange(5.0)}, TypeError),  # float positions
        (x, {"positions": np.array([0, 1, -2, 3, 4])}, IndexError),  # negative
        (x, {"offset": -1}, IndexError),
        (x, {"positions": np.arange(5), "offset": 2}, ValueError),
        (x.astype(np.int64), {}, TypeError),
        (x.astype(np.complex128), {}, TypeError),
        (x, {"out": np.empty((2, 5, 16), np.float32)}, ValueError),  # out dtype
        (x, {"out": np.empty((2, 5, 8))}, ValueError),  # out shape
    ]
    for arr, kw, exc in cases:
        with pytest.raises(exc):
            r.apply(arr, **kw)
        with pytest.raises(exc):
            r.apply_backward(arr, **kw)
    with pytest.raises(TypeError):
        r.cos_sin(np.arange(3.0))
    with pytest.raises(IndexError):
        r.cos_sin(np.array([-1]))
    np.testing.assert_array_equal(r.inv_freq, before[0])
    np.testing.assert_array_equal(r.apply(x), before[1])

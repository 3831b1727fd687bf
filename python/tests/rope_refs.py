"""Float64 NumPy references of RoPE (semantics.md §3.3-3.4): transformers'
``modeling_rope_utils`` init functions written out (every ``rope_type`` of 5.x's
``ROPE_INIT_FUNCTIONS`` plus "default"), its ``dynamic_rope_update`` state machine, and
``apply_rotary_pos_emb`` in both layouts. Shared by the RoPE tests; never the code under test."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def ref_default_inv_freq(base: float, dim: int) -> np.ndarray:
    return 1.0 / base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)


def ref_inv_freq(
    scaling: dict[str, Any] | None,
    base: float,
    dim: int,
    max_pos: int,
    seq_len: int | None = None,
) -> tuple[np.ndarray, float]:
    """transformers' modeling_rope_utils init functions, written out in float64."""
    s = dict(scaling or {})
    kind = s.get("rope_type", s.get("type", "default"))
    orig = s.get("original_max_position_embeddings", max_pos)
    if kind == "default":
        return ref_default_inv_freq(base, dim), 1.0
    if kind == "linear":
        return ref_default_inv_freq(base, dim) / s["factor"], 1.0
    if kind == "dynamic":
        f = s["factor"]
        length = max(seq_len or max_pos, max_pos)
        b = base * ((f * length / max_pos) - (f - 1)) ** (dim / (dim - 2))
        return ref_default_inv_freq(b, dim), 1.0
    if kind == "yarn":
        f = s["factor"]

        def mscale(x: float, m: float = 1.0) -> float:
            return 1.0 if x <= 1 else 0.1 * m * math.log(x) + 1.0

        att = s.get("attention_factor")
        if att is None:
            if s.get("mscale") and s.get("mscale_all_dim"):
                att = mscale(f, s["mscale"]) / mscale(f, s["mscale_all_dim"])
            else:
                att = mscale(f)
        bf, bs = s.get("beta_fast") or 32, s.get("beta_slow") or 1

        def fcd(r: float) -> float:
            return dim * math.log(orig / (r * 2 * math.pi)) / (2 * math.log(base))

        low, high = fcd(bf), fcd(bs)
        if s.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2) - low) / (high - low), 0, 1)
        extra = 1 - ramp
        pos_freq = base ** (np.arange(0, dim, 2) / dim)
        inv = (1 / (f * pos_freq)) * (1 - extra) + (1 / pos_freq) * extra
        return inv, att
    if kind == "longrope":
        f = s.get("factor") or max_pos / orig
        att = s.get("attention_factor")
        if att is None:
            att = 1.0 if f <= 1 else math.sqrt(1 + math.log(f) / math.log(orig))
        ext = np.array(
            s["long_factor"] if seq_len and seq_len > orig else s["short_factor"], np.float64
        )
        return 1.0 / (ext * base ** (np.arange(0, dim, 2) / dim)), att
    if kind == "proportional":
        # `dim` is the whole head: int(partial * head_dim // 2) live frequencies, then zeros,
        # all divided by `factor` (default 1).
        live = int(s.get("partial_rotary_factor", 1.0) * dim // 2)
        inv = np.zeros(dim // 2)
        inv[:live] = 1.0 / base ** (np.arange(0, 2 * live, 2, dtype=np.float64) / dim)
        return inv / s.get("factor", 1.0), 1.0
    if kind == "llama3":
        inv = ref_default_inv_freq(base, dim)
        f, lo, hi = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
        wl = 2 * math.pi / inv
        out = np.where(wl > orig / lo, inv / f, inv)
        sm = (orig / wl - lo) / (hi - lo)
        smoothed = (1 - sm) * out / f + sm * out
        medium = ~(wl < orig / hi) & ~(wl > orig / lo)
        return np.where(medium, smoothed, out), 1.0
    raise AssertionError(kind)


def rotate_half(x: np.ndarray) -> np.ndarray:
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def rotate_every_two(x: np.ndarray) -> np.ndarray:
    out = np.stack([-x[..., 1::2], x[..., 0::2]], axis=-1)
    return out.reshape(x.shape)


def ref_apply(
    x: np.ndarray,
    pos: np.ndarray,
    inv: np.ndarray,
    att: float,
    rot: int,
    layout: str,
    sign: float = 1.0,
) -> np.ndarray:
    """HF apply_rotary_pos_emb in float64; pos (T,) or (B, T); sign=-1 is the transpose."""
    x = x.astype(np.float64)
    freqs = pos.astype(np.float64)[..., None] * inv  # (.., T, rot/2)
    if pos.ndim == 2:
        freqs = freqs.reshape((pos.shape[0],) + (1,) * (x.ndim - 3) + freqs.shape[1:])
    if layout == "half":
        emb = np.concatenate([freqs, freqs], axis=-1)
        rot_fn = rotate_half
    else:
        emb = np.repeat(freqs, 2, axis=-1)
        rot_fn = rotate_every_two
    cos, sin = np.cos(emb) * att, sign * np.sin(emb) * att
    xr, xp = x[..., :rot], x[..., rot:]
    return np.concatenate([xr * cos + rot_fn(xr) * sin, xp], axis=-1)


class DynamicUpdateRef:
    """transformers' ``dynamic_rope_update`` for ``rope_type="dynamic"``, in plain Python: the
    module keeps ``max_seq_len_cached`` and the ``inv_freq`` of that length."""

    def __init__(self, scaling: dict[str, Any], base: float, dim: int, max_pos: int) -> None:
        self.scaling, self.base, self.dim = scaling, base, dim
        self.original_max_seq_len = self.max_seq_len_cached = max_pos
        self.original_inv_freq = ref_inv_freq(scaling, base, dim, max_pos)[0]
        self.inv_freq = self.original_inv_freq

    def forward(self, position_ids: np.ndarray) -> np.ndarray:
        """``dynamic_frequency_update`` for one call; returns the ``inv_freq`` it uses."""
        seq_len = int(np.max(position_ids)) + 1
        cached = self.max_seq_len_cached
        if seq_len > cached:  # growth
            args = (self.scaling, self.base, self.dim, self.original_max_seq_len, seq_len)
            self.inv_freq = ref_inv_freq(*args)[0]
            self.max_seq_len_cached = seq_len
        if seq_len < self.original_max_seq_len and cached > self.original_max_seq_len:  # reset
            self.inv_freq = self.original_inv_freq
            self.max_seq_len_cached = self.original_max_seq_len
        return self.inv_freq

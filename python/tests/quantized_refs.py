"""Float64 NumPy references of FBGEMM's row-wise quantization (QuantUtils.cc), written from its
formulas, never from candle_embed: per row, 8 bits ``scale = (max - min) / 255``, ``bias =
min``, ``code = round((x - min) * 255 / (range + 1e-8))``; 4 bits ``bias = f16(min)``, ``scale =
f16((max - bias) / 15)`` (1 when that is 0), ``code = clamp(round((x - bias) / scale), 0, 15)``.
Element ``j`` dequantizes to ``scale * code_j + bias``."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


def fbgemm_fixture(bits: int) -> Any:
    """FBGEMM's own outputs (benches/make_fbgemm_fixtures.py)."""
    return np.load(FIXTURES / f"fbgemm_int{bits}.npz")


def quantize64(w: npt.ArrayLike, bits: int) -> tuple[F64, F64, F64]:
    """``(codes, scale, bias)`` of every row, the arithmetic in float64 (the float16 roundings
    of the 4-bit scale and bias through ``np.float16``, as FBGEMM stores them)."""
    x = np.asarray(w, dtype=np.float32).astype(np.float64)
    lo, hi = x.min(axis=1), x.max(axis=1)
    if bits == 8:
        rng = hi - lo
        scale, bias = rng / 255.0, lo
        codes = np.rint((x - lo[:, None]) * (255.0 / (rng + 1e-8))[:, None])
        return codes, scale, bias
    bias = lo.astype(np.float16).astype(np.float64)
    rng = hi - bias
    scale = np.where(rng == 0, 1.0, rng / 15.0).astype(np.float16).astype(np.float64)
    scale = np.where(scale == 0, 1.0, scale)
    codes = np.clip(np.rint((x - bias[:, None]) / scale[:, None]), 0, 15)
    return codes, scale, bias


def dequantize64(codes: F64, scale: F64, bias: F64) -> F64:
    return codes * scale[:, None] + bias[:, None]


def bag64(
    rows: F64,
    ids: npt.ArrayLike,
    offsets: npt.ArrayLike | None = None,
    per_sample_weights: npt.ArrayLike | None = None,
    mode: str = "mean",
    padding_idx: int | None = None,
    include_last_offset: bool = False,
) -> F64:
    """``torch.nn.EmbeddingBag``'s reduction of the float64 ``rows``: bags from 2-D ids or
    offsets, padding left out of the bag and of the mean's divisor, empty bags zero."""
    ids = np.asarray(ids)
    flat = ids.reshape(-1)
    if ids.ndim == 2:
        per = ids.shape[1]
        bounds = [(b * per, (b + 1) * per) for b in range(ids.shape[0])]
    else:
        off = [int(o) for o in np.asarray(offsets)]
        ends = off[1:] if include_last_offset else off[1:] + [flat.size]
        bounds = list(zip(off, ends))
    ws = None if per_sample_weights is None else np.asarray(per_sample_weights, np.float64).ravel()
    out = np.zeros((len(bounds), rows.shape[1]))
    for b, (lo, hi) in enumerate(bounds):
        picked = [
            rows[int(flat[k])] * (1.0 if ws is None else ws[k])
            for k in range(lo, hi)
            if int(flat[k]) != padding_idx
        ]
        if picked:
            r = np.stack(picked)
            out[b] = {"sum": r.sum(0), "mean": r.mean(0), "max": r.max(0)}[mode]
    return out

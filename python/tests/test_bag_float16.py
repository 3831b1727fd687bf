"""float16 bags (issue 15): rows are widened to float32 eight elements at a time (F16C) and
the float32 sums narrowed to float16 the same way (``src/kernels/cpu/half_rows.rs``). Checked
against the float64 sum of the same float16 table: the result is that sum rounded once to
float16, so it lies within one float16 step of it."""

from __future__ import annotations

import candle_embed as ce
import numpy as np
import numpy.typing as npt
from candle_embed._native import _testing


def _bag64(
    w: npt.NDArray[np.float64],
    ids: npt.NDArray[np.int64],
    off: list[int],
    psw: npt.NDArray[np.float64] | None,
    mean: bool,
) -> npt.NDArray[np.float64]:
    bounds = [*off, len(ids)]
    out = np.zeros((len(off), w.shape[1]))
    for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        if hi == lo:
            continue
        rows = w[ids[lo:hi]]
        if psw is not None:
            rows = rows * psw[lo:hi, None]
        out[b] = rows.sum(0) / (hi - lo if mean else 1)
    return out


def test_float16_bags_are_the_float64_sum_rounded_to_float16() -> None:
    rng = np.random.default_rng(15)
    off = [0, 10, 10, 37]  # an empty bag; the last bag runs to the end
    # 13: one 8-lane vector and a 5-element tail; 136: 17 vectors, past one 128-column tile.
    for dim in (13, 136):
        w = rng.standard_normal((50, dim)).astype(np.float16)
        ids = rng.integers(0, 50, 60)
        psw = rng.uniform(-1, 1, 60).astype(np.float16)
        for mode, weights in (("sum", None), ("sum", psw), ("mean", None)):
            bag = ce.EmbeddingBag.from_pretrained(w, mode=mode)
            got = bag(ids, np.array(off), weights)
            assert got.dtype == np.float16
            w64 = None if weights is None else weights.astype(np.float64)
            ref = _bag64(w.astype(np.float64), ids, off, w64, mode == "mean")
            step = np.spacing(np.abs(ref).astype(np.float16)).astype(np.float64)
            assert np.all(np.abs(got.astype(np.float64) - ref) <= step), (dim, mode)
            assert np.all(got[1] == 0)
            # The portable candle path (float32 sums, then float16) agrees to one step too.
            port = _testing.bag_forward_portable(bag, ids, np.array(off), weights)
            assert np.all(np.abs(port.astype(np.float64) - got.astype(np.float64)) <= 2 * step)

"""Write FBGEMM's own outputs for small seeded tables as test fixtures (python/tests/fixtures/).

The quantized tables' tests compare our packing byte for byte and our lookups and bags value for
value against these files, so they run without PyTorch. Regenerate them with PyTorch importable
(the optional peer venv, ``bash benches/setup_torch_venv.sh``):

    LD_LIBRARY_PATH=$VENV/cudastub $VENV/bin/python benches/make_fbgemm_fixtures.py

Each ``fbgemm_int{8,4}.npz`` holds the float ``weight``, ``packed`` (``torch.ops.quantized.
embedding_bag_{byte,4bit}_prepack``), ``unpacked`` (the matching ``*_unpack``), and bag cases
(``*_rowwise_offsets``): ``indices``, ``offsets``, ``per_sample_weights``, and the outputs
``sum``, ``weighted_sum``, ``last_offset_sum`` (``include_last_offset=True``) and ``lookup``
(every id a bag of its own). PyTorch's quantized bag ops ignore ``mode`` (they always sum), so
there is no FBGEMM mean to record; the tests check mean against float64 instead.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "python" / "tests" / "fixtures"


def table(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    """Seeded normal rows plus the rows FBGEMM treats specially."""
    w = rng.normal(0.0, 1.0, (rows, dim)).astype(np.float32)
    w[1] = 0.75  # constant row: range 0
    w[2] = np.linspace(0.0, 1e-6, dim, dtype=np.float32)  # tiny range (float16 scale underflows)
    w[3] *= 900.0  # large values, still inside float16's range
    w[4] = rng.normal(5.0, 0.01, dim)  # far from zero, narrow
    w[5, ::3] = 0.0  # zeros among negatives and positives
    return w


def main() -> None:
    import torch

    rng = np.random.default_rng(20240515)
    q = torch.ops.quantized
    OUT.mkdir(parents=True, exist_ok=True)
    for bits, dim, prepack, unpack, bag in [
        (
            8,
            45,
            q.embedding_bag_byte_prepack,
            q.embedding_bag_byte_unpack,
            q.embedding_bag_byte_rowwise_offsets,
        ),
        (
            4,
            40,
            q.embedding_bag_4bit_prepack,
            q.embedding_bag_4bit_unpack,
            q.embedding_bag_4bit_rowwise_offsets,
        ),
    ]:
        rows = 48
        w = table(rng, rows, dim)
        packed = prepack(torch.from_numpy(w))
        n = 160
        indices = rng.integers(0, rows, n).astype(np.int64)
        cuts = np.sort(rng.choice(np.arange(1, n), 24, replace=False))
        offsets = np.concatenate([[0], cuts, [cuts[-1]]]).astype(np.int64)  # one empty bag
        weights = rng.uniform(-2.0, 2.0, n).astype(np.float32)
        t = {k: torch.from_numpy(v) for k, v in [("i", indices), ("o", offsets), ("w", weights)]}

        run = functools.partial(bag, packed, t["i"], t["o"], mode=0)
        with_last = torch.from_numpy(np.append(offsets, n))
        data = {
            "weight": w,
            "packed": packed.numpy(),
            "unpacked": unpack(packed).numpy(),
            "indices": indices,
            "offsets": offsets,
            "per_sample_weights": weights,
            "sum": run().numpy(),
            "weighted_sum": run(per_sample_weights=t["w"]).numpy(),
            "last_offset_sum": bag(
                packed, t["i"], with_last, mode=0, include_last_offset=True
            ).numpy(),
            "lookup": bag(packed, t["i"], torch.arange(n), mode=0).numpy(),
            "torch_version": np.array(torch.__version__),
        }
        path = OUT / f"fbgemm_int{bits}.npz"
        np.savez_compressed(path, **data)
        print(f"wrote {path} ({path.stat().st_size} bytes, torch {torch.__version__})")


if __name__ == "__main__":
    main()

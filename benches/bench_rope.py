"""RoPE peers: candle_embed.RotaryEmbedding.apply vs NumPy rotate_half (and torch rotate_half /
complex forms when torch is importable), same input, interleaved rounds, medians.

    python benches/bench_rope.py [--shape 8,32,2048,128] [--rounds 5] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any, Callable

import candle_embed as ce
import numpy as np
from peers import settled


def numpy_rotate_half(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    h = x.shape[-1] // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], axis=-1)
    return x * cos + rot * sin


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="2,32,1024,128")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    t, d = shape[-2], shape[-1]
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    nbytes = 2 * x.nbytes
    rope = ce.RotaryEmbedding(d)
    c, s = rope.cos_sin(np.arange(t))
    cos = np.concatenate([c, c], axis=-1).astype(np.float32)
    sin = np.concatenate([s, s], axis=-1).astype(np.float32)
    out = np.empty_like(x)

    contenders: dict[str, Callable[[], Any]] = {
        "ours (fresh output)": lambda: rope.apply(x),
        "ours (out=)": lambda: rope.apply(x, out=out),
        "numpy rotate_half": lambda: numpy_rotate_half(x, cos, sin),
    }
    torch: Any = None
    try:
        import torch  # type: ignore[import-not-found, no-redef]
    except ImportError:
        print("torch not importable: torch peers skipped")
    if torch is not None:
        tx = torch.from_numpy(x)
        tcos, tsin = torch.from_numpy(cos), torch.from_numpy(sin)
        freqs = torch.polar(torch.ones(t, d // 2), torch.from_numpy(np.arctan2(s, c)).float())

        def torch_rotate_half() -> Any:
            h = d // 2
            rot = torch.cat((-tx[..., h:], tx[..., :h]), dim=-1)
            return tx * tcos + rot * tsin

        def torch_complex() -> Any:
            xc = torch.view_as_complex(tx.reshape(*tx.shape[:-1], -1, 2))
            return torch.view_as_real(xc * freqs).flatten(-2)

        contenders["torch rotate_half"] = torch_rotate_half
        contenders["torch complex (interleaved)"] = torch_complex

    np.testing.assert_allclose(rope.apply(x), numpy_rotate_half(x, cos, sin), atol=1e-5)
    print(f"RoPE q {shape} float32, {x.nbytes / 1e6:.0f} MB; GB/s counts 1 read + 1 write")
    for threads in [int(v) for v in args.threads.split(",")]:
        ce.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for f in contenders.values():
            f()  # warm-up
        for _ in range(args.rounds):
            for name, f in contenders.items():
                times[name].append(settled(f))  # after an untimed call of f (peers.py)
        ours = statistics.median(times["ours (fresh output)"])
        print(f"\nthreads={threads} (numpy is single-threaded)")
        for name, ts in times.items():
            m = statistics.median(ts)
            print(
                f"  {name:30s} {m * 1e3:8.2f} ms  {nbytes / m / 1e9:6.1f} GB/s  "
                f"ours/this = {ours / m:5.3f}"
            )


if __name__ == "__main__":
    main()

"""GPU benchmark of candle-embed's Python API against PyTorch on the same device, in one run.

    python bench_gpu.py --device cuda:0 [--json out.json] [--no-torch] [--quick]

Built on ``benches/peers.py`` (interleaved rotated rounds, an untimed call before each peer's
block, medians and minima per call). API level ("torch_api"): every case goes from NumPy inputs
to NumPy outputs, because that is what the candle_embed API does (its tables live on the device,
ids and results cross as host arrays), and PyTorch is timed doing the same (``from_numpy ->
to(device) -> op -> cpu().numpy()``). Device level ("torch_device"): PyTorch on device-resident
inputs, each call closed by ``torch.cuda.synchronize()``: the figure to set against
candle-embed's kernel timings (bin/gpu_kernels, the Rust half of the bundle). Cases that the API
offers on host arrays only (RoPE, ``index_add``) are measured at kernel level only.

Runs anywhere: ``--device cpu`` (the bundle's dry run) exercises the same code on the CPU, with
PyTorch (``--no-torch`` hides it) or without.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import traceback
from typing import Any

import candle_embed as ce
import numpy as np
from _bench_cases import all_cases

try:
    from peers import Bench, fmt_ms, print_table, ratio_rows, torch_or_none
except ImportError:  # run from the repository: peers.py is one folder up (the bundle is flat)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from peers import Bench, fmt_ms, print_table, ratio_rows, torch_or_none


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-torch", action="store_true", help="run without PyTorch's peers")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, few rounds (plumbing)")
    args = ap.parse_args()

    torch = None if args.no_torch else torch_or_none()
    if args.device.startswith("cuda") and torch is not None and not torch.cuda.is_available():
        print("torch sees no CUDA device: its peers are left out", file=sys.stderr)
        torch = None
    if args.device not in ce.devices():
        print(f"{args.device} is not in candle_embed.devices() = {ce.devices()}", file=sys.stderr)
        return 2
    rounds, per_round = (2, 1) if args.quick else (9, 3)
    meta: dict[str, Any] = {
        "device": args.device,
        "candle_embed": ce.__version__,
        "numpy": np.__version__,
        "torch": None if torch is None else torch.__version__,
        "python": platform.python_version(),
        "rounds": rounds,
        "per_round": per_round,
        "quick": args.quick,
        "method": "benches/peers.py: interleaved rotated rounds, median (and min) s per call; "
        "torch_api: NumPy in -> NumPy out like candle_embed; torch_device: inputs on the "
        "device, each call synchronised",
    }
    if torch is not None and args.device.startswith("cuda"):
        meta["gpu"] = torch.cuda.get_device_name(torch.device(args.device))

    results: dict[str, Any] = {}
    for name, build in all_cases(quick=args.quick):
        try:
            peers, info = build(args.device, torch)
        except Exception as e:  # noqa: BLE001 - report the case and go on with the next
            traceback.print_exc()
            results[name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        errors: dict[str, str] = {}
        for label, fn in list(peers.items()):  # a peer that fails is reported, not timed
            try:
                fn(0)
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                errors[label] = f"{type(e).__name__}: {e}"
                del peers[label]
        bench = Bench(rounds=rounds, per_round=per_round, warmup=1)
        medians = bench.run(peers) if peers else {}
        mins = bench.mins() if peers else {}
        case: dict[str, Any] = dict(info)
        for label, t in medians.items():
            case[label] = {"median_s": t, "min_s": mins.get(label)}
        if errors:
            case["errors"] = errors
        results[name] = case
        pairs = [("candle_embed", p) for p in medians if p != "candle_embed"]
        print_table(ratio_rows(name, medians, pairs, mins), title=f"{name} ({args.device})")
        if "candle_embed" in medians:
            print(f"  candle_embed: {fmt_ms(medians['candle_embed'])} ms per call")
        for label, err in errors.items():
            print(f"  {label}: {err}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "cases": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

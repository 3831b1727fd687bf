#!/usr/bin/env python3
"""Runner of the candle-embed GPU bundle (made by scripts/gpu-bundle.sh; see README.txt there).

On the GPU machine it needs nothing but that machine's Python (3.9+, NumPy, pytest; PyTorch for
the CUDA 13 libraries and the benchmark's peers) and no network:

    python3 run.py [--out DIR]          # DIR defaults to $OUT, else ./results

1. installs the wheel with ``pip install --no-index --no-deps --target``;
2. puts the CUDA 13 runtime libraries candle links (cudart, cublas, cublasLt, curand, nvrtc) on
   LD_LIBRARY_PATH, found in PyTorch's install (site-packages/nvidia/cu13/lib), never downloaded;
3. checks that ``candle_embed`` imports and lists cuda:0;
4. runs the Rust GPU tests (tests/cuda.rs, tests/cuda_ops.rs: compiled binaries);
5. runs the device-parametrised pytest suite on cuda:0 twice: the portable candle-op path
   (``CANDLE_EMBED_CUDA_KERNELS=0``) and our CUDA kernels (``=1``);
6. runs the benchmarks: kernel-level (Rust, CUDA events) and API-level (Python, vs PyTorch,
   with the kernels off and on);
7. writes ``run.log`` (everything) and ``results.json`` (each step's outcome and all figures)
   into DIR, plus the benchmarks' own JSON files (bench_kernels.json, bench_api_portable.json,
   bench_api_kernels.json).

``--dry-run`` checks the same plumbing on a machine without a GPU: install, imports, the Rust
test binary (its GPU tests skip), pytest on the CPU cases, the benchmarks on CPU with PyTorch
hidden and (when importable) present. Exit status 0 only when every step passed.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import lzma
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The shared libraries the CUDA build of candle links (cudarc's dynamic linking + candle-kernels).
CUDA_LIBS = [
    "libcudart.so.13",
    "libcublas.so.13",
    "libcublasLt.so.13",
    "libcurand.so.10",
    "libnvrtc.so.13",
]
DRIVER_LIB = "libcuda.so.1"
DRIVER_DIRS = ["/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"]


class Runner:
    def __init__(self, out: Path, budget_s: float, dry_run: bool) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.dry_run = dry_run
        self.deadline = time.monotonic() + budget_s
        self.log_file = open(out / "run.log", "w", encoding="utf-8")  # noqa: SIM115
        self.last_lines: list[str] = []
        self.results: dict[str, Any] = {
            "dry_run": dry_run,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "steps": {},
        }

    def log(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def step(
        self, name: str, cmd: list[str], env: dict[str, str], timeout: float, **extra: Any
    ) -> dict[str, Any]:
        """Run `cmd`, stream its output into the log, record rc / seconds / output tail."""
        timeout = max(5.0, min(timeout, self.left() - 15.0))
        self.log(f"== {name}: {' '.join(cmd)} (timeout {timeout:.0f} s)")
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as e:
            rec = {"ok": False, "rc": None, "seconds": 0.0, "error": str(e), **extra}
            self.results["steps"][name] = rec
            self.log(f"   cannot start: {e}")
            return rec
        lines: list[str] = []
        reader = threading.Thread(target=self._pump, args=(proc, lines), daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
        reader.join(timeout=10)
        rc = proc.wait()
        self.log_file.flush()
        secs = round(time.monotonic() - start, 1)
        ok = rc == 0 and not timed_out
        rec = {"ok": ok, "rc": rc, "seconds": secs, "timed_out": timed_out, **extra}
        rec["tail"] = lines[-15:]
        self.last_lines = lines
        self.results["steps"][name] = rec
        self.log(f"   {name}: {'ok' if ok else 'FAILED'} (rc {rc}, {secs} s)")
        return rec

    def _pump(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            self.log_file.write("   | " + line)

    def note(self, name: str, ok: bool, **info: Any) -> None:
        self.results["steps"][name] = {"ok": ok, **info}
        self.log(f"== {name}: {'ok' if ok else 'FAILED'} {json.dumps(info)[:2000]}")

    def finish(self) -> int:
        steps = self.results["steps"]
        self.results["ok"] = bool(steps) and all(s.get("ok") for s in steps.values())
        self.results["failed_steps"] = [k for k, s in steps.items() if not s.get("ok")]
        for p in sorted(self.out.glob("bench_*.json")):
            try:
                self.results[p.stem] = json.loads(p.read_text())
            except ValueError as e:
                self.results[p.stem] = {"error": str(e)}
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1))
        failed = ", ".join(self.results["failed_steps"])
        self.log(f"done: {'ALL OK' if self.results['ok'] else 'FAILED: ' + failed}")
        self.log_file.close()
        return 0 if self.results["ok"] else 1


def unpack(name: str, into: Path) -> Path | None:
    """bin/<name>.xz (an executable the bundle ships compressed) unpacked into `into`."""
    packed = HERE / "bin" / f"{name}.xz"
    if not packed.exists():
        return None
    exe = into / name
    exe.write_bytes(lzma.decompress(packed.read_bytes()))
    exe.chmod(0o755)
    return exe


def find_cuda_libs(extra: list[str]) -> tuple[list[str], dict[str, str | None]]:
    """Directories holding the CUDA libraries: --lib-dir first, then the NVIDIA wheels that
    PyTorch installed (site-packages/nvidia/cu13/lib, or nvidia/<lib>/lib for older layouts)."""
    candidates: list[str] = list(extra)
    roots: list[str] = []
    for mod in ("nvidia", "torch"):
        try:
            spec = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                roots.append(
                    loc if mod == "nvidia" else os.path.join(os.path.dirname(loc), "nvidia")
                )
    for root in dict.fromkeys(roots):
        candidates += sorted(glob.glob(os.path.join(root, "cu13", "lib")))
        candidates += sorted(glob.glob(os.path.join(root, "*", "lib")))
    found: dict[str, str | None] = {}
    dirs: list[str] = []
    for lib in CUDA_LIBS:
        found[lib] = None
        for d in candidates:
            if os.path.exists(os.path.join(d, lib)):
                found[lib] = d
                if d not in dirs:
                    dirs.append(d)
                break
    return dirs, found


def find_driver(extra: list[str]) -> str | None:
    """Where libcuda.so.1 is, when the loader would not find it by itself."""
    for d in extra:
        if os.path.exists(os.path.join(d, DRIVER_LIB)):
            return d
    try:
        cache = subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, timeout=20
        ).stdout
        if DRIVER_LIB in cache:
            return None
    except (OSError, subprocess.SubprocessError):
        pass
    for d in DRIVER_DIRS:
        if os.path.exists(os.path.join(d, DRIVER_LIB)):
            return d
    return None


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=os.environ.get("OUT") or "results")
    ap.add_argument(
        "--dry-run", action="store_true", help="check the plumbing on a machine without a GPU"
    )
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument(
        "--lib-dir", action="append", default=[], help="extra library directory (searched first)"
    )
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--wheel", default=None, help="install this wheel instead of the bundle's")
    args = ap.parse_args()
    device = "cpu" if args.dry_run else args.device
    run = Runner(Path(args.out).resolve(), args.budget, args.dry_run)
    py = args.python
    manifest = HERE / "MANIFEST.json"
    if manifest.exists():
        run.results["bundle"] = json.loads(manifest.read_text())
    run.log(f"candle-embed GPU bundle at {HERE}; device {device}; out {run.out}")
    if shutil.which("nvidia-smi"):
        run.step(
            "nvidia_smi",
            [
                "nvidia-smi",
                "--query-gpu=name,driver_version,memory.total,compute_cap",
                "--format=csv,noheader",
            ],
            dict(os.environ),
            30,
        )

    # 1. install
    wheels = [args.wheel] if args.wheel else sorted(glob.glob(str(HERE / "wheel" / "*.whl")))
    work = Path(tempfile.mkdtemp(prefix="candle-embed-gpu-"))
    site, bin_dir = work / "site", work / "bin"
    bin_dir.mkdir()
    if len(wheels) != 1:
        run.note("install", False, error=f"expected one wheel in {HERE / 'wheel'}, found {wheels}")
        return run.finish()
    run.step(
        "install",
        [
            py,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(site),
            wheels[0],
        ],
        dict(os.environ),
        120,
    )

    # 2. libraries
    lib_dirs, found = find_cuda_libs(args.lib_dir)
    driver_dir = find_driver(args.lib_dir)
    if driver_dir and driver_dir not in lib_dirs:
        lib_dirs.append(driver_dir)
    missing = [k for k, v in found.items() if v is None]
    # A dry run may use the CPU wheel, which needs none of them: only the GPU run insists.
    libs_ok = not missing or args.dry_run
    run.note("cuda_libraries", libs_ok, found=found, driver_dir=driver_dir, missing=missing)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(site), str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        lib_dirs + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else [])
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RUST_BACKTRACE", "1")
    run.results["ld_library_path"] = env["LD_LIBRARY_PATH"]

    # 3. import and device
    probe = (
        "import json, candle_embed as ce; print('PROBE ' + json.dumps({'file': ce.__file__, "
        "'version': ce.__version__, 'devices': ce.devices()}))"
    )
    rec = run.step("import", [py, "-c", probe], env, 60)
    info = next((json.loads(x[6:]) for x in run.last_lines if x.startswith("PROBE ")), None)
    run.results["candle_embed"] = info
    if info is None or device not in info["devices"]:
        native = glob.glob(str(site / "candle_embed" / "_native*.so"))
        if native and shutil.which("ldd"):
            run.step("ldd", ["ldd", native[0]], env, 20)
        run.note("device", False, error=f"{device} not in candle_embed.devices(): {info}")
        return run.finish()
    run.note("device", True, device=device)

    # 4. Rust GPU tests: each kernel against float64 references, determinism and bad ids
    #    (tests/cuda.rs); the ops with the kernels on against their portable paths and the CPU
    #    (tests/cuda_ops.rs).
    for name in ("cuda_tests", "cuda_ops_tests"):
        exe = unpack(name, bin_dir)
        if exe is None:
            run.note(f"rust_{name}", False, error=f"bin/{name}.xz missing from the bundle")
            continue
        rec = run.step(f"rust_{name}", [str(exe), "--test-threads=1", "--nocapture"], env, 120)
        skipped = sum("skipped: no CUDA device" in line for line in run.last_lines)
        rec["skipped"] = skipped
        if not args.dry_run and skipped:
            rec["ok"] = False
            rec["error"] = "the GPU tests skipped themselves: no CUDA device opened"

    # 5. pytest on the device, portable path then our kernels
    tests = str(HERE / "tests")
    base = [
        py,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "only_device",
        "--only-device",
        device,
        "-rfEs",
        "--durations=5",
        tests,
    ]
    for mode, flag in (("portable", "0"), ("kernels", "1")):
        e = dict(env, CANDLE_EMBED_CUDA_KERNELS=flag)
        run.step(f"pytest_{mode}", base, e, 150, kernels=flag == "1")

    # 6. benchmarks
    bench_rust = unpack("gpu_kernels", bin_dir)
    if bench_rust is not None:
        e = dict(env, CANDLE_EMBED_BENCH_JSON=str(run.out / "bench_kernels.json"))
        if args.dry_run:
            e["CANDLE_EMBED_BENCH_QUICK"] = "1"
        run.step("bench_kernels", [str(bench_rust)], e, 120)
    else:
        run.note("bench_kernels", False, error="bin/gpu_kernels.xz missing from the bundle")
    bench = [py, str(HERE / "bench_gpu.py"), "--device", device]
    if args.dry_run:
        quick = bench + ["--quick"]
        run.step(
            "bench_api_no_torch",
            quick + ["--no-torch", "--json", str(run.out / "bench_api_no_torch.json")],
            env,
            60,
        )
        if importlib.util.find_spec("torch") is not None:
            run.step("bench_api", quick + ["--json", str(run.out / "bench_api.json")], env, 120)
        else:
            run.log("   (torch not importable here: the bench's torch peers were not exercised)")
    else:
        # The API as users get it (portable path), then with our kernels on; what is left of
        # the budget is shared between the two.
        for mode, flag in (("portable", "0"), ("kernels", "1")):
            out = str(run.out / f"bench_api_{mode}.json")
            budget = (run.left() - 20) / (2 if mode == "portable" else 1)
            e = dict(env, CANDLE_EMBED_CUDA_KERNELS=flag)
            run.step(f"bench_api_{mode}", bench + ["--json", out], e, max(45.0, budget))
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Build the one-command GPU check: a folder that needs nothing on the GPU machine but its own
# Python (3.9+ with NumPy, pytest, hypothesis; PyTorch for the CUDA 13 libraries and the peers):
# no Rust, no network. Usage:
#     bash scripts/gpu-bundle.sh [DIR] [--dry-run]     # DIR defaults to target/gpu-bundle
# then, on the GPU machine, from anywhere:
#     python3 DIR/run.py --out RESULTS                 # (RESULTS defaults to $OUT, else ./results)
#
# DIR holds: wheel/ (the abi3 CUDA wheel, CUDA 13.0, sm_90 SASS + PTX), bin/cuda_tests.xz and
# bin/cuda_ops_tests.xz (the Rust GPU tests, tests/cuda.rs and tests/cuda_ops.rs),
# bin/gpu_kernels.xz (the kernel benchmark, benches/gpu/kernels.rs),
# tests/ (the Python suite), bench_gpu.py + _bench_cases.py (the API benchmark vs PyTorch),
# run.py + only_device.py (the runner and its pytest plugin), README.txt and MANIFEST.json.
# --dry-run then runs DIR/run.py --dry-run here (no GPU: CPU cases, stub CUDA libraries) and
# leaves its results in DIR-dryrun/. Needs the build venv (bash scripts/setup.sh) for maturin.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="target/gpu-bundle"
DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -*) echo "unknown option $arg" >&2; exit 2 ;;
    *) DIR="$arg" ;;
  esac
done
PY="${PYTHON:-.venv/bin/python}"
if ! "$PY" -m maturin --version >/dev/null 2>&1; then
  echo "no maturin for $PY: run bash scripts/setup.sh first, or set PYTHON" >&2
  exit 1
fi
export PYTHON="$PY"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"
start=$SECONDS

# 1. The CUDA wheel, then the test and bench executables of the same (release) build.
bash scripts/build-cuda.sh wheel
toolkit_env=$(bash scripts/cuda-toolkit.sh)  # a failed install stops here (set -e)
eval "$toolkit_env"
executables() {  # cargo's JSON messages -> "target-name path" of each executable built
  "$PY" -c 'import json, sys
for m in map(json.loads, sys.stdin):
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])'
}
{
  cargo test --release --features cuda -p candle-embed --test cuda --test cuda_ops --no-run \
    --message-format=json-render-diagnostics
  cargo bench --features cuda -p candle-embed --bench gpu_kernels --no-run \
    --message-format=json-render-diagnostics
} | executables > "$CARGO_TARGET_DIR/gpu-bundle-executables.txt"

# 2. The folder.
rm -rf "$DIR"
mkdir -p "$DIR/wheel" "$DIR/bin" "$DIR/tests"
cp "$CARGO_TARGET_DIR"/wheels/candle_embed-*.whl "$DIR/wheel/"
# The executables embed candle's kernels (~40 MB each): stripped and xz-compressed (~5 MB),
# run.py unpacks them with Python's lzma. bin/cuda_tests and bin/cuda_ops_tests are
# tests/cuda.rs and tests/cuda_ops.rs, bin/gpu_kernels is benches/gpu/kernels.rs.
while read -r name exe; do
  case "$name" in
    cuda|cuda_ops) dest="$DIR/bin/${name}_tests" ;;
    *) dest="$DIR/bin/$name" ;;
  esac
  cp "$exe" "$dest"
  strip "$dest" 2>/dev/null || true
  "$PY" -c 'import lzma, sys; data = open(sys.argv[1], "rb").read()
open(sys.argv[1] + ".xz", "wb").write(lzma.compress(data, preset=6))' "$dest"
  rm "$dest"
done < "$CARGO_TARGET_DIR/gpu-bundle-executables.txt"
for want in cuda_tests cuda_ops_tests gpu_kernels; do
  [[ -e "$DIR/bin/$want.xz" ]] || { echo "the build made no $want" >&2; exit 1; }
done
# The Python suite, less the Ray tests (test_distributed*.py and their helper module): they need
# the optional Ray extra, which the GPU machine lacks (their modules import
# candle_embed.distributed, an ImportError without Ray, so pytest would fail at collection), and
# they run on CPU tables only, so --only-device would deselect them anyway.
for test_file in python/tests/*.py; do
  case "$(basename "$test_file")" in
    test_distributed*.py | distributed_support.py) ;;
    *) cp "$test_file" "$DIR/tests/" ;;
  esac
done
cp benches/gpu/bench_gpu.py benches/gpu/_bench_cases.py benches/gpu/run.py benches/gpu/only_device.py \
  benches/peers.py "$DIR/"
cat > "$DIR/README.txt" <<EOF
candle-embed GPU check. On a machine with an NVIDIA GPU (driver for CUDA >= 13.0) and Python
with NumPy, pytest and PyTorch (CUDA 13 build), no network needed:

    python3 run.py --out RESULTS_DIR

It installs the wheel into a temporary folder, runs the Rust GPU tests, the pytest suite on
cuda:0 (portable candle path, then CANDLE_EMBED_CUDA_KERNELS=1) and the benchmarks, and writes
run.log, results.json (every step and every figure), bench_kernels.json, bench_api_portable.json
and bench_api_kernels.json into RESULTS_DIR (default \$OUT, else ./results). Exit status 0 only
if every step passed. At most 7.5 minutes (--budget).
EOF
"$PY" - "$DIR" <<'EOF'
import hashlib, json, os, subprocess, sys, time
d = sys.argv[1]
def git(*a):
    return subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()
files = {}
for root, _, names in os.walk(d):
    for n in sorted(names):
        p = os.path.join(root, n)
        files[os.path.relpath(p, d)] = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout.strip().splitlines()
manifest = {
    "commit": git("rev-parse", "HEAD"),
    "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "nvcc": nvcc[-2] if len(nvcc) >= 2 else nvcc,
    "cuda_compute_cap": os.environ.get("CUDA_COMPUTE_CAP"),
    "files": files,
}
json.dump(manifest, open(os.path.join(d, "MANIFEST.json"), "w"), indent=1)
EOF
size_kib=$(du -sk "$DIR" | cut -f1)
echo "bundle: $DIR ($((size_kib / 1024)) MiB) built in $((SECONDS - start)) s"
if (( size_kib > 60 * 1024 )); then
  echo "the bundle is over 60 MiB" >&2
  exit 1
fi

# 3. Optional dry run here: the same runner, CPU cases, the toolkit's stub CUDA libraries (each
#    stub function returns CUDA_ERROR_NO_DEVICE, so the wheel imports and lists only "cpu").
if (( DRY_RUN )); then
  "$PY" "$DIR/run.py" --dry-run --out "$DIR-dryrun" \
    --lib-dir "$CUDA_HOME/lib" --lib-dir "$CUDA_HOME/lib/stubs"
fi

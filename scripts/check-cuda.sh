#!/usr/bin/env bash
# CI check of the `cuda` feature on a machine without a GPU: installs the pinned nvcc from PyPI
# (scripts/cuda-toolkit.sh), compiles candle's CUDA kernels and ours (fatbins), runs clippy
# -D warnings on the crate with `--features cuda` (lib, tests, benches, examples), compiles and
# links its tests, and runs the ones that need no GPU: the unit tests (among them the fatbin
# check: every kernel file holds sm_90 SASS + compute_90 PTX, and the host-staged optimizer
# walk) and tests/cuda.rs + tests/cuda_ops.rs, whose GPU tests skip themselves. The GPU run
# itself is the bundle's job (scripts/gpu-bundle.sh).
#
# Both cargo commands use the dev profile and select the same package, so they share the run
# of candle-kernels' build script (nvcc over all of candle's kernels: most of the time); a
# release build, or a different package selection (which unifies build-dependency features
# differently), would run it again. Debug info is off: it only slows the links. The build has
# its own target dir (default target/cuda), so it never evicts the CPU build.
# The bindings crate has no CUDA-specific code; the CPU clippy in scripts/test.sh covers it.
# Time on the project's shared 2-core machine: warm 6 s (nothing changed), 75 s after a merge
# (the crate rebuilt, tests relinked); cold (fresh target dir, toolkit already in its cache)
# 14-28 min depending on load, 10-22 min of it candle-kernels' nvcc. A clean CI machine also
# downloads the toolkit (~300 MB from PyPI) once.
# Opt out with CANDLE_EMBED_SKIP_CUDA=1.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${CANDLE_EMBED_SKIP_CUDA:-0}" == "1" ]]; then
  echo "CANDLE_EMBED_SKIP_CUDA=1: cuda feature check skipped"
  exit 0
fi

toolkit_env=$(bash scripts/cuda-toolkit.sh)  # a failed install stops here (set -e)
eval "$toolkit_env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"
export CARGO_PROFILE_DEV_DEBUG=0
echo "nvcc: $(nvcc --version | tail -2 | head -1); CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP; target: $CARGO_TARGET_DIR"

start=$SECONDS
cargo clippy -p candle-embed --all-targets --features cuda -- -D warnings
echo "clippy --features cuda: $((SECONDS - start)) s"
cargo test -p candle-embed --features cuda --no-run
echo "tests linked: $((SECONDS - start)) s"

# Without a driver, the test binaries load the toolkit's link stubs (every CUDA call returns
# CUDA_ERROR_NO_DEVICE); with one, the real libraries.
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
  export LD_LIBRARY_PATH="$CUDA_HOME/lib:$CUDA_HOME/lib/stubs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
cargo test -p candle-embed --features cuda --lib --test cuda --test cuda_ops
echo "cuda feature checked in $((SECONDS - start)) s"

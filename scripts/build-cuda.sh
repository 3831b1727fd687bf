#!/usr/bin/env bash
# Build candle-embed with CUDA on a machine with no GPU and no system CUDA: the compile toolchain
# comes from PyPI (scripts/cuda-toolkit.sh). Usage:
#     bash scripts/build-cuda.sh            # core crate:  cargo build --release --features cuda
#     bash scripts/build-cuda.sh wheel      # + a CUDA-enabled wheel in dist/ (maturin)
# CUDA_COMPUTE_CAP picks the GPU generation for candle's own kernels (default 90 = H100; use 80
# for A100, 89 for L4/RTX 40xx, 100 for B200). CARGO_TARGET_DIR defaults to target/cuda so the
# CUDA build does not evict the CPU build's cache.
#
# Running the result needs an NVIDIA driver for CUDA >= 13.4 and the CUDA 13 runtime libraries
# (libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13) on the loader path, e.g.
#     pip install nvidia-cublas nvidia-curand nvidia-cuda-nvrtc nvidia-cuda-runtime
#     export LD_LIBRARY_PATH="$(python -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))')"
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(bash scripts/cuda-toolkit.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"
echo "nvcc: $(command -v nvcc) ($(nvcc --version | tail -1)); CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"

start=$SECONDS
cargo build --release --features cuda -p candle-embed
echo "core crate built with CUDA in $((SECONDS - start)) s"

if [[ "${1:-}" == "wheel" ]]; then
  start=$SECONDS
  PY="${PYTHON:-python3}"
  "$PY" -m maturin build --release --features cuda -o dist
  echo "CUDA wheel built in $((SECONDS - start)) s: $(ls dist/*.whl)"
fi

#!/usr/bin/env bash
# Build candle-embed with CUDA on a machine with no GPU and no system CUDA: the compile toolchain
# (CUDA 13.0, the driver's version on the target machines) comes from PyPI
# (scripts/cuda-toolkit.sh). Usage:
#     bash scripts/build-cuda.sh            # core crate:  cargo build --release --features cuda
#     bash scripts/build-cuda.sh wheel      # + an abi3 CUDA wheel in $DIST (default target/cuda/wheels)
# CUDA_COMPUTE_CAP picks the GPU generation (default 90 = H100/H200; 80 for A100, 89 for L4,
# 100 for B200): candle's kernels get code for it, ours SASS for it plus PTX for newer GPUs.
# CARGO_TARGET_DIR defaults to target/cuda so the CUDA build does not evict the CPU build's
# cache. PYTHON names the interpreter maturin builds for (any CPython >= 3.9: the wheel is abi3).
#
# Running the result needs an NVIDIA driver for CUDA >= 13.0 and the CUDA 13 runtime libraries
# on the loader path: libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10 and
# libnvrtc.so.13. PyTorch's CUDA 13 wheels install them under site-packages/nvidia/cu13/lib
# (the GPU bundle's runner, benches/gpu/run.py, finds them there); otherwise
#     pip install nvidia-cuda-runtime nvidia-cublas nvidia-curand nvidia-cuda-nvrtc
set -euo pipefail
cd "$(dirname "$0")/.."

toolkit_env=$(bash scripts/cuda-toolkit.sh)  # a failed install stops here (set -e)
eval "$toolkit_env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"
echo "nvcc: $(command -v nvcc) ($(nvcc --version | tail -2 | head -1)); CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"

start=$SECONDS
if [[ "${1:-}" != "wheel" ]]; then
  cargo build --release --features cuda -p candle-embed
  echo "core crate built with CUDA in $((SECONDS - start)) s"
  exit 0
fi

# The wheel links the CUDA driver and libraries, which are not in the manylinux policy and must
# not be grafted into the wheel (the driver belongs to the machine, the libraries to its CUDA
# install), so maturin's auditwheel step is skipped; the wheel is tagged linux_x86_64 for the
# same reason: it is not self-contained.
DIST="${DIST:-$CARGO_TARGET_DIR/wheels}"
PY="${PYTHON:-python3}"
rm -rf "$DIST"
"$PY" -m maturin build --release --features cuda --interpreter "$PY" \
  --compatibility linux --auditwheel skip -o "$DIST"
echo "CUDA wheel built in $((SECONDS - start)) s: $(ls "$DIST"/*.whl)"

#!/usr/bin/env bash
# Install a CUDA 13.0 compile toolchain from PyPI (no GPU, no driver, no root) and print the
# environment that `cargo build --features cuda` needs. Usage:
#     eval "$(bash scripts/cuda-toolkit.sh)"
# Idempotent: a second run only prints the environment. Everything lives under
# $CANDLE_EMBED_CUDA_HOME (default ~/.cache/candle-embed/cuda-13.0), about 300 MB.
#
# Why 13.0: the compiler must not be newer than the CUDA version of the driver that runs the
# code. The target GPU machines run driver 580 (CUDA 13.0), and PTX written by a newer nvcc
# (13.4's PTX ISA) is refused there with CUDA_ERROR_UNSUPPORTED_PTX_VERSION. cudarc 0.19 reads
# the version from `nvcc --version` (candle enables its `cuda-version-from-build-system`), so
# this pin also makes cudarc bind the 13.0 API (feature cuda-13000) and nothing newer.
# Override with CANDLE_EMBED_CUDA_VERSION / _RUNTIME_VERSION / _CCCL_VERSION for another driver.
#
# What it installs (PyPI, CUDA 13.0.x):
#   nvidia-cuda-nvcc (nvcc, ptxas, fatbinary), nvidia-nvvm (cicc + libdevice), nvidia-cuda-crt,
#   nvidia-cuda-runtime (headers + libcudart), nvidia-cuda-cccl (cub/thrust/libcu++ headers).
# What it makes: link stubs for the libraries candle's cudarc links dynamically (libcuda.so.1,
#   libnvrtc.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10), generated from the
#   symbol lists in cudarc's own bindings, like the toolkit's lib/stubs: they satisfy the linker
#   here; at run time the real driver and libraries are loaded by soname. Every stub function
#   returns 100 (CUDA_ERROR_NO_DEVICE), so a program that is run against the stubs on a machine
#   without a GPU (the bundle's --dry-run) fails cleanly at cuInit, the first call of any CUDA use.
set -euo pipefail

VER="${CANDLE_EMBED_CUDA_VERSION:-13.0.88}"
RUNTIME_VER="${CANDLE_EMBED_CUDA_RUNTIME_VERSION:-13.0.96}"
CCCL_VER="${CANDLE_EMBED_CCCL_VERSION:-13.0.85}"
PREFIX="${CANDLE_EMBED_CUDA_HOME:-$HOME/.cache/candle-embed/cuda-${VER%.*}}"
ROOT="$PREFIX/nvidia/cu13"
PY="${PYTHON:-python3}"

if [[ ! -x "$ROOT/bin/nvcc" || ! -x "$ROOT/nvvm/bin/cicc" ]]; then
  echo "installing the CUDA $VER compile toolchain from PyPI into $PREFIX" >&2
  "$PY" -m pip install --quiet --no-deps --upgrade --target "$PREFIX" \
    "nvidia-cuda-nvcc==$VER" "nvidia-nvvm==$VER" "nvidia-cuda-crt==$VER" \
    "nvidia-cuda-runtime==$RUNTIME_VER" "nvidia-cuda-cccl==$CCCL_VER" >&2
fi

# libcudart.so (linker name) for candle-kernels' `-lcudart`.
if [[ ! -e "$ROOT/lib/libcudart.so" ]]; then
  ln -sf libcudart.so.13 "$ROOT/lib/libcudart.so"
fi

# Link stubs, one per library cudarc links with its `dynamic-linking` feature.
STUBS="$ROOT/lib/stubs"
if [[ ! -e "$STUBS/.done" ]]; then
  mkdir -p "$STUBS"
  CUDARC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | sort -V | tail -1 || true)"
  if [[ -z "$CUDARC" ]]; then
    (cd "$(dirname "$0")/.." && cargo fetch --quiet) >&2
    CUDARC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | sort -V | tail -1)"
  fi
  # name:soname:binding module
  for spec in cuda:libcuda.so.1:driver nvrtc:libnvrtc.so.13:nvrtc cublas:libcublas.so.13:cublas \
              cublasLt:libcublasLt.so.13:cublaslt curand:libcurand.so.10:curand; do
    IFS=: read -r name soname module <<<"$spec"
    sed -n 's/^pub unsafe fn \([A-Za-z0-9_]*\)(.*/int \1(void) { return 100; }/p' \
      "$CUDARC/src/$module/sys/mod.rs" | sort -u > "$STUBS/$name.c"
    cc -shared -fPIC -o "$STUBS/$soname" -Wl,-soname,"$soname" "$STUBS/$name.c"
    ln -sf "$soname" "$STUBS/lib$name.so"
    rm -f "$STUBS/$name.c"
  done
  touch "$STUBS/.done"
fi

cat <<ENV
export CUDA_HOME="$ROOT"
export PATH="$ROOT/bin:\$PATH"
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-90}"
export LIBRARY_PATH="$ROOT/lib:$STUBS\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
ENV

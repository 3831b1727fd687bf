#!/usr/bin/env bash
# CI check of the `cuda` feature on a machine without a GPU: installs nvcc from PyPI, compiles
# candle's and our CUDA kernels to PTX, type-checks and links the crate and its tests with
# `--features cuda`, and runs them (the GPU tests skip themselves when no device opens; the
# host-side validation and segment-plan tests run). Opt out with CANDLE_EMBED_SKIP_CUDA=1.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${CANDLE_EMBED_SKIP_CUDA:-0}" == "1" ]]; then
  echo "CANDLE_EMBED_SKIP_CUDA=1: cuda feature check skipped"
  exit 0
fi

eval "$(bash scripts/cuda-toolkit.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"
start=$SECONDS
cargo clippy --features cuda -p candle-embed --all-targets -- -D warnings
cargo test --release --features cuda -p candle-embed --test cuda --lib
echo "cuda feature checked in $((SECONDS - start)) s"

#!/usr/bin/env bash
# Every check: formatting, lints, Rust tests, the release wheel, the stub, the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "no import loops (core and bindings)"
python3 scripts/check_import_loops.py src bindings/python/src

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc (core crate, warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p candle-embed

step "cargo test (release: shares the build with the wheel)"
cargo test --release -p candle-embed

step "release wheel + virtual environment"
bash scripts/setup.sh

step "ruff, mypy, stubtest"
.venv/bin/ruff check python benches
.venv/bin/ruff format --check python benches
.venv/bin/mypy
.venv/bin/python -m mypy.stubtest candle_embed._native --allowlist python/stubtest-allowlist.txt

step "pytest"
set +e
.venv/bin/python -m pytest -q python/tests "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests (exit 5): treated as a failure, the suite must not be empty" >&2
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with the runtime, demo and test
# dependencies (Ray included), and the candle_embed wheel built in release mode and installed
# into it.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "maturin>=1.7,<2" numpy tqdm matplotlib pytest hypothesis mypy ruff gensim
# Ray: the optional [ray] extra (candle_embed.distributed); its tests run a real local cluster.
.venv/bin/python -m pip install -q "ray>=2.9,<3"

rm -rf dist
.venv/bin/maturin build --release --interpreter .venv/bin/python -o dist
.venv/bin/python -m pip install -q --force-reinstall --no-deps dist/candle_embed-*.whl
echo "candle_embed installed in .venv ($(.venv/bin/python -c 'import candle_embed as ce; print(ce.__version__)'))"

#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run `python -m candle_embed demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m candle_embed demo "$@"

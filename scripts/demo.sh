#!/usr/bin/env bash
# Runs the demo (the README's main command): sets up .venv (scripts/setup.sh), then
# examples/demo.py, which trains an over-wide CNN and, from the same initial weights for the
# same epochs, a copy pruned during fit by keras_darn's recommended method (darn.prepare ->
# fit -> callback.finish()), exports the small model to TFLite and prints a before/after
# table; the table, the .tflite file and a plot go to demo_output/. Extra arguments go to
# the demo, e.g. `bash scripts/demo.sh --epochs=8 --fraction=0.8`; see `--help`.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo_root/scripts/setup.sh"
cd "$repo_root"
exec "$repo_root/.venv/bin/python" examples/demo.py "$@"

#!/usr/bin/env bash
# Runs the demo (the README's main command): sets up .venv (scripts/setup.sh), then
# examples/demo.py, which trains an over-wide CNN, switches off units, shrinks, exports to
# TFLite and prints a before/after table. Extra arguments go to the demo, e.g.
# `bash scripts/demo.sh --epochs=5 --prune_fraction=0.7`; see `--helpfull`.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo_root/scripts/setup.sh"
cd "$repo_root"
exec "$repo_root/.venv/bin/python" examples/demo.py "$@"

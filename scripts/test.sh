#!/usr/bin/env bash
# Runs the test suite (the README's test command): sets up .venv (scripts/setup.sh), then
# `python -m pytest`. Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/datasets -x`.
# The default run excludes tests marked `slow` (pytest.ini); run those with `-m slow`.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo_root/scripts/setup.sh"
cd "$repo_root"
exec "$repo_root/.venv/bin/python" -m pytest "$@"

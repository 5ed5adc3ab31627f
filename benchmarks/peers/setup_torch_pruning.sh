#!/usr/bin/env bash
# Creates the virtual environment of the Torch-Pruning peer (CPU torch only).
# Usage: bash benchmarks/peers/setup_torch_pruning.sh [VENV_DIR]   (default: ~/.venvs/torch-pruning)
# torch is pinned exactly: a CPU wheel of this version is what the benchmark was run with;
# an unpinned `torch` pulls a CUDA build of several GB.
set -euo pipefail
VENV="${1:-$HOME/.venvs/torch-pruning}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "torch==2.13.0" "torch-pruning==1.6.1" "numpy" "absl-py"
"$VENV/bin/python" -c "import torch, torch_pruning; print('torch', torch.__version__, 'torch_pruning', torch_pruning.__version__)"

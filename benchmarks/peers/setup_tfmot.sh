#!/usr/bin/env bash
# Creates the Keras 2 virtual environment of the tfmot peers (peer_tfmot.py, peers/tfmot_sparse_peer.py).
# Usage: bash benchmarks/peers/setup_tfmot.sh [VENV_DIR]   (default: ~/.venvs/tfmot)
# The versions are those the benchmarks were run with; tfmot needs Keras 2 (tf-keras, TF_USE_LEGACY_KERAS=1).
set -euo pipefail
VENV="${1:-$HOME/.venvs/tfmot}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "tensorflow-cpu==2.21.0" "tf-keras==2.21.0" "tensorflow-model-optimization==0.8.1" "absl-py"
TF_USE_LEGACY_KERAS=1 "$VENV/bin/python" -c "import tensorflow as tf, tensorflow_model_optimization as tfmot; print('tensorflow', tf.__version__, 'tfmot', tfmot.__version__)"

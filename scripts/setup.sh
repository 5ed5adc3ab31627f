#!/usr/bin/env bash
# Set-up shared by scripts/demo.sh and scripts/test.sh; source it, or run it on its own.
#
# 1. Creates the virtual environment .venv at the repository root if it is missing.
# 2. Installs keras_darn into it, editable, with the `test` and `benchmarks` extras (and
#    keras-hub without tensorflow-text, for the tests). The
#    install is skipped when a stamp file says this setup.py was already installed the
#    same way, so repeated runs take a second.
# 3. Makes Fashion-MNIST available: if it is not found (KERAS_DARN_DATA_DIR or the Debian
#    path) and apt-get can be used as root, installs the Debian package
#    dataset-fashion-mnist; otherwise says that the demo will use scikit-learn's digits.
#
# Environment variables:
#   PYTHON                 interpreter that creates .venv (default: python3; needs >= 3.10).
#   KERAS_DARN_TENSORFLOW  TensorFlow distribution to depend on: tensorflow-cpu (default
#                          here; pip would otherwise fetch the larger `tensorflow` wheel, see
#                          setup.py) or tensorflow (for GPUs).
#   KERAS_DARN_DATA_DIR    directory holding the Fashion-MNIST IDX files.
#   KERAS_DARN_SKIP_DATA=1 skip step 3.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

python_for_venv="${PYTHON:-python3}"
venv_python="$repo_root/.venv/bin/python"
export KERAS_DARN_TENSORFLOW="${KERAS_DARN_TENSORFLOW:-tensorflow-cpu}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
extras="test,benchmarks"

say() { printf '[setup] %s\n' "$*" >&2; }

if [ ! -x "$venv_python" ]; then
  if ! "$python_for_venv" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "keras_darn needs Python >= 3.10; '$python_for_venv' is missing or older. Set PYTHON=/path/to/python3."
    exit 1
  fi
  say "creating .venv with $("$python_for_venv" --version 2>&1)"
  if ! "$python_for_venv" -m venv "$repo_root/.venv"; then
    say "'$python_for_venv -m venv' failed; on Debian/Ubuntu install python3-venv (apt-get install -y python3-venv)."
    exit 1
  fi
fi

install_key="$( { sha256sum setup.py; echo "extras=$extras tensorflow=$KERAS_DARN_TENSORFLOW keras-hub=0.32"; "$venv_python" --version; } 2>&1 | sha256sum | cut -d' ' -f1)"
stamp="$repo_root/.venv/.keras_darn_install_stamp"
if [ "$(cat "$stamp" 2>/dev/null)" != "$install_key" ]; then
  say "installing keras_darn (editable, extras: $extras, TensorFlow: $KERAS_DARN_TENSORFLOW) into .venv; the first time takes a few minutes"
  "$venv_python" -m pip install -qq --disable-pip-version-check -e ".[$extras]"
  # keras-hub, for the tests of the Rebuilder's keras-hub registrations (the `hub` extra). Its
  # dependency tensorflow-text would install the full `tensorflow` wheel beside tensorflow-cpu;
  # keras-hub imports it only for tokenizers, which the tests do not use, so it is left out:
  # its other dependencies first, then keras-hub itself without dependencies (pip then has no
  # conflict with the missing tensorflow-text to report).
  "$venv_python" -m pip install -qq --disable-pip-version-check kagglehub regex rich sentencepiece tokenizers
  "$venv_python" -m pip install -qq --disable-pip-version-check --no-deps "keras-hub==0.32.*"
  echo "$install_key" > "$stamp"
else
  say "keras_darn already installed in .venv (setup.py unchanged)"
fi

fashion_mnist_found() {
  # Asks keras_darn's own loader, without running keras_darn/__init__.py: that imports
  # TensorFlow, which would add seconds to every run; keras_darn.datasets needs only NumPy.
  "$venv_python" - "$repo_root" <<'PY' 2>/dev/null
import os, sys, types
package = types.ModuleType("keras_darn")
package.__path__ = [os.path.join(sys.argv[1], "keras_darn")]
sys.modules["keras_darn"] = package
from keras_darn.datasets import fashion_mnist
fashion_mnist.load_fashion_mnist(allow_download=False)
PY
}

if [ "${KERAS_DARN_SKIP_DATA:-0}" != "1" ] && ! fashion_mnist_found; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "Fashion-MNIST not found; running as root, so installing the Debian package dataset-fashion-mnist"
    say "with 'apt-get install' (about 30 MB; set KERAS_DARN_SKIP_DATA=1 to skip this step)"
    apt_log="$(mktemp)"
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$apt_log" 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall dataset-fashion-mnist >>"$apt_log" 2>&1 \
      && fashion_mnist_found; then
      say "installed dataset-fashion-mnist"
    else
      tail -n 5 "$apt_log" >&2
      say "apt-get did not make Fashion-MNIST available; the demo will use scikit-learn's digits instead"
    fi
    rm -f "$apt_log"
  else
    say "Fashion-MNIST not found and apt-get cannot be used as root here; the demo will use scikit-learn's digits instead."
    say "To get Fashion-MNIST: sudo apt-get install dataset-fashion-mnist, or set KERAS_DARN_DATA_DIR to a directory holding its IDX files."
  fi
fi

"""A model pruned under JAX exports to TFLite under TensorFlow with the same outputs."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_darn as darn

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None or keras.backend.backend() != "tensorflow",
    reason="needs JAX to prune and the TensorFlow backend to export",
)


def test_a_model_pruned_under_jax_exports_to_tflite_with_its_outputs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "KERAS_BACKEND": "jax"}
    completed = subprocess.run([sys.executable, str(HERE / "deploy_worker.py"), str(tmp_path)],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["backend"] == "jax"
    assert info["params_after"] < info["params_before"]

    model = keras.saving.load_model(tmp_path / "pruned.keras")
    assert darn.count_params(model) == info["params_after"]
    inputs, outputs = np.load(tmp_path / "inputs.npy"), np.load(tmp_path / "outputs.npy")
    # The same file on TensorFlow computes what it computed on JAX ...
    np.testing.assert_allclose(model.predict(inputs, verbose=0), outputs, rtol=1e-5, atol=1e-6)
    # ... and so does its TFLite export (relative to the output scale).
    tflite = darn.export.tflite_predict(darn.export.to_tflite(model), inputs)
    error = np.abs(tflite - outputs).max() / np.abs(outputs).max()
    assert error <= 1e-5, error

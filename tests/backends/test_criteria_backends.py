"""The data-driven criteria give the same scores under JAX as under TensorFlow.

`criteria_worker.py` scores fixed models (numpy weights and data) in a fresh
process per backend; the two processes run side by side and this module
compares what they wrote.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BACKENDS = ("tensorflow", "jax")
CRITERIA = ("variance", "l1", "correlation", "taylor1", "taylor2", "brute_force", "evaluate")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="JAX is not installed, so there is no JAX "
    "backend to compare with TensorFlow"
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backends")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    processes = {
        backend: subprocess.Popen(
            [sys.executable, str(HERE / "criteria_worker.py"), str(folder / f"{backend}.json")],
            cwd=ROOT, env={**env, "KERAS_BACKEND": backend},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for backend in BACKENDS
    }
    outputs = {backend: process.communicate(timeout=300)[0]
               for backend, process in processes.items()}
    for backend, process in processes.items():
        assert process.returncode == 0, f"{backend}:\n{outputs[backend][-4000:]}"
    return {b: json.loads((folder / f"{b}.json").read_text()) for b in BACKENDS}


def test_each_worker_ran_on_its_backend(results):
    assert {b: results[b]["backend"] for b in BACKENDS} == {b: b for b in BACKENDS}


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("criterion", CRITERIA)
def test_scores_under_jax_equal_tensorflow(results, model, criterion):
    expected = results["tensorflow"][model][criterion]
    actual = results["jax"][model][criterion]
    if criterion == "evaluate":  # (loss, accuracy) with two units switched off
        expected, actual = {"evaluate": expected}, {"evaluate": actual}
    assert sorted(actual) == sorted(expected)
    # A correlation divides by standard deviations that come from
    # E[a^2] - E[a]^2 in float32: for a nearly constant unit the two
    # backends' summation orders differ by ~1e-4 there.
    atol = 1e-3 if criterion == "correlation" else 1e-6
    for key in expected:
        assert len(expected[key]) > 0
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4, atol=atol,
                                   err_msg=f"{model} {criterion} {key}")


def test_growth_sources_and_gradmax_under_jax_equal_tensorflow(results):
    expected, actual = results["tensorflow"]["growth"], results["jax"]["growth"]
    assert actual["sources"] == expected["sources"]
    assert len(actual["gradmax"]) == len(expected["gradmax"]) == 6
    for got, want in zip(actual["gradmax"], expected["gradmax"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_prepare_fit_finish_under_jax_returns_a_plain_smaller_model(results):
    prepared = results["jax"]["prepare"]
    assert prepared["params_after"] < prepared["params_before"]
    assert prepared["layer_types"] == ["keras"]  # no keras_darn layer left in
    assert prepared == results["tensorflow"]["prepare"]


def test_import_keras_darn_under_jax_does_not_load_tensorflow(results):
    assert results["jax"]["tensorflow_after_import"] is False
    assert results["tensorflow"]["tensorflow_after_import"] is True

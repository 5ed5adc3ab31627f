"""Under JAX, no method breaks or changes the model given.

JAX's `fit` donates (deletes) the arrays of the model it trains, so a copy
sharing an array with the model given (a variable assigned another
variable, a reused layer) deletes that model's weights or optimizer state
the first time the copy trains. `untouched_worker.py` runs every registered
method through the front door under `KERAS_BACKEND=jax` in a fresh process
and reports, per method, whether the model given still predicts the same,
keeps its weights, trains, and shares no array with the copies.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

import keras_darn as darn

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# Every method in one JAX process takes about 3 minutes: CI runs it with the slow tests.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("jax") is None,
        reason="JAX is not installed, so there is no JAX backend to run the methods on",
    ),
]


def _expected_cases():
    # Methods registered by tests (their names start with "test_") are theirs.
    keys = ["magnitude/prepare+distill"]
    for name in [n for n in darn.methods.names() if not n.startswith("test_")]:
        method = darn.methods.get(name)
        if method.acts_between_fits:
            keys.append(f"{name}/resize")
        if method.acts_during_fit:
            keys.append(f"{name}/prepare")
    return sorted(keys)


@pytest.fixture(scope="module")
def errors(tmp_path_factory):
    path = tmp_path_factory.mktemp("untouched") / "jax.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "jax"}
    completed = subprocess.run(
        [sys.executable, str(HERE / "untouched_worker.py"), str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-4000:]
    result = json.loads(path.read_text())
    assert result["backend"] == "jax"
    return result["errors"]


def test_the_worker_ran_every_registered_method(errors):
    assert sorted(errors) == _expected_cases()


@pytest.mark.parametrize("case", _expected_cases())
def test_the_model_given_is_untouched_under_jax(errors, case):
    assert errors.get(case, "not run") is None, errors.get(case, "not run")

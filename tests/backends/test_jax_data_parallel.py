"""Pruning during `fit` under JAX's DataParallel chooses what one device chooses."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                reason="JAX is not installed")


def _run(tmp_path, devices):
    out = tmp_path / f"devices{devices}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "KERAS_BACKEND": "jax",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    return subprocess.Popen([sys.executable, str(HERE / "data_parallel_worker.py"), str(out),
                             str(devices)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True), out


def test_two_host_devices_prune_the_units_one_device_prunes(tmp_path):
    runs = {devices: _run(tmp_path, devices) for devices in (1, 2)}
    results = {}
    for devices, (process, out) in runs.items():
        log = process.communicate(timeout=300)[0]
        assert process.returncode == 0, log[-4000:]
        results[devices] = json.loads(out.read_text())
    assert results[2]["devices"] == results[2]["weight_devices"] == 2
    assert results[1]["weight_devices"] == 1
    assert results[1]["events"], "the run pruned nothing"
    assert results[2]["events"] == results[1]["events"]
    assert results[2]["widths"] == results[1]["widths"]

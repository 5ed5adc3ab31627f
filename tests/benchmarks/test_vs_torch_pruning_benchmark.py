"""`benchmarks/vs_torch_pruning.py` (keras_darn's side): per-run records, resume, the
distillation and from-scratch arms.

The benchmark runs in its own process on tiny Fashion-MNIST-shaped IDX files
written here, twice; the module is marked slow (CI runs it, `.ci/run`). The
Torch-Pruning peer needs its own environment and is not run here.
"""

import glob
import json
import os
import subprocess
import sys

import pytest

from support.fashion_files import write_fashion

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path):
    return write_fashion(tmp_path / "fashion", 96, 32)


def run_benchmark(tmp_path, data_dir, methods):
    command = [
        sys.executable, os.path.join(REPO, "benchmarks", "vs_torch_pruning.py"),
        f"--data_dir={data_dir}", f"--output_dir={tmp_path / 'results'}", "--tools=keras_darn",
        "--networks=plain", "--ratios=4", "--seeds=0", f"--methods={methods}",
        "--scratch_of=magnitude_uniform", "--epochs=2", "--pretrain_epochs=1", "--steps=1",
        "--num_train=96", "--num_test=32", "--num_score=32", "--batch_size=32",
        "--recalibrate_bn=0", "--protocol=same_start",
    ]
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)


def test_runs_are_recorded_one_file_each_and_skipped_when_present(tmp_path, data_dir):
    first = run_benchmark(tmp_path, data_dir, "magnitude_uniform")
    assert first.returncode == 0, first.stderr[-3000:]
    records = glob.glob(str(tmp_path / "results" / "vs_torch_pruning_runs" / "*" / "*.json"))
    names = sorted(os.path.basename(p).split("__")[2] for p in records)
    assert names == ["magnitude_uniform", "magnitude_uniform_scratch", "unpruned"]
    pruned = next(p for p in records if "__magnitude_uniform__" in p)
    row = json.loads(open(pruned).read())
    assert row["params"] <= row["target_params"] and "architecture" in row
    scratch = json.loads(open(next(p for p in records if "_scratch__" in p)).read())
    assert scratch["params"] == row["params"]  # the pruned architecture, from a fresh start
    stamps = {p: os.path.getmtime(p) for p in records}

    second = run_benchmark(tmp_path, data_dir, "magnitude_uniform,magnitude_uniform_distill,"
                                                "magnitude_uniform_distill_trained,unpruned_reset")
    assert second.returncode == 0, second.stderr[-3000:]
    for path, stamp in stamps.items():  # present runs are not redone
        assert os.path.getmtime(path) == stamp
    for arm in ("magnitude_uniform_distill", "magnitude_uniform_distill_trained"):
        distilled = glob.glob(str(tmp_path / "results" / "vs_torch_pruning_runs" / "*" /
                                  f"*__{arm}__*.json"))
        assert len(distilled) == 1, arm
    # The unpruned network trained on from the snapshot with a fresh optimizer: one run, at 1x.
    fresh = glob.glob(str(tmp_path / "results" / "vs_torch_pruning_runs" / "*" /
                          "*__unpruned_reset__*.json"))
    assert [os.path.basename(p).split("__")[3] for p in fresh] == ["r1"]
    unpruned = json.loads(open(next(p for p in records if "__unpruned__" in p)).read())
    assert json.loads(open(fresh[0]).read())["params"] == unpruned["params"]
    summary = json.loads((tmp_path / "results" / "vs_torch_pruning_same_start.json").read_text())
    assert {r["method"] for r in summary["rows"]} == {
        "unpruned", "magnitude_uniform", "magnitude_uniform_distill",
        "magnitude_uniform_distill_trained", "magnitude_uniform_scratch", "unpruned_reset"}
    assert all("architecture" not in r for r in summary["rows"])

"""`benchmarks/nodedrop.py`: --checkpoint_dir saves runs and resumes them; --finetune_epochs.

The benchmark runs in its own process, as a user runs it, on tiny
Fashion-MNIST-shaped IDX files written here. Each test starts the benchmark
two or three times, so the module is marked slow; CI runs it (`.ci/run`).
"""

import json
import os
import subprocess
import sys

import pytest

from support.fashion_files import write_fashion

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_TRAIN, NUM_TEST = 64, 20
pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path):
    return write_fashion(tmp_path / "fashion", NUM_TRAIN, NUM_TEST)


def run_benchmark(tmp_path, data_dir, *extra):
    command = [
        sys.executable, os.path.join(REPO, "benchmarks", "nodedrop.py"),
        f"--data_dir={data_dir}", f"--output_dir={tmp_path / 'results'}",
        f"--checkpoint_dir={tmp_path / 'checkpoints'}", "--networks=DENSE160",
        "--lambdas=1", "--learning_rate=0.01", f"--num_train={NUM_TRAIN}", f"--num_test={NUM_TEST}",
        "--batch_size=16", "--overhead_networks=", *extra,
    ]
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


def read_state(tmp_path, run):
    with open(tmp_path / "checkpoints" / f"DENSE160_{run}.json") as f:
        return json.load(f)


def test_runs_resume_where_their_checkpoints_stop(tmp_path, data_dir):
    first = run_benchmark(tmp_path, data_dir, "--epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    after_one = {run: read_state(tmp_path, run) for run in ("baseline", "1.0e+00")}
    assert [s["epochs_done"] for s in after_one.values()] == [1, 1]
    assert os.path.exists(tmp_path / "checkpoints" / "DENSE160_1.0e+00.keras")

    second = run_benchmark(tmp_path, data_dir, "--epochs=3")
    assert second.returncode == 0, second.stderr[-3000:]
    for run in ("baseline", "1.0e+00"):
        assert f"DENSE160 lambda={run}: resumed after epoch 1" in second.stdout
        state = read_state(tmp_path, run)
        assert state["epochs_done"] == 3
        assert len(state["epoch_seconds"]) == 3
        # The first epoch's record is kept, the resumed epochs are appended.
        assert state["history"]["loss"][0] == after_one[run]["history"]["loss"][0]
        assert len(state["history"]["loss"]) == 3
    # lambda = 1 at this learning rate drops a few units in the first epoch and
    # most of the rest in the resumed ones (live units 159, 156, 13).
    resumed = read_state(tmp_path, "1.0e+00")
    assert 0 < after_one["1.0e+00"]["drops"] < resumed["drops"]
    # Masks come back with the model: no dropped unit is live again after the resume.
    live = resumed["history"]["live_units"]
    assert live[0] < 160 and live == sorted(live, reverse=True), live

    with open(tmp_path / "results" / "nodedrop.json") as f:
        results = json.load(f)
    assert results["complete"]
    assert [len(run["history"]["loss"]) for run in results["runs"]] == [3, 3]


def test_a_checkpoint_with_other_settings_is_refused(tmp_path, data_dir):
    assert run_benchmark(tmp_path, data_dir, "--epochs=1").returncode == 0
    refused = run_benchmark(tmp_path, data_dir, "--epochs=1", "--learning_rate=0.02")
    assert refused.returncode != 0
    assert "was made with" in refused.stderr
    assert "'learning_rate': 0.01" in refused.stderr
    assert "'learning_rate': 0.02" in refused.stderr


def test_finetune_epochs_train_without_the_penalty(tmp_path, data_dir):
    result = run_benchmark(tmp_path, data_dir, "--epochs=3", "--finetune_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    state = read_state(tmp_path, "1.0e+00")
    assert state["settings"]["penalty_epochs"] == 2
    loss = state["history"]["loss"]
    # lambda = 1 makes the penalty dominate the loss (hundreds); without it the
    # loss is the cross-entropy of 10 classes, about ln(10) = 2.3.
    assert loss[1] > 50 and loss[2] < 5, loss
    # The baseline trains all epochs without a penalty and keeps its settings.
    assert "penalty_epochs" not in read_state(tmp_path, "baseline")["settings"]
    with open(tmp_path / "results" / "nodedrop.md") as f:
        assert "without it (lambda 0) for the last 1" in f.read()

    # Longer fine-tuning after the same penalty epochs resumes both runs...
    longer = run_benchmark(tmp_path, data_dir, "--epochs=4", "--finetune_epochs=2")
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert "DENSE160 lambda=1.0e+00: resumed after epoch 3" in longer.stdout
    loss = read_state(tmp_path, "1.0e+00")["history"]["loss"]
    assert len(loss) == 4 and loss[3] < 5, loss
    assert read_state(tmp_path, "baseline")["epochs_done"] == 4
    # ... while other penalty epochs cannot continue this run.
    refused = run_benchmark(tmp_path, data_dir, "--epochs=5", "--finetune_epochs=2")
    assert refused.returncode != 0
    assert "'penalty_epochs': 3" in refused.stderr

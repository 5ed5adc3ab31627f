"""keras_darn's callbacks under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1.

The test starts the workers itself (`cluster.start`, `TF_CONFIG` with free
ports, CPU only), bounds every run in time and kills the workers when
anything fails. One run of the scenarios (NodeDrop, Standout and criterion
pruning through `darn.prepare`, growth between fits with `fit_with_growth`)
is compared with the single-process run of the same models: same global
batch, same data order.
"""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from support import cluster

pytestmark = pytest.mark.slow

SCENARIOS = ("nodedrop", "standout", "pruning", "growth")
DURING_FIT = ("nodedrop", "standout", "pruning")
EPOCHS = 4
TIMEOUT = 420


def _load(directory, scenario):
    arrays = dict(np.load(Path(directory) / f"{scenario}.npz"))
    with open(Path(directory) / f"{scenario}.json") as f:
        return arrays, json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("multi_worker")
    arguments = ["--scenarios", ",".join(SCENARIOS), "--epochs", str(EPOCHS)]
    cluster.wait(cluster.start(out, arguments, workers=0), TIMEOUT)
    cluster.wait(cluster.start(out, arguments, workers=2), TIMEOUT)
    return out


def _same(a, b, exact, keys=None):
    keys = keys or sorted(a)
    assert sorted(a) == sorted(b)
    for key in keys:
        if exact:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("scenario", DURING_FIT)
def test_masks_after_every_epoch_are_identical_on_every_worker(runs, scenario):
    chief, _ = _load(runs / "worker0", scenario)
    other, _ = _load(runs / "worker1", scenario)
    mask_keys = [k for k in chief if k.startswith("masks_")]
    assert mask_keys
    _same(chief, other, exact=True, keys=mask_keys)
    assert any(not m.all() for k in mask_keys for m in chief[k]), "nothing was switched off"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_workers_agree_and_equal_the_single_process_run(runs, scenario):
    chief, chief_info = _load(runs / "worker0", scenario)
    other, other_info = _load(runs / "worker1", scenario)
    reference, reference_info = _load(runs / "reference", scenario)
    _same(chief, other, exact=True)
    assert chief_info["events"] == other_info["events"]
    if scenario == "standout":
        # Standout drops units at random in training: each worker draws for its own
        # half of the batch, so the run is not the single-process one; its masks
        # still follow the same schedule.
        assert [e["live_units"] for e in chief_info["events"]] == [
            e["live_units"] for e in reference_info["events"]
        ]
        return
    _same(chief, reference, exact=False)
    assert chief_info["events"] == reference_info["events"]


def test_growth_between_fits_carries_the_optimizer_state_on_every_worker(runs):
    chief, info = _load(runs / "worker0", "growth")
    other, other_info = _load(runs / "worker1", "growth")
    assert info["events"] and info["events"][0]["widths_after"] == {"h1": 24}
    # Adam's step counter went on across the rebuild: 8 steps per epoch, 4 epochs.
    assert info["iterations"] == other_info["iterations"] == EPOCHS * 256 // 32
    moments = [k for k in chief if k.startswith("optimizer_")]
    assert any(np.abs(chief[k]).sum() > 0 for k in moments)
    _same(chief, other, exact=True, keys=moments)


def test_only_the_chief_writes_checkpoints_shrinks_and_exports(runs):
    chief_files = runs / "worker0" / "chief_files"
    for scenario in DURING_FIT:
        assert (chief_files / f"{scenario}.weights.h5").is_file()
        assert (chief_files / f"{scenario}_small.keras").is_file()
        assert (chief_files / f"{scenario}_saved_model").is_dir()
        _, info = _load(runs / "worker0", scenario)
        assert info["small_gap"] < 1e-5  # shrink(model) computes what the masked model does
    assert not (runs / "worker1" / "chief_files").exists()


def test_resume_after_a_worker_is_killed_equals_the_uninterrupted_run(runs, tmp_path):
    backup = tmp_path / "backup"
    arguments = ["--scenarios", "nodedrop_resume", "--epochs", str(EPOCHS), "--backup", str(backup)]
    processes = cluster.start(tmp_path, [*arguments, "--delay", "0.15"], workers=2)
    metadata = backup / "worker0" / "training_metadata.json"

    def two_epochs_saved():
        try:
            return json.loads(metadata.read_text())["epoch"] >= 2
        except (OSError, ValueError, KeyError):
            return False

    cluster.wait_for(two_epochs_saved, processes, TIMEOUT)
    time.sleep(0.5)  # into the next epoch, away from the checkpoint writes
    cluster.kill(processes[1])  # the non-chief dies mid-training ...
    cluster.kill(processes[0])  # ... and the chief, stuck in its all-reduce, is stopped
    assert not (tmp_path / "worker0" / "done").exists()
    cluster.wait(cluster.start(tmp_path, arguments, workers=2), TIMEOUT)
    resumed, resumed_info = _load(tmp_path / "worker0", "nodedrop_resume")
    other, other_info = _load(tmp_path / "worker1", "nodedrop_resume")
    # Both workers went on from the checkpoint, not from epoch 0.
    assert resumed_info["first_epoch"] == other_info["first_epoch"] >= 2
    reference, reference_info = _load(runs / "reference", "nodedrop")
    weights = [k for k in reference if not k.startswith("masks_")]
    _same(resumed, other, exact=True, keys=weights)
    _same(resumed, reference, exact=False, keys=weights)
    assert resumed_info["events"] == reference_info["events"]
    # The front door's per-epoch history came through the kill: every epoch is there.
    assert len(resumed_info["history"]["loss"]) == EPOCHS

"""Helpers of the resume tests: interrupt a `fit`, restart it, compare states."""

import keras
import numpy as np


class Interrupted(RuntimeError):
    """Raised by `InterruptAt`, as a crash would stop training."""


class InterruptAt(keras.callbacks.Callback):
    """Stops training with an exception at the start of epoch `epoch`."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interrupted(f"interrupted at the start of epoch {epoch}")


def training_state(model):
    """Every model variable (weights, masks, statistics) and optimizer variable."""
    return {
        "weights": [np.array(v) for v in model.weights],
        "optimizer": [np.array(v) for v in model.optimizer.variables],
    }


def assert_same_training_state(actual, expected, rtol=1e-6, atol=1e-6):
    for key in ("weights", "optimizer"):
        assert len(actual[key]) == len(expected[key]), key
        for got, want in zip(actual[key], expected[key]):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=key)


def run_with_interruption(make, fit, interrupt_epoch, backup_dir):
    """Trains, interrupted at `interrupt_epoch`, then restarts as a new process would.

    Args:
        make: `make() -> (compiled model, keras_darn callback)`, called twice:
            the restart builds everything again, as after a crash.
        fit: `fit(model, callbacks)` trains for the whole run.
        interrupt_epoch: the epoch at whose start the first run stops.
        backup_dir: the `BackupAndRestore` directory.

    Returns:
        `(model, callback)` of the restarted run.
    """
    model, callback = make()
    try:
        fit(model, [callback, keras.callbacks.BackupAndRestore(backup_dir), InterruptAt(interrupt_epoch)])
    except Interrupted:
        pass
    else:
        raise AssertionError(f"training was not interrupted at epoch {interrupt_epoch}")
    model, callback = make()
    fit(model, [callback, keras.callbacks.BackupAndRestore(backup_dir)])
    return model, callback

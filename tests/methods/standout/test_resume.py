"""StandoutPruning: absolute epochs, reuse across fits, exact resume with BackupAndRestore."""

import keras
import numpy as np
import pytest

from keras_darn.layers.standout_dense import StandoutDense
from keras_darn.methods.standout.callback import StandoutPruning
from keras_darn.resizing.schedules import Geometric
from support.resume import assert_same_training_state
from support.resume import run_with_interruption
from support.resume import training_state

X = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
Y = np.random.default_rng(1).normal(size=(32, 2)).astype("float32")
EPOCHS = 4


def _make():
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            StandoutDense(8, activation="relu", seed=0, name="sd"),
            keras.layers.Dense(2),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model, StandoutPruning(target_units=1, schedule=Geometric(0.5))


def _fit(model, callbacks):
    model.fit(X, Y, epochs=EPOCHS, batch_size=8, shuffle=False, verbose=0, callbacks=callbacks)


def _uninterrupted():
    model, callback = _make()
    _fit(model, [callback])
    return model, callback


@pytest.mark.parametrize("interrupt_epoch", [1, 2, 3])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, interrupt_epoch):
    # Before epochs meant "counted within this fit", the restarted run began
    # the schedule again: 4 live units where the uninterrupted run has 1.
    expected_model, expected = _uninterrupted()
    model, callback = run_with_interruption(_make, _fit, interrupt_epoch, str(tmp_path / "backup"))
    assert model.get_layer("sd").active_units == expected_model.get_layer("sd").active_units == 1
    np.testing.assert_array_equal(
        model.get_layer("sd").get_unit_mask(), expected_model.get_layer("sd").get_unit_mask()
    )
    assert callback.events == expected.events
    assert callback.ratio == expected.ratio
    assert_same_training_state(training_state(model), training_state(expected_model))


def test_epochs_are_absolute():
    model, callback = _make()
    model.fit(X, Y, initial_epoch=2, epochs=3, batch_size=8, verbose=0, callbacks=[callback])
    # schedule(2) = 1 - 0.5 ** 3: ceil(0.875 * 8) = 7 units gone at once.
    assert [e["step"] for e in callback.events] == [2]
    assert model.get_layer("sd").active_units == 1


def test_warns_when_schedule_cannot_fire():
    model, _ = _make()
    callback = StandoutPruning(target_units=1, schedule=Geometric(0.5, every=10))
    with pytest.warns(UserWarning, match=r"acts at no epoch in \[0, 3\)"):
        model.fit(X, Y, epochs=3, batch_size=8, verbose=0, callbacks=[callback])
    assert callback.events == []


def test_reused_instance_starts_afresh():
    model, callback = _make()
    model.fit(X, Y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    first = [e["step"] for e in callback.events]
    model, _ = _make()
    model.fit(X, Y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    assert [e["step"] for e in callback.events] == first == [0, 1]

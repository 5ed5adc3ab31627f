"""GrowthCallback: per-fit state, absolute epochs, exact resume with BackupAndRestore."""

import warnings

import keras
import numpy as np
import pytest

import keras_darn as darn
from keras_darn.methods.growth import GrowthCallback
from keras_darn.methods.growth import fit_with_growth
from support.resume import assert_same_training_state
from support.resume import run_with_interruption
from support.resume import training_state

X = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
Y = np.random.default_rng(1).integers(0, 3, size=64)
EPOCHS = 4


def _model():
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4, activation="relu", name="h"), keras.layers.Dense(3)]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


def _callback():
    return GrowthCallback(["h"], darn.schedules.Constant(0.5, start=1), criterion="variance",
                          probe_data=X[:32])


def _fit(model, callbacks, **kwargs):
    model.fit(X, Y, epochs=EPOCHS, batch_size=16, shuffle=False, verbose=0, callbacks=callbacks,
              **kwargs)


def test_decisions_are_reset_by_every_fit():
    model, callback = _model(), _callback()
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[callback])
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[callback])
    assert [d.epoch for d in callback.decisions] == [1, 2]


def test_epochs_are_absolute():
    model, callback = _model(), _callback()
    model.fit(X, Y, initial_epoch=2, epochs=4, verbose=0, callbacks=[callback])
    assert [d.step for d in callback.decisions] == [2, 3]
    assert callback.decisions[0].plan == {"h": 2}


def test_warns_when_schedule_cannot_fire():
    callback = GrowthCallback(["h"], darn.schedules.Constant(0.5, start=5))
    with pytest.warns(UserWarning, match=r"acts at no epoch in \[0, 3\).*epochs=3"):
        _model().fit(X, Y, epochs=3, verbose=0, callbacks=[callback])
    assert all(not d.plan for d in callback.decisions)


@pytest.mark.parametrize("interrupt_epoch", [1, 3])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, interrupt_epoch):
    expected_model, expected = _model(), _callback()
    _fit(expected_model, [expected])

    def make():
        return _model(), _callback()

    model, callback = run_with_interruption(make, _fit, interrupt_epoch, str(tmp_path / "b"))
    assert callback.decisions == expected.decisions
    assert [d.step for d in callback.decisions] == list(range(EPOCHS))
    assert callback.pending == expected.pending
    assert_same_training_state(training_state(model), training_state(expected_model))


def test_fit_with_growth_refuses_backup_and_does_not_warn_per_stage(tmp_path):
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "b"))
    with pytest.raises(ValueError, match="BackupAndRestore"):
        fit_with_growth(_model(), X, Y, epochs=2, layers=["h"],
                        schedule=darn.schedules.Constant(0.5, start=1), callbacks=[backup])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = fit_with_growth(_model(), X, Y, epochs=3, layers=["h"],
                                 schedule=darn.schedules.Constant(0.5, start=1))
    assert [d.step for d in result.history["decisions"]] == [0, 1, 2]
    assert result.model.get_layer("h").units == 6  # grown after epoch 1, not after the last


def test_fit_with_growth_needs_a_seed_on_several_workers(monkeypatch):
    from keras_darn.methods.growth import training

    monkeypatch.setattr(training, "worker_count", lambda strategy: 2)
    with pytest.raises(ValueError, match="pass `seed`"):
        fit_with_growth(_model(), X, Y, epochs=2, layers=["h"],
                        schedule=darn.schedules.Constant(0.5, start=1))

"""Criterion pruning (the pruning method's callback) under the shared callback conventions.

These tests check the pruning method's callback, which is built elsewhere;
they are written against the conventions every keras_darn callback follows.

Epochs are Keras' absolute epoch indices; a schedule that cannot act in a
`fit` warns; `BackupAndRestore` resumes to the uninterrupted run's masks,
weights, optimizer state and events.
"""

import warnings

import keras
import numpy as np
import pytest

import keras_darn as darn
from keras_darn.methods.pruning.callback import CriterionPruning
from keras_darn.rebuild.unit_masks import masked_plan
from support.resume import assert_same_training_state
from support.resume import run_with_interruption
from support.resume import training_state

X = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
Y = (X[:, 0] > 0).astype("int64")
EPOCHS = 4


def _plain():
    keras.utils.set_random_seed(11)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="h"),
                             keras.layers.Dense(3, activation="softmax", name="out")])


def _make():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, callback = darn.prepare(_plain(), "weight_l1", darn.Target(fraction=0.5),
                                       schedule=darn.schedules.Linear(start=1, end=2))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model, callback


def _fit(model, callbacks):
    model.fit(X, Y, epochs=EPOCHS, batch_size=16, shuffle=False, verbose=0, callbacks=callbacks)


def test_schedule_that_cannot_act_in_the_fit_warns():
    # Linear(start=0, end=1) acts at epochs 0 and 1; a fit from epoch 3 has none of them.
    model = darn.layers.to_prunable(_plain())
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = CriterionPruning("weight_l1", X, target=darn.Target(fraction=0.5),
                                schedule=darn.schedules.Linear(start=0, end=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, Y, initial_epoch=3, epochs=5, verbose=0, callbacks=[callback])
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    # The message names the fit's epochs (3 to 4, or [3, 5)).
    assert any("3" in m and ("4" in m or "5" in m) for m in messages), messages
    assert model.get_layer("h").active_units == 8


@pytest.mark.parametrize("interrupt_epoch", [1, 2, 3])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, interrupt_epoch):
    expected_model, expected = _make()
    _fit(expected_model, [expected])
    model, callback = run_with_interruption(_make, _fit, interrupt_epoch, str(tmp_path / "b"))
    # The masks come back from the events; the masked units' weights stay zero.
    assert masked_plan(model) == masked_plan(expected_model)
    assert len(masked_plan(model)["h"]) == 4
    assert not model.get_layer("h").get_weights()[0][:, masked_plan(model)["h"]].any()
    assert darn.shrink(model).get_layer("h").units == 4
    assert callback.events == expected.events
    assert_same_training_state(training_state(model), training_state(expected_model))
    assert callback.history["live_units"] == expected.history["live_units"]

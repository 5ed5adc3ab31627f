"""Rebuilt models are compiled like the old one and keep the optimizer state."""

import keras
import numpy as np
import pytest
from support import model_zoo

import keras_darn as darn


def _trained(optimizer):
    model = model_zoo.mlp()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 12)).astype("float32"), rng.integers(0, 3, 64)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model, x, y


def _slots(optimizer, variable, attribute):
    return getattr(optimizer, attribute)[optimizer._get_variable_index(variable)].numpy()


@pytest.mark.parametrize(
    "optimizer, attributes",
    [
        (lambda: keras.optimizers.Adam(1e-3), ["_momentums", "_velocities"]),
        (lambda: keras.optimizers.SGD(0.01, momentum=0.9), ["momentums"]),
    ],
)
def test_removal_carries_sliced_optimizer_slots(optimizer, attributes):
    model, x, y = _trained(optimizer())
    smaller = darn.remove_units(model, {"fc1": [1, 5]})
    keep = [i for i in range(16) if i not in (1, 5)]
    assert smaller.get_compile_config() == model.get_compile_config()
    assert int(smaller.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())
    for attribute in attributes:
        old = _slots(model.optimizer, model.get_layer("fc1").kernel, attribute)
        new = _slots(smaller.optimizer, smaller.get_layer("fc1").kernel, attribute)
        np.testing.assert_array_equal(new, old[:, keep])
        old = _slots(model.optimizer, model.get_layer("fc2").kernel, attribute)
        new = _slots(smaller.optimizer, smaller.get_layer("fc2").kernel, attribute)
        np.testing.assert_array_equal(new, old[keep, :])
    smaller.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_growth_gives_new_units_zero_slots_and_keeps_training():
    model, x, y = _trained(keras.optimizers.Adam(1e-3))
    grown = darn.add_units(model, {"fc1": 3}, seed=0)
    old = _slots(model.optimizer, model.get_layer("fc1").kernel, "_momentums")
    new = _slots(grown.optimizer, grown.get_layer("fc1").kernel, "_momentums")
    np.testing.assert_array_equal(new[:, :16], old)
    np.testing.assert_array_equal(new[:, 16:], 0)
    loss_before = model.evaluate(x, y, verbose=0)[0]
    loss_grown = grown.evaluate(x, y, verbose=0)[0]
    assert abs(loss_grown - loss_before) <= 1e-5 * abs(loss_before)
    history = grown.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_uncompiled_model_gives_uncompiled_rebuild():
    smaller = darn.remove_units(model_zoo.mlp(), {"fc1": [0]})
    assert not smaller.compiled


def test_learning_rate_schedule_continues_from_the_step_count():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    model, _, _ = _trained(keras.optimizers.SGD(schedule))
    grown = darn.add_units(model, {"fc2": 2})
    step = model.optimizer.iterations
    np.testing.assert_allclose(
        float(grown.optimizer.learning_rate.numpy()), float(schedule(step).numpy()), rtol=1e-6
    )

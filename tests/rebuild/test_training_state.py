"""Rebuilt models are compiled like the old one and keep the optimizer state."""

import keras
import numpy as np
import pytest
from support import model_zoo

import keras_darn as darn
from keras_darn import rebuild


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


def test_compile_fresh_restarts_slots_but_not_the_schedule():
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=50)
    model, x, y = _trained(keras.optimizers.Adam(schedule))
    steps = int(model.optimizer.iterations.numpy())  # 8
    grown = darn.add_units(model, {"fc1": 3}, compile=False)
    rebuild.compile_fresh(grown, model)
    assert int(grown.optimizer.iterations.numpy()) == 0
    np.testing.assert_allclose(
        float(grown.optimizer.learning_rate.numpy()), float(schedule(steps).numpy()), rtol=1e-6
    )
    grown.fit(x, y, epochs=1, batch_size=16, verbose=0)  # 4 more steps
    assert int(grown.optimizer.iterations.numpy()) == 4
    assert grown.optimizer is not model.optimizer
    # A second fresh start adds its steps to the offset instead of nesting.
    again = darn.add_units(grown, {"fc1": 1}, compile=False)
    rebuild.compile_fresh(again, grown)
    learning_rate = again.optimizer.get_config()["learning_rate"]
    assert learning_rate["config"]["offset"] == steps + 4
    assert learning_rate["config"]["schedule"]["class_name"] == "CosineDecay"
    np.testing.assert_allclose(
        float(again.optimizer.learning_rate.numpy()), float(schedule(steps + 4).numpy()), rtol=1e-6
    )


def test_compile_fresh_with_a_constant_learning_rate_and_uncompiled_models():
    model, _, _ = _trained(keras.optimizers.Adam(2e-3))
    fresh = rebuild.compile_fresh(darn.remove_units(model, {"fc1": [0]}, compile=False), model)
    assert fresh.get_compile_config() == model.get_compile_config()
    assert int(fresh.optimizer.iterations.numpy()) == 0
    uncompiled = model_zoo.mlp()
    assert not rebuild.compile_fresh(model_zoo.mlp(), uncompiled).compiled


def test_step_offset_schedule_serializes_and_checks_its_arguments():
    schedule = rebuild.StepOffsetSchedule(
        keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5), offset=8
    )
    np.testing.assert_allclose(float(schedule(0)), 0.1 * 0.5**2, rtol=1e-6)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, rebuild.StepOffsetSchedule) and restored.offset == 8
    np.testing.assert_allclose(float(restored(4)), 0.1 * 0.5**3, rtol=1e-6)
    with pytest.raises(ValueError, match="offset=-1"):
        rebuild.StepOffsetSchedule(schedule, -1)
    with pytest.raises(ValueError, match="schedule=0.1"):
        rebuild.StepOffsetSchedule(0.1, 3)


def test_optimizer_slots_follow_weights_of_the_same_name_by_structure():
    # The query, key and value projections of an attention layer share
    # weight names; each slot must follow its own variable.
    inputs = keras.Input((4, 6))
    attention = keras.layers.MultiHeadAttention(2, 3, name="mha")(inputs, inputs)
    hidden = keras.layers.Dense(5, name="hidden")(keras.layers.Flatten()(attention))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4, 6)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    smaller = darn.remove_units(model, {"mha/heads": [1], "hidden": [0]})
    old_layer, new_layer = model.get_layer("mha"), smaller.get_layer("mha")
    for position, axis in ((0, 1), (2, 1), (4, 1), (6, 0)):
        old = _slots(model.optimizer, old_layer.weights[position], "_momentums")
        new = _slots(smaller.optimizer, new_layer.weights[position], "_momentums")
        np.testing.assert_array_equal(new, np.delete(old, 1, axis=axis))
    smaller.fit(x, y, epochs=1, batch_size=4, verbose=0)

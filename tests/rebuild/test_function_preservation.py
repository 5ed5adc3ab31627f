"""The Rebuilder keeps the function: growth, removal of what was added, shrink."""

import keras
import numpy as np
import pytest
from support import model_zoo

import keras_darn as darn
from keras_darn.graph import unit_groups
from keras_darn.rebuild import Rebuilder


def _close(actual, expected):
    scale = max(float(np.abs(expected).max()), 1e-3)
    return float(np.abs(actual - expected).max()) / scale


def _grow_every_group(model, init, seed=0):
    plan = {g.layers[0]: 3 for g in unit_groups(model, resizable_only=True)}
    return darn.add_units(model, plan, init=init, seed=seed), plan


@pytest.mark.parametrize("name", sorted(model_zoo.ALL))
@pytest.mark.parametrize("init", ["zeros_out", "net2net"])
def test_growth_preserves_outputs(name, init):
    model = model_zoo.randomize_normalization(model_zoo.ALL[name]())
    x = model_zoo.sample_input(model)
    before = model(x, training=False).numpy()
    weights_before = [w.copy() for w in model.get_weights()]
    grown, plan = _grow_every_group(model, init)
    assert grown.count_params() > model.count_params()
    assert _close(grown(x, training=False).numpy(), before) <= 1e-5
    # The original model is untouched.
    for old, now in zip(weights_before, model.get_weights()):
        np.testing.assert_array_equal(old, now)


@pytest.mark.parametrize("name", sorted(model_zoo.ALL))
def test_removing_added_units_gives_back_original_weights(name):
    model = model_zoo.randomize_normalization(model_zoo.ALL[name]())
    grown, plan = _grow_every_group(model, "zeros_out")
    removal = {}
    for layer_name in plan:
        width = _width(grown, layer_name)
        removal[layer_name] = list(range(width - 3, width))
    restored = darn.remove_units(grown, removal)
    assert len(restored.get_weights()) == len(model.get_weights())
    for original, back in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(original, back)


@pytest.mark.parametrize("name", sorted(model_zoo.ALL))
def test_shrink_removes_masked_units_with_same_outputs(name):
    model = model_zoo.randomize_normalization(model_zoo.ALL[name](prunable=True))
    x = model_zoo.sample_input(model)
    switched_off = model_zoo.switch_off(model, 0.3)
    before = model(x, training=False).numpy()
    small = darn.shrink(model)
    assert _close(small(x, training=False).numpy(), before) <= 1e-5
    assert small.count_params() == model_zoo.expected_params(model, switched_off)
    assert not any(hasattr(l, "unit_mask") for l in _all_layers(small))


def test_shrink_removes_units_with_zero_incoming_weights():
    model = model_zoo.randomize_normalization(model_zoo.conv_bn_relu_flatten())
    x = model_zoo.sample_input(model)
    fc = model.get_layer("fc")
    kernel = fc.kernel.numpy()
    kernel[:, [1, 4, 7]] = 0.0
    fc.kernel.assign(kernel)
    before = model(x, training=False).numpy()
    small = darn.shrink(model)
    assert small.get_layer("fc").units == 9
    assert _close(small(x, training=False).numpy(), before) <= 1e-5


def test_shrink_keeps_constant_units_a_same_padded_conv_cannot_absorb():
    # A constant channel entering a 'same'-padded convolution is not constant
    # at the borders, so removing it would change the output: it must stay.
    inputs = keras.Input((6, 6, 2))
    a = darn.layers.PrunableConv2D(4, 3, padding="same", name="a")(inputs)
    x = keras.layers.Activation("sigmoid")(a)
    x = keras.layers.Conv2D(3, 3, padding="same", name="b")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    model.get_layer("a").set_unit_mask([1, 0, 1, 1])
    x_in = model_zoo.sample_input(model)
    small = darn.shrink(model)
    assert small.get_layer("a").filters == 4
    assert _close(small(x_in).numpy(), model(x_in).numpy()) <= 1e-6


@pytest.mark.parametrize("name", sorted(model_zoo.ALL))
def test_removing_30_percent_builds_saves_and_converts(name, tmp_path):
    model = model_zoo.ALL[name]()
    plan, removed = {}, {}
    for group in unit_groups(model, resizable_only=True):
        count = max(1, int(0.3 * group.size))
        plan[group.layers[0]] = group.indices(group.layers[0])[:count].tolist()
        for layer_name in group.layers:
            removed[layer_name] = count
    small = darn.remove_units(model, plan)
    x = model_zoo.sample_input(model)
    assert small(x).shape == model(x).shape
    assert small.count_params() == model_zoo.expected_params(model, removed)
    path = str(tmp_path / "small.keras")
    small.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), small(x).numpy(), atol=1e-6)
    tflite = darn.export.to_tflite(small)
    np.testing.assert_allclose(darn.export.tflite_predict(tflite, x), small(x).numpy(), atol=1e-4)


def test_rebuilder_queues_several_changes_into_one_model():
    model = model_zoo.randomize_normalization(model_zoo.conv_bn_relu_flatten())
    x = model_zoo.sample_input(model)
    before = model(x, training=False).numpy()
    rebuilder = Rebuilder(model, seed=1)
    rebuilder.add({"conv1": 4, "fc": 2}).add({"conv2": 1}, init="net2net")
    new_model = rebuilder.build()
    assert new_model.get_layer("conv1").filters == 12
    assert new_model.get_layer("conv2").filters == 7
    assert new_model.get_layer("fc").units == 14
    assert _close(new_model(x, training=False).numpy(), before) <= 1e-5


def _width(model, name):
    layer = _find(model, name)
    return layer.units if hasattr(layer, "units") else layer.filters


def _find(model, name):
    for layer in _all_layers(model):
        if layer.name == name:
            return layer
    raise KeyError(name)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def test_removal_and_growth_of_the_same_layer_in_one_rebuild():
    model = model_zoo.mlp()
    rebuilder = Rebuilder(model, seed=0).remove({"fc1": [15, 3]}).add({"fc1": 4})
    new_model = rebuilder.build()
    assert new_model.get_layer("fc1").units == 18
    kernel = new_model.get_layer("fc1").kernel.numpy()
    expected = np.delete(model.get_layer("fc1").kernel.numpy(), [3, 15], axis=1)
    np.testing.assert_array_equal(kernel[:, :14], expected)
    np.testing.assert_array_equal(new_model.get_layer("fc2").kernel.numpy()[14:], 0.0)

"""Dead units after connection pruning, shrink, and the auxiliary layer."""

import warnings

import keras
import numpy as np
import pytest

from keras_darn.algorithms import connection_pruning as cp
from keras_darn.layers import PrunableDense
from keras_darn.metrics import count_params
from keras_darn.rebuild import shrink


def mlp():
    return keras.Sequential(
        [
            keras.Input((5,)),
            PrunableDense(6, activation="relu", connection_mask=True, name="h0"),
            PrunableDense(4, activation="relu", connection_mask=True, name="h1"),
            PrunableDense(3, connection_mask=True, name="out"),
        ]
    )


def set_masks(model, masks):
    for name, (rows, cols) in masks.items():
        layer = model.get_layer(name)
        mask = layer.get_kernel_mask()
        mask[rows, cols] = 0.0
        layer.set_kernel_mask(mask)


def test_dead_units_both_kinds_and_iterated_masking():
    model = mlp()
    model.get_layer("h1").bias.assign(np.full(4, 0.5, "float32"))
    x = np.random.uniform(-1, 1, size=(16, 5)).astype("float32")
    # h1 unit 1 loses every outgoing connection; h0 unit 2 feeds only h1 unit 1;
    # h1 unit 3 loses every incoming connection (it outputs relu(0.5)).
    set_masks(model, {"out": (1, slice(None)), "h1": (slice(None), 3)})
    h1_mask = model.get_layer("h1").get_kernel_mask()
    h1_mask[2, [0, 2]] = 0.0
    model.get_layer("h1").set_kernel_mask(h1_mask)
    expected = model.predict(x, verbose=0)
    report = cp.dead_units(model)
    assert report["h1"] == {"incoming": [3], "outgoing": [1]}
    assert report["h0"]["outgoing"] == []  # h0 unit 2 still feeds h1 unit 1
    assert report["out"] == {"incoming": [], "outgoing": []}  # outputs never count
    switched = cp.mask_disconnected_units(model)
    assert switched == {"h1": [1], "h0": [2]}  # h0 unit 2 is disconnected next
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    assert cp.dead_units(model)["h1"]["outgoing"] == []  # masked units are not listed
    small = shrink(model)
    widths = [layer.units for layer in small.layers]
    assert widths == [5, 2, 3]  # h0 loses 1, h1 loses the disconnected and the constant unit
    np.testing.assert_allclose(small.predict(x, verbose=0), expected, atol=1e-6)
    # The constant unit's 3 outgoing weights were folded into the output bias.
    assert cp.remaining_weights(small) == cp.remaining_weights(model) - 3
    assert count_params(small) < count_params(model)


def test_unit_reaching_an_add_of_two_branches():
    inputs = keras.Input((4,))
    a = PrunableDense(3, activation="relu", connection_mask=True, name="a")(inputs)
    b = PrunableDense(3, activation="relu", connection_mask=True, name="b")(inputs)
    merged = keras.layers.Add()([a, b])
    out = PrunableDense(2, connection_mask=True, name="out")(merged)
    model = keras.Model(inputs, out)
    set_masks(model, {"out": (0, slice(None))})
    x = np.random.uniform(-1, 1, size=(8, 4)).astype("float32")
    expected = model.predict(x, verbose=0)
    assert cp.mask_disconnected_units(model) == {"a": [0], "b": [0]}
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    small = shrink(model)
    assert small.get_layer("a").units == 2 and small.get_layer("b").units == 2
    np.testing.assert_allclose(small.predict(x, verbose=0), expected, atol=1e-6)


def test_units_before_layer_normalization_are_kept():
    inputs = keras.Input((4,))
    h = PrunableDense(3, activation="relu", connection_mask=True, name="h")(inputs)
    h = keras.layers.LayerNormalization()(h)
    model = keras.Model(inputs, PrunableDense(2, connection_mask=True, name="out")(h))
    set_masks(model, {"out": (0, slice(None))})
    # Zeroing unit 0 would change the normalization of units 1 and 2.
    assert cp.mask_disconnected_units(model) == {}


def test_auxiliary_layer_identity_preserves_the_function():
    model = mlp()
    model.compile("adam", "mse")
    cp.prune_connections(model, 0.3)
    x = np.random.uniform(-1, 1, size=(16, 5)).astype("float32")
    expected = model.predict(x, verbose=0)
    deeper = cp.insert_auxiliary_layer(model, after="h1", units=4, identity=True)
    names = [layer.name for layer in deeper.layers]
    assert names == ["h0", "h1", "auxiliary_4", "out"]
    auxiliary = deeper.get_layer("auxiliary_4")
    assert isinstance(auxiliary, PrunableDense) and auxiliary.kernel_mask is not None
    np.testing.assert_allclose(deeper.predict(x, verbose=0), expected, atol=1e-6)
    # Earlier masks travel with the weights; the new layer is fully live.
    np.testing.assert_array_equal(
        deeper.get_layer("out").get_kernel_mask(), model.get_layer("out").get_kernel_mask()
    )
    assert cp.remaining_weights(deeper) == cp.remaining_weights(model) + 16  # 4 x 4, zeros too
    assert deeper.compiled
    # It is pruned like any other layer.
    assert cp.prune_connections(deeper, 0.5, layer_names=["auxiliary_4"]) == {"auxiliary_4": 8}


def test_auxiliary_layer_of_another_width_reinitialises_its_consumer():
    model = mlp()
    cp.prune_connections(model, 0.3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deeper = cp.insert_auxiliary_layer(model, after="h0", units=7, compile=False)
    assert any("h1" in str(w.message) for w in caught)
    assert deeper.get_layer("auxiliary_7").kernel.shape == (6, 7)
    assert deeper.get_layer("h1").kernel.shape == (7, 4)
    np.testing.assert_array_equal(deeper.get_layer("h1").get_kernel_mask(), 1.0)
    np.testing.assert_array_equal(
        deeper.get_layer("h0").get_kernel_mask(), model.get_layer("h0").get_kernel_mask()
    )
    with pytest.raises(ValueError, match="identity"):
        cp.insert_auxiliary_layer(model, after="h0", units=5, identity=True)


def test_wider_identity_auxiliary_layer_keeps_outputs_and_masks():
    model = mlp()
    cp.prune_connections(model, 0.3)
    x = np.random.default_rng(1).uniform(size=(5,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    deeper = cp.insert_auxiliary_layer(model, after="h0", units=9, identity=True, compile=False)
    np.testing.assert_allclose(deeper(x).numpy(), model(x).numpy(), atol=1e-6)
    mask = deeper.get_layer("h1").get_kernel_mask()
    np.testing.assert_array_equal(mask[:6], model.get_layer("h1").get_kernel_mask())
    np.testing.assert_array_equal(mask[6:], 1.0)

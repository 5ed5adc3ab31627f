"""Dead units after connection pruning, shrink, and the auxiliary layer."""

import warnings

import keras
import numpy as np
import pytest

from keras_darn.layers import PrunableDense
from keras_darn.methods.connection.auxiliary import insert_auxiliary_layer
from keras_darn.methods.connection import pruning as cp
from keras_darn.methods.connection import structure
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
    report = structure.dead_units(model)
    assert report["h1"] == {"incoming": [3], "outgoing": [1]}
    assert report["h0"]["outgoing"] == []  # h0 unit 2 still feeds h1 unit 1
    assert report["out"] == {"incoming": [], "outgoing": []}  # outputs never count
    switched = structure.mask_disconnected_units(model)
    assert switched == {"h1": [1], "h0": [2]}  # h0 unit 2 is disconnected next
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    assert structure.dead_units(model)["h1"]["outgoing"] == []  # masked units are not listed
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
    assert structure.mask_disconnected_units(model) == {"a": [0], "b": [0]}
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
    assert structure.mask_disconnected_units(model) == {}


def test_auxiliary_layer_identity_preserves_the_function():
    model = mlp()
    model.compile("adam", "mse")
    cp.prune_connections(model, 0.3)
    x = np.random.uniform(-1, 1, size=(16, 5)).astype("float32")
    expected = model.predict(x, verbose=0)
    deeper = insert_auxiliary_layer(model, after="h1", units=4, identity=True)
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


def test_second_auxiliary_layer_of_the_same_width_gets_a_new_name():
    model = mlp()
    x = np.random.uniform(-1, 1, size=(8, 5)).astype("float32")
    expected = model.predict(x, verbose=0)
    deeper = insert_auxiliary_layer(model, after="h0", units=6, identity=True, compile=False)
    deeper = insert_auxiliary_layer(deeper, after="auxiliary_6", units=6, identity=True,
                                       compile=False)
    names = [layer.name for layer in deeper.layers]
    assert names == ["h0", "auxiliary_6", "auxiliary_6_1", "h1", "out"]
    np.testing.assert_allclose(deeper.predict(x, verbose=0), expected, atol=1e-6)


def test_auxiliary_layer_of_another_width_reinitialises_its_consumer():
    model = mlp()
    cp.prune_connections(model, 0.3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deeper = insert_auxiliary_layer(model, after="h0", units=7, compile=False)
    assert any("h1" in str(w.message) for w in caught)
    assert deeper.get_layer("auxiliary_7").kernel.shape == (6, 7)
    assert deeper.get_layer("h1").kernel.shape == (7, 4)
    np.testing.assert_array_equal(deeper.get_layer("h1").get_kernel_mask(), 1.0)
    np.testing.assert_array_equal(
        deeper.get_layer("h0").get_kernel_mask(), model.get_layer("h0").get_kernel_mask()
    )
    with pytest.raises(ValueError, match="identity"):
        insert_auxiliary_layer(model, after="h0", units=5, identity=True)


def test_wider_identity_auxiliary_layer_keeps_outputs_and_masks():
    model = mlp()
    cp.prune_connections(model, 0.3)
    x = np.random.default_rng(1).uniform(size=(5,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    deeper = insert_auxiliary_layer(model, after="h0", units=9, identity=True, compile=False)
    np.testing.assert_allclose(deeper(x).numpy(), model(x).numpy(), atol=1e-6)
    mask = deeper.get_layer("h1").get_kernel_mask()
    np.testing.assert_array_equal(mask[:6], model.get_layer("h1").get_kernel_mask())
    np.testing.assert_array_equal(mask[6:], 1.0)


def _pre_activation(model, name, x):
    """The inputs of `name`'s activation (x W + b) in `model`."""
    layer = model.get_layer(name)
    features = keras.Model(model.inputs[0], layer.input)(x)
    return keras.ops.convert_to_numpy(
        keras.ops.matmul(features, layer.kernel * layer.get_kernel_mask()) + layer.bias
    )


@pytest.mark.parametrize("activation, units", [("relu", 8), ("linear", 4)])
def test_factorized_auxiliary_layer_is_exact_at_full_rank(activation, units):
    model = mlp()  # h0 has 6 units, h1 reads them with a 6 x 4 kernel: rank <= 4.
    model.compile("adam", "mse")
    cp.prune_connections(model, 0.3)
    model.get_layer("h1").bias.assign(np.linspace(-0.2, 0.2, 4).astype("float32"))
    x = np.random.default_rng(2).uniform(-1, 1, size=(32, 5)).astype("float32")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*fresh weights")  # they are set, not fresh
        deeper = insert_auxiliary_layer(
            model, after="h0", units=units, activation=activation, factorized=True
        )
    np.testing.assert_allclose(deeper.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert deeper.compiled
    np.testing.assert_array_equal(deeper.get_layer("h1").get_kernel_mask(), 1.0)


def test_factorized_auxiliary_layer_below_full_rank_is_the_best_low_rank_fit():
    model = mlp()
    cp.prune_connections(model, 0.2)
    weights = model.get_layer("h1").kernel.numpy() * model.get_layer("h1").get_kernel_mask()
    singular = np.linalg.svd(weights, compute_uv=False)
    x = np.random.default_rng(3).uniform(-1, 1, size=(64, 5)).astype("float32")
    expected = _pre_activation(model, "h1", x)
    errors = []
    for units in (2, 4, 6):  # ReLU pairs: rank 1, 2, 3
        deeper = insert_auxiliary_layer(model, after="h0", units=units, factorized=True, compile=False)
        aux = deeper.get_layer(f"auxiliary_{units}")
        reader = deeper.get_layer("h1")
        # The product of the two new kernels is the rank-r truncation of the old kernel
        # (the +-pairs cancel the ReLU): its error is the discarded singular values.
        rank = units // 2
        product = aux.kernel.numpy()[:, :rank] @ reader.kernel.numpy()[:rank]
        np.testing.assert_allclose(
            np.linalg.norm(weights - product), np.sqrt(np.sum(singular[rank:] ** 2)), rtol=1e-4, atol=1e-6
        )
        errors.append(np.abs(_pre_activation(deeper, "h1", x) - expected).max())
    assert errors[0] > errors[1] > errors[2] > 0


def test_factorized_auxiliary_layer_errors():
    model = mlp()
    with pytest.raises(ValueError, match="identity"):
        insert_auxiliary_layer(model, after="h0", units=8, identity=True, factorized=True)
    with pytest.raises(ValueError, match="activation"):
        insert_auxiliary_layer(model, after="h0", units=8, activation="tanh", factorized=True)
    with pytest.raises(ValueError, match="exactly one Dense"):
        insert_auxiliary_layer(model, after="out", units=8, factorized=True)

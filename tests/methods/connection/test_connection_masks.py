"""Connection pruning: which weights go, and that they stay at exactly 0."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_darn.criteria import weight_magnitude
from keras_darn.layers import connection_masks
from keras_darn.layers import PrunableConv2D
from keras_darn.layers import PrunableDense
from keras_darn.layers import to_prunable
from keras_darn.methods.connection import adaptive_rate
from keras_darn.methods.connection import evaluation
from keras_darn.methods.connection import pruning as cp


def mlp(widths=(6, 5), inputs=4, classes=3, connection_mask=True):
    layers = [keras.Input((inputs,))]
    for i, width in enumerate(widths):
        layers.append(
            PrunableDense(width, activation="relu", connection_mask=connection_mask, name=f"h{i}")
        )
    layers.append(PrunableDense(classes, activation="softmax", connection_mask=connection_mask, name="out"))
    return keras.Sequential(layers)


def test_fraction_prunes_smallest_magnitudes_per_layer():
    model = mlp()
    layer = model.get_layer("h0")
    kernel = np.arange(1, 25, dtype="float32").reshape(4, 6) * np.array([1, -1] * 12).reshape(4, 6)
    layer.kernel.assign(kernel)
    pruned = cp.prune_connections(model, 0.25)
    # floor(0.25 * 24) = 6 in h0, floor(0.25 * 30) = 7 in h1, floor(0.25 * 15) = 3 in out.
    assert pruned == {"h0": 6, "h1": 7, "out": 3}
    mask = layer.get_kernel_mask()
    np.testing.assert_array_equal(mask.ravel()[:6], 0.0)  # |w| = 1..6 are the smallest.
    np.testing.assert_array_equal(mask.ravel()[6:], 1.0)
    stored = keras.ops.convert_to_numpy(layer.kernel)
    np.testing.assert_array_equal(stored.ravel()[:6], 0.0)
    np.testing.assert_array_equal(stored.ravel()[6:], kernel.ravel()[6:])
    # The rate applies to what is left: 0.5 of the 18 live entries of h0.
    assert cp.prune_connections(model, 0.5, layer_names=["h0"]) == {"h0": 9}
    assert cp.remaining_weights(model, by_layer=True)["h0"] == 9


def test_threshold_mode_and_masked_units_are_not_live():
    model = mlp()
    layer = model.get_layer("h0")
    kernel = np.linspace(-1.2, 1.2, 24, dtype="float32").reshape(4, 6)
    layer.kernel.assign(kernel)
    unit_mask = np.ones(6, "float32")
    unit_mask[0] = 0.0
    layer.set_unit_mask(unit_mask)
    cp.prune_connections(model, 0.5, layer_names="h0", mode="threshold")
    live = connection_masks.live_connections(layer)
    expected = (np.abs(kernel) >= 0.5) & (unit_mask[None, :] == 1)
    np.testing.assert_array_equal(live, expected)
    assert cp.remaining_weights(model, by_layer=True)["h0"] == int(expected.sum())
    np.testing.assert_allclose(
        cp.mean_abs_weight(keras.Sequential([keras.Input((4,)), layer])),
        np.abs(kernel[expected]).mean(),
        rtol=1e-6,
    )


def test_std_mode_threshold_is_a_multiple_of_the_layer_std_with_pruned_entries_as_zero():
    model = mlp()
    layer = model.get_layer("h0")
    kernel = np.linspace(-1.2, 1.2, 24, dtype="float32").reshape(4, 6)
    layer.kernel.assign(kernel)
    threshold = 0.5 * float(np.std(kernel))  # about 0.36
    cp.prune_connections(model, 0.5, layer_names="h0", mode="std")
    expected = np.abs(kernel) >= threshold
    np.testing.assert_array_equal(connection_masks.live_connections(layer), expected)
    # The second call sees the pruned entries as zeros: the std, and so the
    # threshold, is that of the effective kernel.
    effective = np.where(expected, kernel, 0.0)
    threshold = 0.9 * float(np.std(effective))
    cp.prune_connections(model, 0.9, layer_names="h0", mode="std")
    np.testing.assert_array_equal(
        connection_masks.live_connections(layer), expected & (np.abs(kernel) >= threshold)
    )
    # Scaling every weight leaves the choice unchanged (unlike mode="threshold").
    scaled = mlp()
    scaled.get_layer("h0").kernel.assign(10 * kernel)
    cp.prune_connections(scaled, 0.5, layer_names="h0", mode="std")
    np.testing.assert_array_equal(
        connection_masks.live_connections(scaled.get_layer("h0")), np.abs(kernel) >= 0.5 * np.std(kernel)
    )


def test_smallest_magnitude_ties_and_rounding():
    chosen = weight_magnitude.smallest_magnitude(
        np.array([0.1, -0.1, 0.1, 0.5]), np.array([True, True, True, True]), 0.5
    )
    np.testing.assert_array_equal(chosen, [True, True, False, False])
    # 0.3 * 10 is 2.999... in floating point: still 3 entries.
    assert weight_magnitude.smallest_magnitude(np.arange(10.0), np.ones(10, bool), 0.3).sum() == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": 1.5}, "rate"),
        ({"rate": -0.1, "mode": "threshold"}, "rate"),
        ({"rate": -0.1, "mode": "std"}, "rate"),
        ({"rate": 0.2, "mode": "global"}, "mode"),
        ({"rate": 0.2, "layer_names": ["nope"]}, "layer_names"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cp.prune_connections(mlp(), **kwargs)


def test_model_without_connection_masks_is_refused():
    with pytest.raises(ValueError, match="connection_mask=True"):
        cp.prune_connections(mlp(connection_mask=False), 0.2)


def test_masks_freeze_weights_through_training():
    x = np.random.uniform(size=(64, 4)).astype("float32")
    y = np.random.randint(0, 3, size=64)
    plain = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)]
    )
    model = to_prunable(plain, connection_mask=True)
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)  # Adam now holds momentum.
    cp.prune_connections(model, 0.5)
    layers = cp.connection_layers(model)
    masks = [layer.get_kernel_mask() for layer in layers]
    before = [keras.ops.convert_to_numpy(layer.kernel).copy() for layer in layers]
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for layer, mask, old in zip(layers, masks, before):
        new = keras.ops.convert_to_numpy(layer.kernel)
        np.testing.assert_array_equal(layer.get_kernel_mask(), mask)
        np.testing.assert_array_equal(connection_masks.effective_kernel(layer)[mask == 0], 0.0)
        assert np.any(new[mask == 1] != old[mask == 1])  # the live weights did train
    # The gradient of a masked weight is exactly zero.
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(model(x) ** 2)
    grads = tape.gradient(loss, [layer.kernel for layer in layers])
    for grad, mask in zip(grads, masks):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(grad)[mask == 0], 0.0)
    cp.zero_masked_weights(model)
    for layer, mask in zip(layers, masks):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel)[mask == 0], 0.0)
    # A fresh optimizer (no momentum) leaves the stored values at exactly 0.
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for layer, mask in zip(layers, masks):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel)[mask == 0], 0.0)


def test_driver_retraining_keeps_pruned_weights_at_zero():
    x = np.random.uniform(size=(64, 4)).astype("float32")
    y = np.random.randint(0, 3, size=64)
    model = mlp()
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    result = adaptive_rate.static_pruning(
        model,
        0.3,
        evaluate=lambda m: 1.0,
        retrain=evaluation.fit_retrainer(x, y, epochs=1, batch_size=16),
        max_accuracy_drop=0.01,
        max_steps=2,
    )
    assert result.history["accepted_steps"] == 2
    for layer in cp.connection_layers(model):
        mask = layer.get_kernel_mask()
        assert (mask == 0).sum() > 0
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel)[mask == 0], 0.0)


def test_conv_layers_are_pruned_too():
    model = keras.Sequential(
        [keras.Input((6, 6, 2)), PrunableConv2D(4, 3, connection_mask=True, name="conv")]
    )
    assert cp.prune_connections(model, 0.5) == {"conv": 36}
    assert cp.remaining_weights(model) == 36

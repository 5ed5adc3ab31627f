"""Tests for SoftClampedReLU and ClampedReLU."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_darn.layers import ClampedReLU
from keras_darn.layers import SoftClampedReLU
from keras_darn.layers import clamped_relu
from keras_darn.layers import soft_clamped_relu

EXTREMES = [-1e4, -1e3, -50.0, -1.0, -1e-30, -0.0, 0.0, 1e-30, 1e3, 1e4]
INPUTS = np.concatenate([np.linspace(-5.0, 5.0, 1001), EXTREMES]).astype("float32")


def reference(v, beta):
    """The paper's formula, eq. (4), in float64."""
    v = np.asarray(v, dtype="float64")
    return np.maximum(0.0, 1.0 - np.logaddexp(0.0, beta * (1.0 - v)) / beta)


def reference_gradient(v, beta):
    """d/dv of eq. (4): sigmoid(beta * (1 - v)) where the max is positive."""
    v = np.asarray(v, dtype="float64")
    slope = 0.5 * (1.0 + np.tanh(0.5 * beta * (1.0 - v)))  # sigmoid, no overflow
    return np.where(reference(v, beta) > 0.0, slope, 0.0)


def value_and_gradient(x, beta):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = soft_clamped_relu(x, beta=beta)
    return y.numpy(), tape.gradient(y, x).numpy()


@pytest.mark.parametrize("beta", [1.0, 10.0, 50.0])
def test_soft_clamped_relu_values(beta):
    y, _ = value_and_gradient(INPUTS, beta)
    np.testing.assert_allclose(y, reference(INPUTS, beta), rtol=1e-5, atol=1e-6)
    non_positive = INPUTS <= 0
    assert np.all(y[non_positive] == 0.0)
    assert not np.any(np.signbit(y[non_positive]))  # +0.0, never -0.0
    assert np.all((y >= 0.0) & (y <= 1.0))
    # Below 1 wherever float32 can tell the value apart from 1.
    assert np.all(y[INPUTS < 1.0 + 10.0 / beta] < 1.0)
    assert y[INPUTS == 1e4][0] == 1.0


@pytest.mark.parametrize("beta", [1.0, 10.0, 50.0])
def test_soft_clamped_relu_gradient_matches_derivative(beta):
    y, grad = value_and_gradient(INPUTS, beta)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad))
    # Skip the few points where float32 and float64 disagree on the sign of
    # the pre-max value (right at the root just above 0).
    clear = np.abs(
        1.0 - np.logaddexp(0.0, beta * (1.0 - INPUTS.astype("float64"))) / beta
    ) > 1e-5
    np.testing.assert_allclose(
        grad[clear], reference_gradient(INPUTS, beta)[clear], rtol=1e-4, atol=1e-6
    )
    assert np.all(grad[INPUTS <= 0] == 0.0)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_soft_clamped_relu_finite_at_extremes(dtype):
    x = np.array([-1e4, -6e4 if dtype == "float16" else -1e30, 1e4, 0.0], dtype)
    y, grad = value_and_gradient(x, 10.0)
    assert y.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad))
    np.testing.assert_array_equal(y, np.array([0.0, 0.0, 1.0, 0.0], dtype))


def test_invalid_beta_raises():
    for beta in [0, -1.0, 0.0, float("nan"), float("inf"), "10", True, None]:
        with pytest.raises(ValueError, match=r"`beta`.*Received: beta="):
            SoftClampedReLU(beta=beta)
        with pytest.raises(ValueError, match=r"`beta`.*Received: beta="):
            soft_clamped_relu(np.zeros(2, "float32"), beta=beta)


def test_soft_clamped_relu_layer_and_config_round_trip():
    layer = SoftClampedReLU(beta=3.0, name="scr")
    restored = SoftClampedReLU.from_config(layer.get_config())
    assert restored.beta == 3.0 and restored.name == "scr"
    x = INPUTS.reshape(-1, 1)
    np.testing.assert_allclose(layer(x), reference(x, 3.0), rtol=1e-5, atol=1e-6)
    # Registered: deserializes with no custom_objects.
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert isinstance(clone, SoftClampedReLU) and clone.beta == 3.0


@pytest.mark.parametrize(
    "activation",
    [soft_clamped_relu, clamped_relu, SoftClampedReLU(beta=4.0)],
    ids=["soft_function", "clamped_function", "soft_layer"],
)
def test_usable_as_dense_activation(activation):
    dense = keras.layers.Dense(3, activation=activation)
    x = np.random.uniform(-3, 3, size=(5, 4)).astype("float32")
    y = dense(x)
    restored = keras.layers.Dense.from_config(dense.get_config())
    restored.build(x.shape)
    restored.set_weights(dense.get_weights())
    np.testing.assert_array_equal(restored(x), y)
    assert np.all((np.asarray(y) >= 0) & (np.asarray(y) <= 1))


def test_clamped_relu_values():
    x = INPUTS
    expected = np.clip(x, 0.0, 1.0)
    np.testing.assert_array_equal(clamped_relu(x), expected)
    layer = ClampedReLU(name="clamp")
    np.testing.assert_array_equal(layer(x), expected)
    restored = ClampedReLU.from_config(layer.get_config())
    assert restored.name == "clamp"


def test_activation_layers_train_in_model():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8),
            SoftClampedReLU(),
            keras.layers.Dense(8),
            ClampedReLU(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.uniform(size=(16, 4)).astype("float32")
    history = model.fit(x, x.sum(axis=1), epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])

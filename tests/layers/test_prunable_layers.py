"""Tests for PrunableDense and PrunableConv2D (shared behaviour, parameterized)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_darn.layers import PrunableConv2D
from keras_darn.layers import PrunableDense

UNITS = 4
KINDS = ["dense", "conv", "conv_channels_first"]


def make_layer(kind, **kwargs):
    """A prunable layer, its plain Keras twin and a matching input batch."""
    plain_kwargs = {k: v for k, v in kwargs.items() if k != "connection_mask"}
    if kind == "dense":
        layer = PrunableDense(UNITS, **kwargs)
        plain = keras.layers.Dense(UNITS, **plain_kwargs)
        x = np.random.uniform(-1, 1, size=(6, 5)).astype("float32")
    else:
        data_format = "channels_first" if kind == "conv_channels_first" else None
        layer = PrunableConv2D(UNITS, 3, data_format=data_format, **kwargs)
        plain = keras.layers.Conv2D(UNITS, 3, **plain_kwargs)
        # 7x7 -> 5x5 outputs: the output width differs from `filters` (the
        # case where it equals them has a regression test of its own).
        shape = (2, 3, 7, 7) if data_format else (2, 6, 6, 3)
        x = np.random.uniform(-1, 1, size=shape).astype("float32")
    layer.build(x.shape)
    if kind == "conv_channels_first":
        # TensorFlow's CPU convolution runs no NCHW: the reference is the
        # channels_last Conv2D on the transposed input, transposed back.
        plain.build((2, 7, 7, 3))
        return layer, ChannelsFirstReference(plain), x
    plain.build(x.shape)
    return layer, plain, x


class ChannelsFirstReference:
    """A channels_last Conv2D applied to channels_first tensors."""

    def __init__(self, conv):
        self.conv = conv
        self.kernel = conv.kernel
        self.bias = conv.bias

    def __call__(self, x):
        y = self.conv(np.transpose(x, (0, 2, 3, 1)))
        return np.transpose(np.asarray(y), (0, 3, 1, 2))


def unit_slice(kind, array, unit):
    """The entries of the layer output `array` that belong to `unit`."""
    array = np.asarray(array)
    return array[:, unit] if kind == "conv_channels_first" else array[..., unit]


def copy_into_plain(layer, plain):
    plain.kernel.assign(layer.kernel)
    if layer.bias is not None:
        plain.bias.assign(layer.bias)


@pytest.mark.parametrize("kind", KINDS)
def test_masks_are_non_trainable_ones(kind):
    layer, _, _ = make_layer(kind, connection_mask=True)
    assert layer.unit_mask.shape == (UNITS,)
    assert layer.unit_mask.dtype == "float32"
    assert layer.kernel_mask.shape == layer.kernel.shape
    assert [w.name for w in layer.trainable_weights] == ["kernel", "bias"]
    assert [w.name for w in layer.non_trainable_weights] == [
        "unit_mask",
        "kernel_mask",
    ]
    np.testing.assert_array_equal(layer.get_unit_mask(), np.ones(UNITS))
    np.testing.assert_array_equal(layer.get_kernel_mask(), np.ones(layer.kernel.shape))
    assert layer.active_units == UNITS
    assert make_layer(kind)[0].kernel_mask is None


@pytest.mark.parametrize("kind", KINDS)
def test_all_ones_mask_computes_plain_layer(kind):
    for use_bias in (True, False):
        layer, plain, x = make_layer(
            kind, activation="tanh", use_bias=use_bias, bias_initializer="ones"
        )
        copy_into_plain(layer, plain)
        np.testing.assert_allclose(layer(x), plain(x), rtol=1e-6, atol=1e-7)


def test_channels_first_bias_when_width_equals_filters():
    # keras.ops.add treats a (1, C, 1, 1) bias as NHWC when the last axis of
    # the output also has length C; the layer must add it on the channel axis.
    layer = PrunableConv2D(
        UNITS, 3, data_format="channels_first", bias_initializer="random_normal"
    )
    x = np.random.uniform(-1, 1, size=(2, 3, UNITS + 2, UNITS + 2)).astype("float32")
    layer.build(x.shape)
    layer.set_unit_mask([1, 1, 0, 1])
    conv = keras.ops.conv(np.transpose(x, (0, 2, 3, 1)), layer.kernel)
    conv = np.transpose(np.asarray(conv), (0, 3, 1, 2))
    expected = conv + np.asarray(layer.bias)[None, :, None, None]
    expected[:, 2] = 0.0
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_unit_outputs_exact_zero(kind):
    # sigmoid(0) = 0.5 and a non-zero bias: only the output mask makes it 0.
    layer, plain, x = make_layer(
        kind, activation="sigmoid", bias_initializer="ones"
    )
    copy_into_plain(layer, plain)
    layer.set_unit_mask([1, 0, 1, 0])
    y = np.asarray(layer(x))
    assert np.all(unit_slice(kind, y, 1) == 0.0)
    assert np.all(unit_slice(kind, y, 3) == 0.0)
    for unit in (0, 2):
        np.testing.assert_allclose(
            unit_slice(kind, y, unit), unit_slice(kind, plain(x), unit), rtol=1e-6
        )
    assert layer.active_units == 2
    layer.set_unit_mask(np.ones(UNITS, dtype=bool))
    assert np.all(unit_slice(kind, layer(x), 1) != 0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_unit_gets_zero_gradient_including_regularizers(kind):
    layer, _, x = make_layer(
        kind,
        activation="relu",
        bias_initializer="ones",
        kernel_regularizer="l2",
        bias_regularizer="l1",
    )
    layer.set_unit_mask([0, 1, 1, 0])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2) + tf.add_n(layer.losses)
    kernel_grad, bias_grad = tape.gradient(loss, [layer.kernel, layer.bias])
    kernel_grad, bias_grad = kernel_grad.numpy(), bias_grad.numpy()
    for unit in (0, 3):
        assert np.all(kernel_grad[..., unit] == 0.0)
        assert bias_grad[unit] == 0.0
    for unit in (1, 2):
        assert np.any(kernel_grad[..., unit] != 0.0)
        assert bias_grad[unit] != 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_connection_mask_zeroes_weights_and_their_gradient(kind):
    layer, plain, x = make_layer(kind, connection_mask=True, kernel_regularizer="l2")
    kernel_mask = (np.random.uniform(size=layer.kernel.shape) > 0.5).astype("float32")
    layer.set_kernel_mask(kernel_mask)
    plain.kernel.assign(np.asarray(layer.kernel) * kernel_mask)
    plain.bias.assign(layer.bias)
    np.testing.assert_allclose(layer(x), plain(x), rtol=1e-5, atol=1e-6)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2) + tf.add_n(layer.losses)
    kernel_grad = tape.gradient(loss, layer.kernel).numpy()
    assert np.all(kernel_grad[kernel_mask == 0] == 0.0)
    assert np.any(kernel_grad[kernel_mask == 1] != 0.0)
    np.testing.assert_array_equal(layer.get_kernel_mask(), kernel_mask)


def _model(kind, functional, **layer_kwargs):
    layer, _, x = make_layer(kind, activation="relu", **layer_kwargs)
    head = keras.layers.Dense(2, name="head")
    if functional:
        inputs = keras.Input(x.shape[1:])
        hidden = keras.layers.Flatten()(layer(inputs))
        model = keras.Model(inputs, head(hidden))
    else:
        model = keras.Sequential(
            [keras.Input(x.shape[1:]), layer, keras.layers.Flatten(), head]
        )
    return model, layer, x


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_training_step_leaves_masked_weights_unchanged(kind, functional):
    model, layer, x = _model(kind, functional, bias_initializer="ones")
    layer.set_unit_mask([1, 0, 1, 0])
    kernel_before = np.array(layer.kernel)
    bias_before = np.array(layer.bias)
    # A fresh Adam: its moments for the masked weights start (and stay) zero.
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    model.fit(x, np.ones((len(x), 2)), epochs=2, batch_size=3, verbose=0)
    kernel_after, bias_after = np.array(layer.kernel), np.array(layer.bias)
    for unit in (1, 3):
        np.testing.assert_array_equal(kernel_after[..., unit], kernel_before[..., unit])
        assert bias_after[unit] == bias_before[unit]
    for unit in (0, 2):
        assert np.any(kernel_after[..., unit] != kernel_before[..., unit])
    hidden = layer(x)
    assert np.all(unit_slice(kind, hidden, 1) == 0.0)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_keras_file_round_trip_keeps_masks(kind, functional, tmp_path):
    model, layer, x = _model(kind, functional, connection_mask=True)
    layer.set_unit_mask([0, 1, 1, 0])
    kernel_mask = (np.random.uniform(size=layer.kernel.shape) > 0.3).astype("float32")
    layer.set_kernel_mask(kernel_mask)
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    loaded_layer = loaded.get_layer(layer.name)
    assert type(loaded_layer) is type(layer)
    assert loaded_layer.connection_mask is True
    np.testing.assert_array_equal(loaded_layer.get_unit_mask(), [0, 1, 1, 0])
    np.testing.assert_array_equal(loaded_layer.get_kernel_mask(), kernel_mask)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip(kind):
    for connection_mask in (False, True):
        layer, _, x = make_layer(
            kind,
            activation="relu",
            connection_mask=connection_mask,
            kernel_regularizer="l2",
        )
        config = layer.get_config()
        assert config["connection_mask"] is connection_mask
        restored = type(layer).from_config(config)
        assert restored.get_config() == config
        restored.build(x.shape)
        assert (restored.kernel_mask is not None) is connection_mask
        serialized = keras.saving.serialize_keras_object(layer)
        assert serialized["registered_name"] == f"keras_darn>{type(layer).__name__}"
        assert type(keras.saving.deserialize_keras_object(serialized)) is type(layer)


@pytest.mark.parametrize("kind", KINDS)
def test_set_mask_validation(kind):
    layer, _, _ = make_layer(kind)
    with pytest.raises(ValueError, match=r"`mask`.*\(4,\).*shape \(3,\)"):
        layer.set_unit_mask([1, 0, 1])
    with pytest.raises(ValueError, match=r"`mask`.*0 or 1.*0\.5"):
        layer.set_unit_mask([1, 0.5, 1, 1])
    with pytest.raises(ValueError, match=r"`mask`.*0 or 1.*2\.0"):
        layer.set_unit_mask([1, 2, 1, 1])
    with pytest.raises(ValueError, match=r"connection_mask=True"):
        layer.set_kernel_mask(np.ones(layer.kernel.shape))
    with pytest.raises(ValueError, match=r"connection_mask=True"):
        layer.get_kernel_mask()
    np.testing.assert_array_equal(layer.get_unit_mask(), np.ones(UNITS))

    masked, _, _ = make_layer(kind, connection_mask=True)
    with pytest.raises(ValueError, match=r"`mask`.*expected shape"):
        masked.set_kernel_mask(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"`mask`.*0 or 1"):
        masked.set_kernel_mask(np.full(masked.kernel.shape, -1.0))


def test_mask_methods_need_a_built_layer():
    for layer in (PrunableDense(3), PrunableConv2D(3, 2)):
        with pytest.raises(ValueError, match="must be built.*set_unit_mask"):
            layer.set_unit_mask([1, 1, 1])
        with pytest.raises(ValueError, match="must be built"):
            layer.active_units


def test_invalid_constructor_arguments_raise():
    for units in [0, -3, 2.5, True, None, "8"]:
        with pytest.raises(ValueError, match=r"`units`.*Received: units="):
            PrunableDense(units)
        with pytest.raises(ValueError, match=r"`filters`.*Received: filters="):
            PrunableConv2D(units, 3)
    with pytest.raises(ValueError, match=r"Received: connection_mask='yes'"):
        PrunableDense(3, connection_mask="yes")
    with pytest.raises(ValueError, match=r"Received: connection_mask=1"):
        PrunableConv2D(3, 2, connection_mask=1)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_quantize_is_refused(kind):
    layer, _, _ = make_layer(kind)
    with pytest.raises(ValueError, match="from_prunable"):
        layer.quantize("int8")


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_mixed_precision_masks(kind):
    layer, _, x = make_layer(kind, dtype="mixed_float16", activation="sigmoid")
    layer.set_unit_mask([1, 1, 0, 1])
    y = layer(x)
    assert y.dtype == "float16" and layer.unit_mask.dtype == "float32"
    assert np.all(unit_slice(kind, y, 2) == 0.0)
    assert np.all(np.asarray(unit_slice(kind, y, 0)) != 0.0)

"""Parameter counts checked against hand counts."""

import keras
import pytest

from keras_darn import layers as darn_layers
from keras_darn.metrics import count_params
from keras_darn.metrics import params_by_layer


@pytest.mark.parametrize(
    "input_shape, layer, expected",
    [
        # kernel 5 * 3 + bias 3.
        ((5,), keras.layers.Dense(3), 5 * 3 + 3),
        # kernel 3 (width) * 2 (in) * 4 (filters) + bias 4.
        ((10, 2), keras.layers.Conv1D(4, 3), 3 * 2 * 4 + 4),
        # kernel 3 * 3 * 3 * 4 + bias 4, whatever the padding and strides.
        ((8, 8, 3), keras.layers.Conv2D(4, 3, strides=2), 3 * 3 * 3 * 4 + 4),
        # Depthwise kernel 3 * 3 * 3 * 2 + bias 3 * 2.
        (
            (8, 8, 3),
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
            3 * 3 * 3 * 2 + 6,
        ),
        # Depthwise kernel 3 * 3 * 3 + pointwise 3 * 5 + bias 5.
        ((8, 8, 3), keras.layers.SeparableConv2D(5, 3), 27 + 15 + 5),
        # gamma, beta, moving mean, moving variance for 4 channels.
        ((8, 8, 4), keras.layers.BatchNormalization(), 4 * 4),
        ((8, 8, 3), keras.layers.MaxPooling2D(2), 0),
    ],
)
def test_single_layer_hand_counts(input_shape, layer, expected):
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, layer(inputs))
    assert count_params(model) == expected
    assert params_by_layer(model) == {layer.name: expected}
    # Without masks, the count is Keras' own.
    assert count_params(model) == model.count_params()


def test_masks_are_not_parameters():
    inputs = keras.Input((5,))
    layer = darn_layers.PrunableDense(3, connection_mask=True, name="pd")
    model = keras.Model(inputs, layer(inputs))
    layer.set_unit_mask([1, 0, 1])
    # Keras also counts unit_mask (3) and kernel_mask (5 * 3).
    assert model.count_params() == 18 + 3 + 15
    assert count_params(model) == 5 * 3 + 3
    assert params_by_layer(model) == {"pd": 18}


def test_nested_and_shared_layers():
    inner = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, name="inner_dense")],
        name="inner",
    )
    shared = keras.layers.Dense(4, name="shared")
    inputs = keras.Input((5,))
    x = shared(shared(inner(inputs)))
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    expected = {
        "inner/inner_dense": 5 * 4 + 4,
        "shared": 4 * 4 + 4,  # counted once although called twice
        "head": 4 * 2 + 2,
    }
    assert params_by_layer(model) == expected
    assert count_params(model) == sum(expected.values()) == model.count_params()


def test_unbuilt_model_is_refused():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        count_params(model)
    with pytest.raises(ValueError, match="Expected a Keras model"):
        count_params("model")


def test_active_only_counts_the_shrunk_model():
    inputs = keras.Input((5,))
    hidden = darn_layers.PrunableDense(4, activation="relu", name="hidden")
    outputs = keras.layers.Dense(2, name="head")(hidden(inputs))
    model = keras.Model(inputs, outputs)
    hidden.set_unit_mask([1, 0, 1, 0])
    # Full: hidden 5 * 4 + 4, head 4 * 2 + 2.
    assert count_params(model) == 24 + 10
    # Two units left: hidden 5 * 2 + 2, head 2 * 2 + 2.
    assert count_params(model, active_only=True) == 12 + 6


def test_standout_retention_statistics_are_not_parameters():
    from keras_darn.layers.standout_dense import StandoutDense

    inputs = keras.Input((5,))
    model = keras.Model(inputs, StandoutDense(3, name="standout")(inputs))
    # Keras adds unit_mask (3), retention_sum (3) and retention_count (1).
    assert model.count_params() == 18 + 7
    assert count_params(model) == 5 * 3 + 3

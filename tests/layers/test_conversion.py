"""Tests for to_prunable / from_prunable."""

import keras
import numpy as np
import pytest

from keras_darn.layers import PrunableConv2D
from keras_darn.layers import PrunableDense
from keras_darn.layers import from_prunable
from keras_darn.layers import to_prunable


def randomize_batch_norm(model):
    """Non-default moving statistics, so that a lost copy shows in outputs."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            randomize_batch_norm(layer)
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.random.normal(size=layer.moving_mean.shape))
            layer.moving_variance.assign(
                np.random.uniform(0.5, 2.0, size=layer.moving_variance.shape)
            )


def sequential_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="tanh", name="hidden"),
            keras.layers.Dense(3, name="logits"),
        ],
        name="seq",
    )


def functional_model():
    inputs = keras.Input((8, 8, 2))
    left = keras.layers.Conv2D(4, 3, padding="same", name="left")(inputs)
    right = keras.layers.Conv2D(4, 1, use_bias=False, name="right")(inputs)
    merged = keras.layers.Add()([left, right])
    pooled = keras.layers.GlobalAveragePooling2D()(merged)
    outputs = keras.layers.Dense(3, activation="softmax", name="logits")(pooled)
    return keras.Model(inputs, outputs, name="func")


def nested_model():
    inner = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation="relu", name="inner_dense")],
        name="inner",
    )
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(3, 3, name="outer_conv")(inputs)
    x = keras.layers.GlobalMaxPooling2D()(x)
    x = keras.layers.Dense(6, name="outer_dense")(x)
    outputs = inner(x)
    return keras.Model(inputs, outputs, name="nested")


BUILDERS = {
    "sequential": sequential_model,
    "functional": functional_model,
    "nested": nested_model,
}
X = np.random.default_rng(0).uniform(size=(4, 8, 8, 2)).astype("float32")


def leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            yield layer


@pytest.mark.parametrize("builder", BUILDERS.values(), ids=BUILDERS.keys())
def test_to_prunable_converts_and_keeps_predictions(builder):
    model = builder()
    randomize_batch_norm(model)
    original_weights = [np.array(w) for w in model.weights]
    expected = model.predict(X, verbose=0)

    prunable = to_prunable(model)

    assert prunable is not model
    converted = {
        layer.name: type(layer) for layer in leaf_layers(prunable)
    }
    for layer in leaf_layers(model):
        if type(layer) is keras.layers.Dense:
            assert converted[layer.name] is PrunableDense
        elif type(layer) is keras.layers.Conv2D:
            assert converted[layer.name] is PrunableConv2D
        else:
            assert converted[layer.name] is type(layer)
    for layer in leaf_layers(prunable):
        if isinstance(layer, (PrunableDense, PrunableConv2D)):
            assert layer.active_units == layer.unit_mask.shape[0]
            assert layer.kernel_mask is None
    np.testing.assert_array_equal(prunable.predict(X, verbose=0), expected)
    # The input model is untouched.
    assert not any(
        isinstance(layer, (PrunableDense, PrunableConv2D)) for layer in leaf_layers(model)
    )
    for before, after in zip(original_weights, model.weights):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("builder", BUILDERS.values(), ids=BUILDERS.keys())
def test_from_prunable_round_trip(builder):
    model = builder()
    randomize_batch_norm(model)
    expected = model.predict(X, verbose=0)
    plain = from_prunable(to_prunable(model, connection_mask=True))
    for layer in leaf_layers(plain):
        assert not isinstance(layer, (PrunableDense, PrunableConv2D))
        assert "connection_mask" not in layer.get_config()
    np.testing.assert_array_equal(plain.predict(X, verbose=0), expected)


def test_to_prunable_selected_layers_and_connection_masks():
    model = sequential_model()
    prunable = to_prunable(model, layer_names=["conv", "logits"], connection_mask=True)
    assert type(prunable.get_layer("conv")) is PrunableConv2D
    assert type(prunable.get_layer("logits")) is PrunableDense
    assert type(prunable.get_layer("hidden")) is keras.layers.Dense
    assert prunable.get_layer("conv").kernel_mask is not None
    assert type(to_prunable(model, layer_names="hidden").get_layer("hidden")) is (
        PrunableDense
    )


def test_from_prunable_folds_connection_masks():
    prunable = to_prunable(functional_model(), connection_mask=True)
    layer = prunable.get_layer("left")
    kernel_mask = (np.random.uniform(size=layer.kernel.shape) > 0.5).astype("float32")
    layer.set_kernel_mask(kernel_mask)
    expected = prunable.predict(X, verbose=0)
    plain = from_prunable(prunable)
    kernel = np.array(plain.get_layer("left").kernel)
    assert np.all(kernel[kernel_mask == 0] == 0.0)
    np.testing.assert_allclose(plain.predict(X, verbose=0), expected, rtol=1e-6)
    # The prunable model keeps its own (unmasked) kernel.
    assert np.all(np.array(layer.kernel)[kernel_mask == 0] != 0.0)


def test_from_prunable_refuses_masked_units():
    prunable = to_prunable(nested_model())
    prunable.get_layer("inner").get_layer("inner_dense").set_unit_mask([1, 0, 1, 1, 0])
    with pytest.raises(ValueError, match=r"inner_dense.*\[1, 4\].*keras_darn\.shrink"):
        from_prunable(prunable)


def test_to_prunable_keeps_existing_prunable_layers_and_masks():
    model = to_prunable(sequential_model())
    model.get_layer("hidden").set_unit_mask([1, 1, 0, 1, 1])
    expected = model.predict(X, verbose=0)
    again = to_prunable(model)
    np.testing.assert_array_equal(
        again.get_layer("hidden").get_unit_mask(), [1, 1, 0, 1, 1]
    )
    np.testing.assert_array_equal(again.predict(X, verbose=0), expected)


@pytest.mark.parametrize(
    "layer_names, message",
    [
        (["missing"], r"no layer named 'missing'.*\['conv', 'hidden', 'logits'\]"),
        (["bn"], r"'bn' is a BatchNormalization; only Dense and Conv2D"),
    ],
)
def test_to_prunable_bad_layer_names(layer_names, message):
    with pytest.raises(ValueError, match=message):
        to_prunable(sequential_model(), layer_names=layer_names)


def test_subclassed_models_are_refused():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(np.ones((1, 3)))
    for convert in (to_prunable, from_prunable):
        with pytest.raises(ValueError, match="Functional and Sequential.*Subclassed"):
            convert(model)


def test_invalid_connection_mask_argument():
    with pytest.raises(ValueError, match="Received: connection_mask=1"):
        to_prunable(sequential_model(), connection_mask=1)

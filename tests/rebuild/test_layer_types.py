"""Producers beyond Dense/Conv2D: Embedding, Conv1D, Conv2DTranspose, Dense on rank 3."""

import keras
import numpy as np
import pytest

import keras_darn as darn

L = keras.layers


def _sequence_model():
    inputs = keras.Input((7,), dtype="int32")
    x = L.Embedding(20, 6, name="embed")(inputs)
    x = L.Conv1D(5, 3, padding="same", activation="relu", name="conv1d")(x)
    x = L.Dense(4, activation="tanh", name="dense3d")(x)
    x = L.LayerNormalization()(L.Dense(3, name="proj")(x))
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, L.Dense(2, name="logits")(x)), np.random.default_rng(0).integers(0, 20, (3, 7))


def _transpose_model():
    inputs = keras.Input((5, 5, 2))
    x = L.Conv2DTranspose(4, 3, strides=2, padding="same", name="up")(inputs)
    x = L.ReLU()(L.BatchNormalization()(x))
    x = L.Conv2D(3, 3, name="conv")(x)
    x = L.Flatten()(x)
    return keras.Model(inputs, L.Dense(2, name="logits")(x)), np.random.default_rng(0).random((3, 5, 5, 2)).astype("float32")


@pytest.mark.parametrize("build", [_sequence_model, _transpose_model])
@pytest.mark.parametrize("init", ["zeros_out", "net2net"])
def test_growth_is_exact_and_reversible(build, init):
    model, x = build()
    before = model(x).numpy()
    groups = darn.unit_groups(model, resizable_only=True)
    assert len(groups) >= 2
    # LayerNormalization mixes statistics over its channels: skip the layer before it.
    plan = {g.layers[0]: 2 for g in groups if g.layers[0] != "proj"}
    grown = darn.add_units(model, plan, init=init, seed=0)
    np.testing.assert_allclose(grown(x).numpy(), before, atol=1e-5)
    if init == "zeros_out":
        removal = {}
        for name in plan:
            config = grown.get_layer(name).get_config()
            width = config.get("filters") or config.get("units") or config.get("output_dim")
            removal[name] = [width - 2, width - 1]
        for a, b in zip(model.get_weights(), darn.remove_units(grown, removal).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_embedding_columns_are_removed():
    model, x = _sequence_model()
    smaller = darn.remove_units(model, {"embed": [0, 5]})
    expected = np.delete(model.get_layer("embed").get_weights()[0], [0, 5], axis=1)
    np.testing.assert_array_equal(smaller.get_layer("embed").get_weights()[0], expected)
    kernel = np.delete(model.get_layer("conv1d").get_weights()[0], [0, 5], axis=1)
    np.testing.assert_array_equal(smaller.get_layer("conv1d").get_weights()[0], kernel)
    assert smaller(x).shape == (3, 2)


@keras.saving.register_keras_serializable(package="keras_darn_tests")
class FeedForward(keras.layers.Layer):
    """A residual feed-forward block holding two Dense sublayers."""

    def __init__(self, hidden, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        self.inner = L.Dense(self.hidden, activation="relu")
        self.inner.build(input_shape)
        self.outer = L.Dense(input_shape[-1])
        self.outer.build(tuple(input_shape[:-1]) + (self.hidden,))

    def call(self, x):
        return x + self.outer(self.inner(x))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="keras_darn_tests")
class RegisteredFeedForward(FeedForward):
    """The same block, described to keras_darn by its parts."""


def _nested_model(block=FeedForward):
    inner_in = keras.Input((5, 6))
    x = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bi")(inner_in)
    x = L.MultiHeadAttention(2, 3, name="mha")(x, x)
    inner = keras.Model(inner_in, x, name="inner")
    inputs = keras.Input((5, 4))
    x = L.Dense(6, name="d")(inputs)
    x = block(8, name="ffn")(inner(x))
    model = keras.Model(inputs, L.Dense(2, name="out")(L.Flatten()(x)))
    return model, np.random.default_rng(0).random((2, 5, 4)).astype("float32")


def test_nested_models_and_layers_holding_sublayers_keep_their_weights():
    # Unregistered, FeedForward's units are fixed, and its two sublayers'
    # same-named weights are carried by their order.
    model, x = _nested_model()
    grown = darn.add_units(model, {"d": 2, "inner/bi": 1, "inner/bi/backward": 1})
    np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), atol=1e-6)
    old, new = model.get_layer("ffn"), grown.get_layer("ffn")
    for a, b in zip(old.weights, new.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_one_registration_describes_a_layer_by_its_parts():
    darn.graph.register_layer(RegisteredFeedForward, handler=darn.graph.CompositeHandler(
        parts=[("inner", "in", "part:hidden"), ("outer", "part:hidden", None)],
        config_widths={"part:hidden": "hidden"},
        stream_reason="its output joins its input",
    ))
    model, x = _nested_model(RegisteredFeedForward)
    assert ("ffn/hidden",) in {tuple(g.layers) for g in darn.unit_groups(model, resizable_only=True)}
    grown = darn.add_units(model, {"ffn/hidden": 3}, seed=0)
    assert grown.get_layer("ffn").hidden == 11
    np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), atol=1e-6)
    smaller = darn.remove_units(model, {"ffn/hidden": [0, 4]})
    ffn, small = model.get_layer("ffn"), smaller.get_layer("ffn")
    np.testing.assert_array_equal(small.inner.kernel.numpy(), np.delete(ffn.inner.kernel.numpy(), [0, 4], axis=1))
    np.testing.assert_array_equal(small.outer.kernel.numpy(), np.delete(ffn.outer.kernel.numpy(), [0, 4], axis=0))

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

"""insert_layer: new layers in the graph, identity initialisation, errors."""

import keras
import numpy as np
import pytest
from support import model_zoo

import keras_darn as darn


@pytest.mark.parametrize("sequential", [False, True])
def test_identity_dense_after_relu_keeps_outputs(sequential):
    if sequential:
        model = keras.Sequential(
            [keras.Input((12,)), keras.layers.Dense(16, activation="relu", name="fc1"),
             keras.layers.Dense(3, name="logits")]
        )
    else:
        model = model_zoo.mlp()
    x = model_zoo.sample_input(model)
    deeper = darn.insert_layer(
        model, after="fc1", layer=keras.layers.Dense(16, activation="relu", name="aux"), identity=True
    )
    assert "aux" in [layer.name for layer in deeper.layers]
    assert len(deeper.layers) == len(model.layers) + 1
    np.testing.assert_allclose(deeper(x).numpy(), model(x).numpy(), atol=1e-6)


def test_identity_conv_keeps_outputs():
    model = model_zoo.conv_bn_relu_flatten()
    x = model_zoo.sample_input(model)
    deeper = darn.insert_layer(
        model, after="conv1", layer=keras.layers.Conv2D(8, 3, padding="same", name="aux"), identity=True
    )
    np.testing.assert_allclose(deeper(x).numpy(), model(x).numpy(), atol=1e-5)


def test_auxiliary_layer_of_other_width_reinitialises_its_consumer():
    model = model_zoo.mlp()
    with pytest.warns(UserWarning, match="fc2"):
        deeper = darn.insert_layer(
            model, after="fc1", layer=keras.layers.Dense(40, activation="relu", name="aux")
        )
    assert deeper.get_layer("aux").kernel.shape == (16, 40)
    assert deeper.get_layer("fc2").kernel.shape == (40, 10)
    np.testing.assert_array_equal(deeper.get_layer("fc1").kernel.numpy(), model.get_layer("fc1").kernel.numpy())


@pytest.mark.parametrize("units", [16, 40])
def test_wider_identity_layer_keeps_outputs_and_consumer_weights(units):
    model = model_zoo.mlp()
    x = model_zoo.sample_input(model)
    deeper = darn.insert_layer(
        model, after="fc1", layer=keras.layers.Dense(units, activation="relu", name="aux"), identity=True
    )
    np.testing.assert_allclose(deeper(x).numpy(), model(x).numpy(), atol=1e-6)
    fc2 = deeper.get_layer("fc2").kernel.numpy()
    np.testing.assert_array_equal(fc2[:16], model.get_layer("fc2").kernel.numpy())
    np.testing.assert_array_equal(fc2[16:], 0.0)
    if units > 16:
        assert np.abs(deeper.get_layer("aux").kernel.numpy()[:, 16:]).sum() > 0


def test_identity_refused_where_impossible():
    with pytest.raises(ValueError, match="at least as many units"):
        darn.insert_layer(model_zoo.mlp(), after="fc1", layer=keras.layers.Dense(8), identity=True)
    with pytest.raises(ValueError, match="linear or relu"):
        darn.insert_layer(
            model_zoo.mlp(), after="fc1", layer=keras.layers.Dense(16, activation="tanh"), identity=True
        )
    with pytest.raises(ValueError, match="No layer named"):
        darn.insert_layer(model_zoo.mlp(), after="fc9", layer=keras.layers.Dense(4))
    with pytest.raises(ValueError, match="Keras layer"):
        darn.insert_layer(model_zoo.mlp(), after="fc1", layer="dense")


def test_insert_keeps_compile_config():
    model = model_zoo.mlp()
    model.compile(optimizer="adam", loss="mse")
    deeper = darn.insert_layer(model, after="fc1", layer=keras.layers.Dense(16, name="aux"), identity=True)
    assert deeper.compiled
    assert deeper.get_compile_config() == model.get_compile_config()

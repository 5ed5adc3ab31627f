"""SavedModel export: the reloaded serving signature reproduces Keras."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_darn import layers as darn_layers
from keras_darn.export import export_saved_model


def _prunable_model():
    inputs = keras.Input((6, 6, 2), name="image")
    conv = darn_layers.PrunableConv2D(4, 3, name="pconv")
    h = darn_layers.SoftClampedReLU()(conv(inputs))
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Flatten()(h)
    dense = darn_layers.PrunableDense(5, connection_mask=True, name="pdense")
    h = dense(h)
    outputs = keras.layers.Dense(3)(darn_layers.ClampedReLU()(h))
    model = keras.Model(inputs, outputs)
    conv.set_unit_mask([1, 0, 1, 1])
    dense.set_unit_mask([0, 1, 1, 0, 1])
    return model


def _mlp():
    model = keras.Sequential(
        [
            keras.Input((7,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(2),
        ]
    )
    return model


@pytest.mark.parametrize(
    "build_model, input_shape",
    [(_prunable_model, (6, 6, 2)), (_mlp, (7,))],
)
def test_round_trip_reproduces_outputs(build_model, input_shape, tmp_path):
    model = build_model()
    x = np.random.rand(4, *input_shape).astype("float32")
    expected = model(x, training=False).numpy()
    path = export_saved_model(model, tmp_path / "saved")
    assert path == str(tmp_path / "saved")
    reloaded = tf.saved_model.load(path)
    np.testing.assert_allclose(reloaded.serve(x).numpy(), expected, atol=1e-5)
    signature = reloaded.signatures["serving_default"]
    (input_name,) = signature.structured_input_signature[1]
    outputs = signature(**{input_name: tf.constant(x)})
    np.testing.assert_allclose(outputs["output_0"].numpy(), expected, atol=1e-5)


def test_invalid_model(tmp_path):
    with pytest.raises(ValueError, match="keras.Model"):
        export_saved_model(lambda x: x, tmp_path / "saved")
    with pytest.raises(ValueError, match="not built"):
        export_saved_model(
            keras.Sequential([keras.layers.Dense(2)]), tmp_path / "saved"
        )

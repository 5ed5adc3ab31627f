"""Shrinking and exporting models with StandoutDense layers."""

import keras
import numpy as np

import keras_darn.rebuild
from keras_darn.layers.standout_dense import StandoutDense

X = np.random.default_rng(0).uniform(size=(10, 6)).astype("float32")


def _masked_model():
    inputs = keras.Input((6,))
    hidden = StandoutDense(8, activation="relu", tied=False, seed=1, name="a")(inputs)
    hidden = StandoutDense(7, activation="leaky_relu", seed=2, name="b")(hidden)
    outputs = keras.layers.Dense(3, name="head")(hidden)
    model = keras.Model(inputs, outputs)
    model.get_layer("a").set_unit_mask([1, 0, 1, 1, 0, 1, 0, 1])
    model.get_layer("b").set_unit_mask([0, 1, 1, 0, 1, 1, 1])
    model(X, training=True)  # fill the retention accumulators
    return model


def test_shrink_removes_masked_units_with_same_outputs():
    model = _masked_model()
    small = keras_darn.rebuild.shrink(model)
    a, b = small.get_layer("a"), small.get_layer("b")
    assert (a.units, b.units) == (5, 5)
    np.testing.assert_allclose(
        small.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-5, atol=1e-6
    )
    # Surviving units keep their accumulated retention and standout weights.
    np.testing.assert_allclose(
        a.retention_sum.numpy(),
        model.get_layer("a").retention_sum.numpy()[[0, 2, 3, 5, 7]],
    )
    np.testing.assert_allclose(
        a.standout_kernel.numpy(),
        model.get_layer("a").standout_kernel.numpy()[:, [0, 2, 3, 5, 7]],
    )
    np.testing.assert_allclose(
        b.kernel.numpy(),
        model.get_layer("b").kernel.numpy()[[0, 2, 3, 5, 7]][:, [1, 2, 4, 5, 6]],
    )


def _to_tflite_and_predict(model, x):
    try:
        from keras_darn.export.tflite import tflite_predict
        from keras_darn.export.tflite import to_tflite
    except ImportError:  # the export module has not landed in this checkout
        import tensorflow as tf
        from ai_edge_litert.interpreter import Interpreter

        function = tf.function(lambda t: model(t, training=False))
        concrete = function.get_concrete_function(
            tf.TensorSpec((None,) + tuple(x.shape[1:]), tf.float32)
        )
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
        interpreter = Interpreter(model_content=converter.convert())
        interpreter.resize_tensor_input(0, x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return tflite_predict(to_tflite(model), x)


def test_tflite_matches_keras_inference():
    model = _masked_model()
    expected = model.predict(X, verbose=0)
    np.testing.assert_allclose(_to_tflite_and_predict(model, X), expected, rtol=1e-5, atol=1e-5)

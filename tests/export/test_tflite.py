"""TFLite conversion: float outputs match Keras, quantized models work."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from keras_darn import layers as darn_layers
from keras_darn.export import save_tflite
from keras_darn.export import tflite_interpreter
from keras_darn.export import tflite_predict
from keras_darn.export import to_tflite


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return x[:600], y[:600], x[1500:1600], y[1500:1600]


def _train(model, x, y):
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
    )
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    return model


@pytest.fixture(scope="module")
def mlp(digits):
    keras.utils.set_random_seed(1)
    x, y, _, _ = digits
    inputs = keras.Input((64,))
    # 64 * 64 = 4096 kernel entries: large enough for TFLite to quantize.
    h = keras.layers.Dense(64, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    return _train(keras.Model(inputs, outputs), x, y)


@pytest.fixture(scope="module")
def cnn(digits):
    keras.utils.set_random_seed(2)
    x, y, _, _ = digits
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    return _train(keras.Model(inputs, outputs), x.reshape(-1, 8, 8, 1), y)


def _images(x):
    return x.reshape(-1, 8, 8, 1)


def test_float_mlp_matches_keras(mlp, digits):
    x_test = digits[2]
    tflite_model = to_tflite(mlp)
    assert isinstance(tflite_model, bytes)
    predictions = tflite_predict(tflite_model, x_test)
    assert predictions.shape == (100, 10)
    assert np.max(np.abs(predictions - mlp.predict(x_test, verbose=0))) <= 1e-4


def test_float_cnn_matches_keras(cnn, digits, tmp_path):
    x_test = _images(digits[2])
    path = save_tflite(to_tflite(cnn), tmp_path / "sub" / "cnn.tflite")
    assert path.endswith("cnn.tflite")
    predictions = tflite_predict(path, x_test)
    assert np.max(np.abs(predictions - cnn.predict(x_test, verbose=0))) <= 1e-4


def test_float_prunable_model_with_masks_matches_keras(digits):
    inputs = keras.Input((8, 8, 1))
    conv = darn_layers.PrunableConv2D(6, 3, padding="same", name="pconv")
    h = darn_layers.SoftClampedReLU()(conv(inputs))
    h = keras.layers.Flatten()(h)
    dense = darn_layers.PrunableDense(12, connection_mask=True, name="pdense")
    h = darn_layers.ClampedReLU()(dense(h))
    outputs = keras.layers.Dense(10)(h)
    model = keras.Model(inputs, outputs)
    conv.set_unit_mask([1, 0, 1, 1, 0, 1])
    dense.set_unit_mask([1, 1, 0] * 4)
    x_test = _images(digits[2][:20])
    expected = model.predict(x_test, verbose=0)
    predictions = tflite_predict(to_tflite(model), x_test)
    assert np.max(np.abs(predictions - expected)) <= 1e-4


def _argmax_agreement(a, b):
    return float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))


def test_dynamic_range_quantization(mlp, digits):
    x_test = digits[2]
    float_model = to_tflite(mlp)
    dynamic_model = to_tflite(mlp, quantization="dynamic")
    # int8 weights: the flatbuffer shrinks well below the float one.
    assert len(dynamic_model) < 0.6 * len(float_model)
    predictions = tflite_predict(dynamic_model, x_test)
    assert predictions.dtype == np.float32
    agreement = _argmax_agreement(predictions, mlp.predict(x_test, verbose=0))
    assert agreement >= 0.9


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_int8_quantization(model_name, request, digits):
    model = request.getfixturevalue(model_name)
    x_train, x_test = digits[0], digits[2]
    if model_name == "cnn":
        x_train, x_test = _images(x_train), _images(x_test)
    int8_model = to_tflite(
        model, quantization="int8", representative_data=x_train[:100]
    )
    interpreter = tflite_interpreter(int8_model)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    predictions = tflite_predict(int8_model, x_test)
    assert predictions.dtype == np.float32
    # Dequantized softmax outputs are probabilities again.
    np.testing.assert_allclose(predictions.sum(axis=-1), 1.0, atol=0.05)
    agreement = _argmax_agreement(predictions, model.predict(x_test, verbose=0))
    assert agreement >= 0.85


def test_multi_input_model_by_list_and_by_name():
    second = keras.Input((3,), name="zeta")
    first = keras.Input((5,), name="alpha")
    joined = keras.layers.Concatenate()([second, first])
    model = keras.Model([second, first], keras.layers.Dense(4)(joined))
    x_second = np.random.rand(6, 3).astype("float32")
    x_first = np.random.rand(6, 5).astype("float32")
    expected = model.predict([x_second, x_first], verbose=0)
    tflite_model = to_tflite(model)
    by_list = tflite_predict(tflite_model, [x_second, x_first])
    by_name = tflite_predict(tflite_model, {"alpha": x_first, "zeta": x_second})
    np.testing.assert_allclose(by_list, expected, atol=1e-5)
    np.testing.assert_allclose(by_name, expected, atol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        tflite_predict(tflite_model, {"alpha": x_first})
    int8_model = to_tflite(
        model, quantization="int8", representative_data=[x_second, x_first]
    )
    quantized = tflite_predict(int8_model, [x_second, x_first])
    assert np.max(np.abs(quantized - expected)) < 0.1


def test_invalid_arguments(mlp):
    with pytest.raises(ValueError, match="'dynamic', 'int8'"):
        to_tflite(mlp, quantization="float16")
    with pytest.raises(ValueError, match="representative_data"):
        to_tflite(mlp, quantization="int8")
    with pytest.raises(ValueError, match="representative_data"):
        to_tflite(mlp, representative_data=np.zeros((2, 64), "float32"))
    with pytest.raises(ValueError, match="bytes"):
        save_tflite("not bytes", "model.tflite")
    with pytest.raises(ValueError, match="bytes or a file path"):
        tflite_predict(12, np.zeros((1, 64), "float32"))


def test_a_recurrent_model_needs_select_tf_ops_and_says_so():
    inputs = keras.Input((10, 12))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.LSTM(8)(inputs)))
    with pytest.raises(ValueError, match=r"Pass allow_select_tf_ops=True.*Received: "
                                         r"allow_select_tf_ops=False"):
        to_tflite(model)
    flatbuffer = to_tflite(model, allow_select_tf_ops=True)
    # The LSTM's loop is kept as TensorFlow ops, run by the Flex delegate.
    assert b"FlexTensorList" in flatbuffer

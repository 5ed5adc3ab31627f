"""The latency helper's structure for Keras and TFLite models.

No absolute times are asserted: they depend on the machine and its load.
"""

import keras
import numpy as np
import pytest

from keras_darn.export import save_tflite
from keras_darn.export import to_tflite
from keras_darn.metrics import measure_latency


def _mlp():
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def _check_structure(result, runtime, batch_size, repeats):
    assert result["runtime"] == runtime
    assert result["batch_size"] == batch_size
    assert result["repeats"] == repeats
    for key in ("median", "mean", "p90", "min", "max"):
        assert isinstance(result[key], float)
        assert result[key] > 0.0
    assert result["min"] <= result["median"] <= result["p90"] <= result["max"]
    assert result["min"] <= result["mean"] <= result["max"]


def test_keras_model():
    x = np.random.rand(4, 8).astype("float32")
    result = measure_latency(_mlp(), x, repeats=7, warmup=2)
    _check_structure(result, "keras", batch_size=4, repeats=7)


def test_tflite_bytes_and_path(tmp_path):
    tflite_model = to_tflite(_mlp())
    path = save_tflite(tflite_model, tmp_path / "mlp.tflite")
    x = np.random.rand(5, 8).astype("float32")
    _check_structure(
        measure_latency(tflite_model, x, repeats=6, warmup=1),
        "tflite",
        batch_size=5,
        repeats=6,
    )
    _check_structure(
        measure_latency(path, x, repeats=3, warmup=0, num_threads=1),
        "tflite",
        batch_size=5,
        repeats=3,
    )


def test_invalid_arguments():
    x = np.zeros((2, 8), "float32")
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(_mlp(), x, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        measure_latency(_mlp(), x, warmup=-1)
    with pytest.raises(ValueError, match="model_or_tflite"):
        measure_latency(object(), x)

"""Wall-clock inference latency of a Keras model or a TFLite model."""

import os
import time

import keras
import numpy as np

from keras_darn.export.tflite import set_inputs
from keras_darn.export.tflite import tflite_interpreter


def _check_counts(repeats, warmup):
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(
            "Received an invalid value for `repeats`, expected a positive "
            f"integer. Received: repeats={repeats!r}"
        )
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(
            "Received an invalid value for `warmup`, expected a non-negative "
            f"integer. Received: warmup={warmup!r}"
        )


def _as_input_list(inputs):
    if isinstance(inputs, (list, tuple)):
        arrays = [np.asarray(a) for a in inputs]
    else:
        arrays = [np.asarray(inputs)]
    if not arrays or arrays[0].ndim == 0:
        raise ValueError(
            "Expected `inputs` as an array with a batch dimension (or a list "
            f"of them). Received: inputs of type {type(inputs).__name__}"
        )
    return arrays


def _keras_timer(model, arrays):
    if keras.backend.backend() != "tensorflow":
        return _predict_on_batch_timer(model, arrays)
    # Imported here, so that `import keras_darn` under another Keras backend
    # does not load TensorFlow.
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False))
    try:
        dtypes = [x.dtype for x in model.inputs]
    except (AttributeError, ValueError):  # A subclassed model: no inputs.
        dtypes = [None] * len(arrays)
    tensors = [
        tf.convert_to_tensor(a, dtype=dtype) for a, dtype in zip(arrays, dtypes)
    ]
    model_inputs = tensors[0] if len(tensors) == 1 else tensors

    def run_once():
        start = time.perf_counter()
        outputs = call(model_inputs)
        # Reading the outputs waits for the computation to finish.
        tf.nest.map_structure(lambda t: t.numpy(), outputs)
        return time.perf_counter() - start

    return run_once


def _predict_on_batch_timer(model, arrays):
    # Off TensorFlow: the model's own compiled inference step (`jax.jit` on
    # JAX), which returns numpy arrays, so the time includes reading the
    # outputs back.
    model_inputs = arrays[0] if len(arrays) == 1 else arrays

    def run_once():
        start = time.perf_counter()
        model.predict_on_batch(model_inputs)
        return time.perf_counter() - start

    return run_once


def _tflite_timer(tflite_model, arrays, num_threads):
    interpreter = tflite_interpreter(tflite_model, num_threads=num_threads)
    set_inputs(interpreter, arrays)

    def run_once():
        start = time.perf_counter()
        interpreter.invoke()
        return time.perf_counter() - start

    return run_once


def measure_latency(
    model_or_tflite, inputs, repeats=50, warmup=5, num_threads=None
):
    """Measures the time of one inference call on a batch.

    A Keras model is timed on the active Keras backend, so timings are per
    backend and compare only with timings taken on the same one: on
    TensorFlow the model is called through a `tf.function` in inference
    mode (no `model.predict` overhead); on other backends its own compiled
    inference step runs, `model.predict_on_batch` (jitted on JAX). Either
    way the time includes reading the outputs back.
    A TFLite model runs in the LiteRT interpreter with its inputs already
    set; only `invoke()` is timed. The first `warmup` calls (tracing, memory
    allocation) are not recorded. The median is the robust summary to
    report; timings depend on the machine and its load.

    Args:
        model_or_tflite: A `keras.Model`, a TFLite model as `bytes`, or the
            path of a `.tflite` file.
        inputs: A batch of inputs (batch dimension first), or a list of
            arrays for a model with several inputs.
        repeats: Number of timed calls. Defaults to `50`.
        warmup: Number of untimed calls before them. Defaults to `5`.
        num_threads: CPU threads of the TFLite interpreter (ignored for
            Keras models). Defaults to `None` (LiteRT's default).

    Returns:
        A `dict` with `"median"`, `"mean"`, `"p90"`, `"min"` and `"max"`
        (seconds per call), `"batch_size"`, `"repeats"`, and `"runtime"`
        (`"keras"` or `"tflite"`).

    Raises:
        ValueError: If `model_or_tflite` is none of the accepted types, or
            `repeats`/`warmup` are not valid counts.

    Example:

    ```python
    latency = measure_latency(model, x_test[:32])
    print(f"{latency['median'] * 1e3:.2f} ms per batch of 32")
    ```
    """
    _check_counts(repeats, warmup)
    arrays = _as_input_list(inputs)
    if isinstance(model_or_tflite, keras.Model):
        run_once = _keras_timer(model_or_tflite, arrays)
        runtime = "keras"
    elif isinstance(model_or_tflite, (bytes, bytearray, str, os.PathLike)):
        run_once = _tflite_timer(model_or_tflite, arrays, num_threads)
        runtime = "tflite"
    else:
        raise ValueError(
            "Expected a keras.Model, TFLite bytes or a .tflite path for "
            "`model_or_tflite`. Received: model_or_tflite of type "
            f"{type(model_or_tflite).__name__}"
        )
    for _ in range(warmup):
        run_once()
    times = np.array([run_once() for _ in range(repeats)])
    return {
        "median": float(np.median(times)),
        "mean": float(np.mean(times)),
        "p90": float(np.percentile(times, 90)),
        "min": float(np.min(times)),
        "max": float(np.max(times)),
        "batch_size": int(arrays[0].shape[0]),
        "repeats": repeats,
        "runtime": runtime,
    }

"""Convert Keras models to TFLite (LiteRT) and run them.

Conversion goes Keras -> SavedModel (`export_saved_model`) -> TFLite
converter, the path TensorFlow recommends for Keras 3. Only TFLite builtin
ops are allowed (no Select TF ops), so the result runs in the plain LiteRT
interpreter (`ai_edge_litert`).
"""

import os
import tempfile
import warnings

import numpy as np

from keras_darn.export.saved_model import export_saved_model
from keras_darn.validation import check_one_of

QUANTIZATION_MODES = (None, "dynamic", "int8")


def to_tflite(model, quantization=None, representative_data=None, allow_select_tf_ops=False):
    """Converts a Keras model to a TFLite flatbuffer.

    Args:
        model: A built `keras.Model`.
        quantization: One of:
            - `None`: float32 model.
            - `"dynamic"`: post-training dynamic-range quantization (int8
              weights, float activations; inputs and outputs stay float32).
            - `"int8"`: full-integer post-training quantization. Weights and
              activations are int8, and so are the model's inputs and
              outputs (`tflite_predict` quantizes and dequantizes them).
              Needs `representative_data` to calibrate activation ranges.
            Defaults to `None`.
        representative_data: Calibration inputs for `quantization="int8"`:
            an array of examples (batch dimension first), a list of arrays
            (one per model input, in the order of `model.inputs`), or a
            callable returning an iterable of input lists for one example
            each (the TFLite converter's `representative_dataset`). A
            hundred or so typical examples is enough. Defaults to `None`.
        allow_select_tf_ops: also allow TensorFlow ops that TFLite has no
            builtin for (TFLite's "Select TF ops"; tensor lists are then
            kept rather than lowered). Recurrent layers (`LSTM`, `GRU`,
            `SimpleRNN`) need it. The flatbuffer then runs only with an
            interpreter linked with TensorFlow's Flex delegate (on Android,
            the `tensorflow-lite-select-tf-ops` dependency); the pip LiteRT
            interpreter that `tflite_predict` uses has none. Defaults to
            `False`.

    Returns:
        The TFLite model, as `bytes`.

    Raises:
        ValueError: If `quantization` is not one of `QUANTIZATION_MODES`, if
            `quantization="int8"` is given without `representative_data`, if
            `representative_data` is given for another mode, if `model`
            is not a built `keras.Model`, or if the model needs TensorFlow
            ops and `allow_select_tf_ops` is `False` (the message says so).

    Example:

    ```python
    tflite_model = to_tflite(model, quantization="int8",
                             representative_data=x_train[:100])
    save_tflite(tflite_model, "/tmp/model.tflite")
    predictions = tflite_predict(tflite_model, x_test)
    ```
    """
    check_one_of(quantization, "quantization", QUANTIZATION_MODES)
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            '`quantization="int8"` needs `representative_data` (example '
            "inputs to calibrate activation ranges). "
            "Received: representative_data=None"
        )
    if quantization != "int8" and representative_data is not None:
        raise ValueError(
            '`representative_data` is only used with quantization="int8". '
            f"Received: quantization={quantization!r}"
        )
    # Imported here, so that `import keras_darn` under another Keras backend
    # does not load TensorFlow.
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved_model_dir:
        export_saved_model(model, saved_model_dir)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        select = [tf.lite.OpsSet.SELECT_TF_OPS] if allow_select_tf_ops else []
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + select
        if allow_select_tf_ops:
            converter._experimental_lower_tensor_list_ops = False
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "int8":
            converter.representative_dataset = _representative_dataset(
                model, representative_data
            )
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            ] + select
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        with warnings.catch_warnings():
            # Calibration uses TF's own deprecated interpreter internally.
            warnings.filterwarnings(
                "ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated"
            )
            try:
                return bytes(converter.convert())
            except Exception as error:  # the converter raises its own ConverterError
                if allow_select_tf_ops or "Select TF ops" not in str(error):
                    raise
                raise ValueError(
                    f"Model '{model.name}' uses TensorFlow ops that TFLite has no builtin for "
                    "(recurrent layers do). Pass allow_select_tf_ops=True to keep them as "
                    "Select TF ops; the flatbuffer then needs an interpreter with TensorFlow's "
                    "Flex delegate. Received: allow_select_tf_ops=False"
                ) from None


def _representative_dataset(model, representative_data):
    if callable(representative_data):
        return representative_data
    arrays = representative_data
    if not isinstance(arrays, (list, tuple)):
        arrays = [arrays]
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    if len(arrays) != len(model.inputs):
        raise ValueError(
            f"Model '{model.name}' has {len(model.inputs)} inputs but "
            f"`representative_data` holds {len(arrays)} arrays."
        )
    names = [_input_name(x) for x in model.inputs]

    def dataset():
        for i in range(len(arrays[0])):
            examples = [a[i : i + 1] for a in arrays]
            if len(examples) == 1:
                yield examples
            else:
                yield dict(zip(names, examples))

    return dataset


def _input_name(keras_tensor):
    return keras_tensor.name.split(":")[0]


def save_tflite(tflite_model, path):
    """Writes a TFLite flatbuffer to a file.

    Args:
        tflite_model: The TFLite model, `bytes` from `to_tflite`.
        path: File to write (`str` or path-like); missing parent directories
            are created. By convention it ends in `.tflite`.

    Returns:
        `path`, as a `str`.

    Raises:
        ValueError: If `tflite_model` is not `bytes`.

    Example:

    ```python
    save_tflite(to_tflite(model), "/tmp/model.tflite")
    ```
    """
    if not isinstance(tflite_model, (bytes, bytearray)):
        raise ValueError(
            "Expected the TFLite model as bytes (from `to_tflite`). Received: "
            f"tflite_model of type {type(tflite_model).__name__}"
        )
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as f:
        f.write(tflite_model)
    return path


def tflite_interpreter(tflite_model, num_threads=None):
    """Creates a LiteRT interpreter for a TFLite model.

    Args:
        tflite_model: The TFLite model as `bytes`, or the path of a
            `.tflite` file.
        num_threads: Number of CPU threads for the interpreter. Defaults to
            `None` (LiteRT's default).

    Returns:
        An `ai_edge_litert.interpreter.Interpreter`, tensors not allocated.

    Raises:
        ValueError: If `tflite_model` is neither bytes nor a path.
    """
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(tflite_model, (bytes, bytearray)):
        return Interpreter(
            model_content=bytes(tflite_model), num_threads=num_threads
        )
    if isinstance(tflite_model, (str, os.PathLike)):
        return Interpreter(
            model_path=os.fspath(tflite_model), num_threads=num_threads
        )
    raise ValueError(
        "Expected a TFLite model as bytes or a file path. Received: "
        f"tflite_model of type {type(tflite_model).__name__}"
    )


def _as_input_list(x, interpreter):
    """The arrays of `x` in the order of the interpreter's input details."""
    if not isinstance(x, dict):
        if isinstance(x, (list, tuple)):
            return [np.asarray(a) for a in x]
        return [np.asarray(x)]
    # Signature input names are the Keras model's input names.
    by_name = interpreter.get_signature_runner().get_input_details()
    if set(by_name) != set(x):
        raise ValueError(
            f"The TFLite model's inputs are named {sorted(by_name)}. "
            f"Received: x with keys {sorted(x)}"
        )
    position = {
        d["index"]: i for i, d in enumerate(interpreter.get_input_details())
    }
    arrays = [None] * len(position)
    for name, details in by_name.items():
        arrays[position[details["index"]]] = np.asarray(x[name])
    return arrays


def _quantize(values, details):
    dtype = details["dtype"]
    scale, zero_point = details["quantization"]
    if np.issubdtype(dtype, np.integer) and scale != 0:
        info = np.iinfo(dtype)
        values = np.round(values / scale + zero_point)
        return np.clip(values, info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _dequantize(values, details):
    scale, zero_point = details["quantization"]
    if np.issubdtype(details["dtype"], np.integer) and scale != 0:
        return (values.astype(np.float32) - zero_point) * scale
    return values


def set_inputs(interpreter, inputs):
    """Resizes, allocates and fills the interpreter's inputs for a batch.

    Args:
        interpreter: An interpreter from `tflite_interpreter`.
        inputs: A list of arrays, one per interpreter input, in the order of
            `interpreter.get_input_details()`; batch dimension first.

    Raises:
        ValueError: If the number of arrays does not match the model.
        RuntimeError: If the model cannot take this batch size.
    """
    details = interpreter.get_input_details()
    if len(inputs) != len(details):
        raise ValueError(
            f"The TFLite model has {len(details)} inputs "
            f"({[d['name'] for d in details]}) but {len(inputs)} arrays were "
            "given."
        )
    for array, detail in zip(inputs, details):
        if tuple(detail["shape"]) != array.shape:
            interpreter.resize_tensor_input(
                detail["index"], list(array.shape), strict=False
            )
    interpreter.allocate_tensors()
    for array, detail in zip(inputs, interpreter.get_input_details()):
        interpreter.set_tensor(detail["index"], _quantize(array, detail))


def _run_batch(interpreter, inputs):
    set_inputs(interpreter, inputs)
    interpreter.invoke()
    return [
        _dequantize(interpreter.get_tensor(d["index"]), d)
        for d in interpreter.get_output_details()
    ]


def tflite_predict(tflite_model, x, num_threads=None):
    """Runs a TFLite model on a batch with the LiteRT interpreter.

    Integer (int8/uint8) inputs and outputs are handled: float inputs are
    quantized with the input tensor's scale and zero point, integer outputs
    are dequantized to float32. The input tensors are resized to the batch;
    a model that cannot be resized is run one example at a time.

    Args:
        tflite_model: The TFLite model as `bytes` or the path of a
            `.tflite` file.
        x: An array of examples (batch dimension first). For a model with
            several inputs, a dict mapping the Keras model's input names to
            arrays, or a list of arrays in the order of the interpreter's
            `get_input_details()` (the order of `model.inputs` for models
            from `to_tflite`).
        num_threads: Number of CPU threads for the interpreter. Defaults to
            `None` (LiteRT's default).

    Returns:
        The outputs as a float `np.ndarray`, or a list of them (in the order
        of `get_output_details()`) for a model with several outputs.

    Example:

    ```python
    probabilities = tflite_predict(to_tflite(model), x_test)
    ```
    """
    interpreter = tflite_interpreter(tflite_model, num_threads=num_threads)
    inputs = _as_input_list(x, interpreter)
    try:
        outputs = _run_batch(interpreter, inputs)
    except RuntimeError:
        # Some models have a fixed batch dimension; run examples one by one.
        interpreter = tflite_interpreter(tflite_model, num_threads=num_threads)
        per_example = [
            _run_batch(interpreter, [a[i : i + 1] for a in inputs])
            for i in range(len(inputs[0]))
        ]
        outputs = [np.concatenate(parts) for parts in zip(*per_example)]
    if len(outputs) == 1:
        return outputs[0]
    return outputs


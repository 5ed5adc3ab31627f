"""Export a Keras model as a TensorFlow SavedModel for serving."""

import os

import keras


def export_saved_model(model, path):
    """Writes `model` as a TensorFlow SavedModel with a serving signature.

    Uses `model.export(path, format="tf_saved_model")`, which traces the
    model's `call` in inference mode (`training=False`), so models containing
    keras_darn's custom layers export like any other. The SavedModel has an
    endpoint `serve` and a signature `serving_default` whose inputs are named
    after the model's inputs and whose output is `output_0` (`output_0`,
    `output_1`, ... for several outputs). Reloading it needs only TensorFlow,
    neither Keras nor keras_darn.

    Args:
        model: A built `keras.Model`.
        path: Directory to write the SavedModel to (`str` or path-like).

    Returns:
        `path`, as a `str`.

    Raises:
        ValueError: If `model` is not a built `keras.Model`.

    Example:

    ```python
    export_saved_model(model, "/tmp/my_model")
    reloaded = tf.saved_model.load("/tmp/my_model")
    predictions = reloaded.serve(x)
    ```
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Expected a keras.Model. Received: model={model!r} of type "
            f"{type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built. Build it first (give it a "
            "`keras.Input`, call it on data, or call "
            "`model.build(input_shape)`)."
        )
    path = os.fspath(path)
    model.export(path, format="tf_saved_model", verbose=False)
    return path

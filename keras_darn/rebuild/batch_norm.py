"""Re-estimating BatchNormalization statistics after pruning or brief training.

A BatchNormalization layer tests on moving averages of its batch statistics
(`moving = momentum * moving + (1 - momentum) * batch`). After a few hundred
training steps, or after pruning steps that each change the network, those
averages lag the weights, and a network tested on them can lose tens of
points of accuracy it has on batch statistics. Setting them to the
statistics of a sample of training data (as Torch-Pruning users do with a
forward pass in `train()` mode) removes that lag.
"""

import keras

from keras_darn.rebuild.rebuilder import Rebuilder
from keras_darn.rebuild.training_state import compile_like
from keras_darn.validation import check_positive_int


def recalibrate_batch_norm(model, x, batch_size=None, compile=True):
    """Returns a copy of `model` whose BatchNorm statistics are those of `x`.

    The copy (the Rebuilder's, weights bit for bit, masked layers kept) runs
    in training mode on `x`, in batches of `batch_size`, with each trainable
    BatchNormalization layer's momentum set so that its moving mean and
    variance become the average of the batches' means and variances, weighted
    by their sizes (the mean of `x` exactly, and its variance too when `x`
    fits in one batch). Every other variable of the copy, a dropout layer's
    seed included, is put back afterwards, so the copy differs from `model`
    in the BatchNorm statistics only. Layers set to `trainable=False` keep
    their statistics, as they do in `fit`. `model` is not modified.

    Args:
        model: a functional or Sequential Keras model; BatchNormalization
            layers anywhere inside it, nested models included, are set.
        x: input data as the model takes it: an array, or a list or dict of
            arrays with the same first dimension. A few thousand training
            examples are plenty.
        batch_size: examples per forward pass; `None` runs `x` in one pass.
            Defaults to `None`.
        compile: compile like `model` and carry optimizer state. Defaults
            to `True`.

    Returns:
        A new `keras.Model`, the same as `model` but for its BatchNorm
        statistics.

    Raises:
        ValueError: if `model` is not a built Keras model, `x` is empty or
            its arrays differ in length, or `batch_size` is not a positive
            integer or `None`.

    Example:

    ```python
    inputs = keras.Input((8,))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    model = darn.rebuild.recalibrate_batch_norm(model, x, batch_size=64)
    ```
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            "Received an invalid value for `model`, expected a built Keras model. "
            f"Received: model={model!r}")
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
    sizes = {len(leaf) for leaf in keras.tree.flatten(x)}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            "Received an invalid value for `x`, expected one or more non-empty arrays with the "
            f"same first dimension. Received first dimensions: {sorted(sizes)}")
    size = sizes.pop()
    rebuilder = Rebuilder(model)
    copy = rebuilder.build(keep_masks=True)
    if compile:
        compile_like(copy, model, variable_map=rebuilder.variable_map)
    norms = [layer for layer in copy._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    statistics = {id(v) for layer in norms for v in (layer.moving_mean, layer.moving_variance)}
    others = [(v, v.numpy()) for v in copy.non_trainable_variables if id(v) not in statistics]
    momenta = [layer.momentum for layer in norms]
    step = batch_size or size
    for start in range(0, size, step) if norms else []:
        for layer in norms:  # the running mean over the examples seen so far
            layer.momentum = start / min(start + step, size)
        copy(keras.tree.map_structure(lambda a: a[start:start + step], x), training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    for variable, value in others:
        variable.assign(value)
    return copy

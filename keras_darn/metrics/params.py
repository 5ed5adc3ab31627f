"""Parameter counts that leave out keras_darn's bookkeeping weights.

`keras.Model.count_params()` sums every weight of a model, trainable or not.
Layers can carry non-trainable bookkeeping weights, registered as such with
`keras_darn.graph.register_layer(..., bookkeeping_weights=...)`: masks that
record which units and connections are switched off, or statistics a
pruning callback accumulates. These are bookkeeping, not
parameters: they play no part in (or only zero out) the function the model
computes and disappear when `shrink` turns the model into a plain Keras
model, so counting them would make a masked model look larger than the plain
model it stands for. Everything else (kernels, biases, BatchNormalization
moving statistics, ...) is counted the way Keras counts it.
"""

import math

import keras

from keras_darn.graph import registry
from keras_darn.graph.nodes import is_graph_model
from keras_darn.graph.nodes import leaf_layers
from keras_darn.rebuild import shrink

def _parameter_size(variables, seen):
    """Elements of `variables` not in `seen` (ids; bookkeeping ids start there)."""
    total = 0
    for variable in variables:
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        total += math.prod(variable.shape)
    return total


def _check_model(model):
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "Expected a Keras model or layer. "
            f"Received: model={model!r} of type {type(model).__name__}"
        )


def count_params(model, active_only=False):
    """Counts the parameters of a model, leaving out keras_darn's masks.

    Trainable and non-trainable weights are counted the way
    `keras.Model.count_params()` counts them (so BatchNormalization moving
    statistics are included), except that the weights named in
    layers register as bookkeeping (masks, accumulated statistics; see
    `keras_darn.graph.register_layer`) are skipped: `keras_darn.shrink`
    removes them. A variable shared by
    several layers is counted once. Nested models are included.

    Args:
        model: A built `keras.Model` (or layer).
        active_only: If `True`, count only the parameters that survive when
            masked-off units are removed, i.e.
            `count_params(keras_darn.rebuild.shrink(model))`. Defaults to
            `False`.

    Returns:
        The number of parameters, an `int`.

    Raises:
        ValueError: If `model` is not a Keras model or layer, or is not
            built.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    count_params(model)  # 4 * 3 + 3 = 15
    ```
    """
    _check_model(model)
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built, so it has no weights to "
            "count. Build it first (give it a `keras.Input`, call it on "
            "data, or call `model.build(input_shape)`)."
        )
    if active_only:
        return count_params(shrink(model))
    return int(_parameter_size(model.weights, _bookkeeping(model)))


def params_by_layer(model):
    """Counts the parameters of each layer of a model, masks left out.

    Layers of nested models are recursed into and named by their path,
    `"<nested model name>/<layer name>"`. Every layer appears once (a
    layer called several times is counted once), including layers without
    parameters (count 0). The values add up to `count_params(model)`.

    Args:
        model: A built `keras.Model`.

    Returns:
        A `dict` mapping layer name (or path) to its parameter count, in the
        order of `model.layers`.

    Raises:
        ValueError: If `model` is not a Keras model or layer, or is not
            built.

    Example:

    ```python
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="hidden")]
    )
    params_by_layer(model)  # {"hidden": 15}
    ```
    """
    _check_model(model)
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built. Build it first (give it a "
            "`keras.Input`, call it on data, or call "
            "`model.build(input_shape)`)."
        )
    counts = {}
    _collect_layer_params(model, "", counts, set(), _bookkeeping(model))
    return counts


def _collect_layer_params(model, prefix, counts, seen_layers, seen_variables):
    for layer in model.layers:
        if id(layer) in seen_layers:
            continue
        seen_layers.add(id(layer))
        if isinstance(layer, keras.layers.InputLayer):
            continue
        name = prefix + layer.name
        if isinstance(layer, keras.Model):
            _collect_layer_params(
                layer, name + "/", counts, seen_layers, seen_variables
            )
            continue
        counts[name] = int(_parameter_size(layer.weights, seen_variables))


def _bookkeeping(model):
    layers = leaf_layers(model) if is_graph_model(model) else [model]
    return registry.bookkeeping_weight_ids(layers)

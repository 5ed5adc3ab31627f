"""Copies of a model whose hidden `Dense` layers are `StandoutDense` layers."""

import keras

from keras_darn.graph import registry
from keras_darn.graph import unit_groups
from keras_darn.graph.nodes import is_graph_model
from keras_darn.graph.nodes import leaf_layers
from keras_darn.layers.standout_dense import StandoutDense

# The `Dense` arguments a `StandoutDense` takes as they are.
_SHARED_CONFIG = (
    "name",
    "trainable",
    "dtype",
    "units",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)


def standout_layers(model):
    """The `StandoutDense` layers of `model` (nested models included)."""
    return [layer for layer in leaf_layers(model) if isinstance(layer, StandoutDense)]


def hidden_dense_names(model, exclude=()):
    """Names of the `Dense` layers whose units may be removed.

    A `Dense` layer is hidden when it alone makes a resizable unit group
    (`keras_darn.unit_groups`): its units reach no model output (directly
    or through layers that carry units, such as `Dropout` or `Flatten`)
    and are not coupled to another layer's by an element-wise merge. Only
    layers of exactly the class `keras.layers.Dense` count.
    """
    dense = {
        layer.name
        for layer in leaf_layers(model)
        if type(layer) is keras.layers.Dense and layer.name not in exclude
    }
    return [
        group.layers[0]
        for group in unit_groups(model)
        if group.resizable and len(group.layers) == 1 and group.layers[0] in dense
    ]


def to_standout(model, alpha=1.0, beta=0.0, exclude=()):
    """A copy of `model` for Standout pruning; `model` is not modified.

    If `model` already has `StandoutDense` layers, the copy is a clone with
    the same weights (masks and retention accumulators included).
    Otherwise every hidden `Dense` layer (see `hidden_dense_names`) not
    named in `exclude` becomes a `StandoutDense` with the same units,
    activation, bias, initializers, regularizers and constraints, the same
    kernel and bias, and `alpha`, `beta`.

    Args:
        model: a built Functional or Sequential `keras.Model`.
        alpha: `alpha` of the new layers. Defaults to `1.0`.
        beta: `beta` of the new layers. Defaults to `0.0`.
        exclude: names of `Dense` layers to keep as they are. Defaults to
            `()`.

    Returns:
        `(copy, converted)`: the new, uncompiled model and the names of the
        layers converted (empty when `model` had `StandoutDense` layers).

    Raises:
        ValueError: for a subclassed model, or a model with neither
            `StandoutDense` layers nor a hidden `Dense` layer.
    """
    if not is_graph_model(model):
        raise ValueError(
            "Standout converts Functional and Sequential models (subclassed models cannot "
            f"be cloned layer by layer). Received: model of type {type(model).__name__}"
        )
    converted = [] if standout_layers(model) else hidden_dense_names(model, exclude)
    if not standout_layers(model) and not converted:
        raise ValueError(
            f"Model '{model.name}' has no StandoutDense layer and no hidden Dense layer to "
            "make one of (a Dense layer whose units reach no model output and are not "
            f"merged with another layer's, and not in exclude={list(exclude)})."
        )
    names = set(converted)

    def clone_layer(layer):
        if type(layer) is keras.layers.Dense and layer.name in names:
            if layer.quantization_mode is not None:
                raise ValueError(
                    f"Layer '{layer.name}' is quantized ({layer.quantization_mode}); "
                    "StandoutDense needs a float kernel. Convert the model before "
                    "quantizing it."
                )
            config = layer.get_config()
            shared = {key: config[key] for key in _SHARED_CONFIG if key in config}
            return StandoutDense(alpha=alpha, beta=beta, **shared)
        return registry.fresh_copy(layer)  # a Lambda is carried, never deserialized

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    for source, target in zip(leaf_layers(model), leaf_layers(clone)):
        if source.name != target.name:
            raise RuntimeError(
                "Cloning changed the layer order: expected layer "
                f"'{source.name}', found '{target.name}'."
            )
        if isinstance(target, StandoutDense) and source.name in names:
            # Numpy copies: under JAX, `fit` on the clone donates (deletes)
            # its arrays, which must not be the source model's.
            target.kernel.assign(keras.ops.convert_to_numpy(source.kernel))
            if target.use_bias:
                target.bias.assign(keras.ops.convert_to_numpy(source.bias))
        else:
            target.set_weights(source.get_weights())
    return clone, converted

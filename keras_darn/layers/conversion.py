"""Conversion between plain Keras models and models with prunable layers."""

import keras
import numpy as np
from keras import ops

from keras_darn.layers.prunable_conv2d import PrunableConv2D
from keras_darn.layers.prunable_dense import PrunableDense
from keras_darn.graph import registry
from keras_darn.graph.nodes import is_graph_model
from keras_darn.graph.nodes import leaf_layers
from keras_darn.graph.nodes import producer_of

_PRUNABLE_OF = {
    keras.layers.Dense: PrunableDense,
    keras.layers.Conv2D: PrunableConv2D,
}
_PLAIN_OF = {prunable: plain for plain, prunable in _PRUNABLE_OF.items()}
_MASK_NAMES = ("unit_mask", "kernel_mask")


def _check_graph_model(model, function_name):
    if not is_graph_model(model):
        raise ValueError(
            f"`{function_name}` supports Functional and Sequential Keras "
            "models (subclassed models cannot be cloned layer by layer). "
            f"Received: model of type {type(model).__name__}"
        )


def clone_with_weights(model, clone_layer, values=None, keep_input_names=False):
    """Clones `model` layer by layer through `clone_layer`, every weight carried over.

    Weights travel by structure: each cloned layer's weights take the source
    layer's in order, the masks set aside (`unit_mask`, `kernel_mask`): a
    mask the source has is copied, one it lacks keeps its ones, one only the
    source has is dropped. So a layer may come back as another class with the
    same weights (a `Dense` as a `PrunableDense`, and back).

    Args:
        model: a Functional or Sequential `keras.Model` (nested models are
            cloned layer by layer too).
        clone_layer: `clone_layer(layer) -> new layer`, as for
            `keras.models.clone_model`.
        values: `values(source_layer) -> {weight name: value}`, values that
            replace the source's for those weights (e.g. a kernel with its
            connection mask folded in). Defaults to `None`.
        keep_input_names: give the clone's inputs the names of the model's
            (a functional model's; a Sequential model has none of its own).
            Defaults to `False`.

    Returns:
        The new `keras.Model`, not compiled.

    Raises:
        RuntimeError: when cloning changed the layer order or a layer's
            weights do not match its clone's.
    """
    input_tensors = None
    if keep_input_names and not isinstance(model, keras.Sequential):
        input_tensors = keras.tree.map_structure(
            lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype, name=producer_of(x)[0].name),
            model.input,
        )
    clone = keras.models.clone_model(
        model, input_tensors=input_tensors, clone_function=clone_layer, recursive=True
    )
    for source, target in zip(leaf_layers(model), leaf_layers(clone)):
        if source.name != target.name:
            raise RuntimeError(
                "Cloning changed the layer order: expected layer "
                f"'{source.name}', found '{target.name}'."
            )
        _carry_weights(source, target, values(source) if values is not None else {})
    return clone


def _carry_weights(source, target, replaced):
    """`source`'s weights into `target`'s, in order, masks aside (see `clone_with_weights`)."""
    sources = [w for w in source.weights if w.name not in _MASK_NAMES]
    targets = [w for w in target.weights if w.name not in _MASK_NAMES]
    if [tuple(w.shape) for w in sources] != [tuple(w.shape) for w in targets]:
        raise RuntimeError(
            f"Layer '{source.name}' and its clone hold different weights: "
            f"{[w.name for w in sources]} and {[w.name for w in targets]}."
        )
    # Values travel through numpy copies: a variable assigned another's
    # value would share its array, and under JAX `fit` donates (deletes) the
    # arrays of the model it trains, so training the clone would break the
    # source model.
    for old, new in zip(sources, targets):
        new.assign(ops.convert_to_numpy(replaced.get(old.name, old)))
    masks = {w.name: w for w in source.weights if w.name in _MASK_NAMES}
    for weight in target.weights:
        if weight.name in masks:
            weight.assign(ops.convert_to_numpy(masks[weight.name]))


def _default_clone(layer):
    # Lambda layers and op nodes are carried, never deserialized.
    return registry.fresh_copy(layer)


def _layers_to_convert(model, layer_names):
    leaves = leaf_layers(model)
    convertible = [layer for layer in leaves if type(layer) in _PRUNABLE_OF]
    if layer_names is None:
        return {id(layer) for layer in convertible}
    if isinstance(layer_names, str):
        layer_names = [layer_names]
    by_name = {}
    for layer in leaves:
        by_name.setdefault(layer.name, []).append(layer)
    selected = set()
    for name in layer_names:
        if name not in by_name:
            raise ValueError(
                f"Received an invalid value for `layer_names`: no layer named "
                f"'{name}' in the model. Convertible layers: "
                f"{[layer.name for layer in convertible]}. Received: "
                f"layer_names={list(layer_names)}"
            )
        for layer in by_name[name]:
            if type(layer) not in _PRUNABLE_OF:
                raise ValueError(
                    f"Received an invalid value for `layer_names`: layer "
                    f"'{name}' is a {type(layer).__name__}; only Dense and "
                    f"Conv2D layers can be made prunable. Received: "
                    f"layer_names={list(layer_names)}"
                )
            selected.add(id(layer))
    return selected


def to_prunable(model, layer_names=None, connection_mask=False):
    """Returns a copy of `model` with Dense/Conv2D made prunable.

    Every `keras.layers.Dense` becomes a `PrunableDense` and every
    `keras.layers.Conv2D` a `PrunableConv2D` with the same configuration,
    the same weights and all-ones masks, so the new model computes the same
    function. Nested Functional and Sequential models are converted too.
    Only layers of exactly these classes are converted (subclasses keep their
    own behaviour). The input model is not modified; the returned model is
    not compiled.

    Args:
        model: A Functional or Sequential `keras.Model`.
        layer_names: Optional list of layer names to convert; `None` converts
            every Dense and Conv2D layer. Defaults to `None`.
        connection_mask: Boolean, passed to the new layers: if `True` they
            also get a per-connection `kernel_mask`. Defaults to `False`.

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: If `model` is a subclassed model, a name in `layer_names`
            is missing or names a layer that is not Dense/Conv2D, or a layer
            to convert is quantized.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> prunable = keras_darn.layers.to_prunable(model)
    >>> type(prunable.layers[0]).__name__
    'PrunableDense'
    """
    _check_graph_model(model, "to_prunable")
    if not isinstance(connection_mask, bool):
        raise ValueError(
            "Received an invalid value for `connection_mask`, expected a "
            f"bool. Received: connection_mask={connection_mask!r}"
        )
    targets = _layers_to_convert(model, layer_names)

    def clone_layer(layer):
        if id(layer) not in targets:
            return _default_clone(layer)
        if layer.quantization_mode is not None:
            raise ValueError(
                f"Layer '{layer.name}' is quantized "
                f"({layer.quantization_mode}); prunable layers need a float "
                "kernel. Convert the model before quantizing it."
            )
        config = {**layer.get_config(), "connection_mask": connection_mask}
        return _PRUNABLE_OF[type(layer)].from_config(config)

    return clone_with_weights(model, clone_layer)


def from_prunable(model):
    """Returns a copy of `model` with prunable layers turned back into plain ones.

    `PrunableDense` becomes `keras.layers.Dense` and `PrunableConv2D` becomes
    `keras.layers.Conv2D`, with the same weights. Connection masks are folded
    into the kernel (masked weights become 0). Unit masks cannot be folded
    without changing the layer widths, so every unit must be active: to drop
    masked units, call `keras_darn.shrink(model)` instead. The input model is
    not modified; the returned model is not compiled.

    Args:
        model: A Functional or Sequential `keras.Model`.

    Returns:
        A new `keras.Model` without prunable layers.

    Raises:
        ValueError: If `model` is a subclassed model, or any prunable layer
            has a unit switched off.

    Example:

    >>> model = keras.Sequential(
    ...     [keras.Input((4,)), keras_darn.layers.PrunableDense(3)]
    ... )
    >>> plain = keras_darn.layers.from_prunable(model)
    >>> type(plain.layers[0]).__name__
    'Dense'
    """
    _check_graph_model(model, "from_prunable")
    for layer in leaf_layers(model):
        if type(layer) not in _PLAIN_OF or not layer.built:
            continue
        off = np.flatnonzero(layer.get_unit_mask() == 0).tolist()
        if off:
            raise ValueError(
                f"Layer '{layer.name}' has masked units {off}: a plain layer "
                "cannot represent them. Call `keras_darn.shrink(model)` to "
                "remove masked units and get a plain, smaller model."
            )

    def clone_layer(layer):
        plain_class = _PLAIN_OF.get(type(layer))
        if plain_class is None:
            return _default_clone(layer)
        config = layer.get_config()
        config.pop("connection_mask")
        return plain_class.from_config(config)

    def folded_kernel(source):
        if type(source) not in _PLAIN_OF or source.kernel_mask is None:
            return {}
        return {"kernel": ops.multiply(source._kernel, source.kernel_mask)}

    return clone_with_weights(model, clone_layer, values=folded_kernel)

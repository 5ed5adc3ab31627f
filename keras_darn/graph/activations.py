"""Widths and activations of layers: what growth reads of a layer in a graph.

`layer_width(model, name)` is the number of units of a Dense- or Conv-like
layer; `activation_chain(functional, layer)` follows the layer's output
through the single chain of per-unit layers (normalization, activation)
that ends where its units' activations are read.
"""

import keras
import numpy as np

from keras_darn.graph.nodes import inbound_nodes

# Layers that map a unit to itself (no mixing), so that the unit's
# "activation" is read after them.
PER_UNIT_LAYERS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
)


def layer_width(model, layer_name):
    """Number of units (`units` or `filters`) of a Dense/Conv layer.

    Raises:
        ValueError: unknown layer, or a layer without `units`/`filters`.
    """
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        names = [l.name for l in model.layers]
        raise ValueError(
            f"No layer named '{layer_name}' in model '{model.name}'. Layers: {names}"
        ) from None
    for attribute in ("units", "filters"):
        width = getattr(layer, attribute, None)
        if isinstance(width, (int, np.integer)):
            return int(width)
    raise ValueError(
        f"Layer '{layer_name}' of type {type(layer).__name__} has no `units` or `filters`; "
        "growth works on Dense- and Conv-like layers."
    )


def activation_chain(functional, layer):
    """Follows `layer`'s output through a single chain of per-unit layers.

    Returns:
        `(tensor, chain, users)`: the tensor at the end of the chain, the
        per-unit layers passed, and the `(layer, node)` pairs that read the
        tensor.
    """
    consumers = {}
    for other in functional.layers:
        for node in inbound_nodes(other):
            for tensor in node.input_tensors:
                consumers.setdefault(id(tensor), []).append((other, node))
    tensor, chain = layer.output, []
    while True:
        users = consumers.get(id(tensor), [])
        if len(users) != 1 or not isinstance(users[0][0], PER_UNIT_LAYERS):
            return tensor, chain, users
        chain.append(users[0][0])
        tensor = users[0][1].outputs[0]

"""The auxiliary layer of Esfandiarpoor et al., inserted into a pruned network.

After connection pruning a fully connected, prunable layer is inserted and
the network retrained and pruned again (*Simplified neural network based on
auxiliary layer and adaptive pruning rate*); `factorized=True` starts it from
a truncated SVD of the layer after it instead of fresh weights.
"""

import warnings

import keras
import numpy as np
from keras import ops

from keras_darn.layers import connection_masks
from keras_darn.graph.nodes import FunctionalGraph
from keras_darn.layers import PrunableDense
from keras_darn.rebuild import compile_like
from keras_darn.rebuild import insert_layer


def insert_auxiliary_layer(
    model, after, units, activation="relu", identity=False, factorized=False, name=None, compile=True
):
    """Returns a new model with a prunable auxiliary layer after `after`.

    The paper's auxiliary layer: after pruning, a fully connected layer of
    `units` units is inserted (a `PrunableDense` with a connection mask, so
    it can be pruned in turn) and the network is retrained and pruned again.
    It gives the connections pruned earlier a new route. The layer that
    consumed `after` gets a new input width, so it starts from fresh weights
    and an all-ones mask (`keras_darn.insert_layer` warns about it) unless
    `identity=True` or `factorized=True`.

    `factorized=True` (not in the paper) splits the consuming Dense layer's
    effective kernel `W` (pruned entries 0) with a truncated SVD,
    `W ~ U_r S_r V_r^T`: the auxiliary layer gets `U_r S_r^1/2` and the
    consumer `S_r^1/2 V_r^T`, so the new model starts from the best rank-r
    approximation of the old one instead of from scratch. A ReLU passes a
    direction `z` as `relu(z) - relu(-z)`, so with `activation="relu"` the
    units come in pairs (`r = units // 2`); with a linear activation
    `r = units`. The approximation is exact when `r` reaches the rank of `W`
    (e.g. `units >= 2 * min(W.shape)` with ReLU). Units beyond `2r` (or
    `r`) keep random incoming and get zero outgoing weights.

    Args:
        model: a built Functional or Sequential model; it is not modified.
        after: name of the layer whose output feeds the auxiliary layer.
        units: number of units of the auxiliary layer.
        activation: its activation. Defaults to `"relu"`.
        identity: initialise it to the identity so the new model computes
            the same function (needs `units` equal to the width of `after`'s
            output and a linear or ReLU activation). Defaults to `False`.
        factorized: initialise it and its consumer from a truncated SVD of
            the consumer's kernel, as above (needs a single Dense consumer
            and a linear or ReLU activation). Defaults to `False`.
        name: its name. Defaults to `None` (`"auxiliary_<units>"`, with a
            suffix `_1`, `_2`, ... when the model already has that name).
        compile: compile the new model like `model`. Defaults to `True`.

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: for an unknown `after`, a non-positive `units`, both
            `identity` and `factorized`, or an initialisation the layers do
            not allow.

    Example:

    ```python
    deeper = insert_auxiliary_layer(pruned, after="hidden_80", units=40)
    close = insert_auxiliary_layer(pruned, after="hidden_80", units=40, factorized=True)
    ```
    """
    if identity and factorized:
        raise ValueError(
            "Expected at most one of `identity` and `factorized`. Received: identity=True, "
            "factorized=True"
        )
    if factorized and activation not in ("relu", "linear", None):
        raise ValueError(
            "`factorized=True` needs a linear or relu activation. "
            f"Received: activation={activation!r}"
        )
    layer = PrunableDense(
        units, activation=activation, connection_mask=True,
        name=name or _unused_name(model, f"auxiliary_{units}"),
    )
    if not factorized:
        return insert_layer(model, after=after, layer=layer, identity=identity, compile=compile)
    with warnings.catch_warnings():  # the consumer's fresh weights are replaced below
        warnings.filterwarnings("ignore", message="insert_layer: the input width")
        new_model = insert_layer(model, after=after, layer=layer, compile=False)
    _factorize_consumer(model, new_model, layer)
    if compile:
        compile_like(new_model, model)
    return new_model


def _unused_name(model, base):
    """`base`, or `base_1`, `base_2`, ... : the first name no layer of `model` has."""
    taken = {layer.name for layer in model.layers}
    name, suffix = base, 0
    while name in taken:
        suffix += 1
        name = f"{base}_{suffix}"
    return name


def _factorize_consumer(model, new_model, layer):
    """Sets `layer` and the Dense layer reading it from an SVD of that layer's old kernel."""
    readers = [node.operation for node in FunctionalGraph(new_model).consumers(layer.output)]
    if len(readers) != 1 or not isinstance(readers[0], keras.layers.Dense):
        raise ValueError(
            "`factorized=True` needs the auxiliary layer to feed exactly one Dense layer. "
            f"Received consumers: {[type(r).__name__ for r in readers]}"
        )
    reader, old_reader = readers[0], model.get_layer(readers[0].name)
    weights = connection_masks.effective_kernel(old_reader).astype("float64")
    u, singular, vt = np.linalg.svd(weights, full_matrices=False)
    paired = getattr(layer.activation, "__name__", "") == "relu"
    rank = min(layer.units // 2 if paired else layer.units, int(np.sum(singular > 0)))
    root = np.sqrt(singular[:rank])
    incoming = u[:, :rank] * root
    outgoing = root[:, None] * vt[:rank]
    kernel = ops.convert_to_numpy(layer.kernel).astype("float64")
    reader_kernel = np.zeros((layer.units, weights.shape[1]))
    kernel[:, :rank] = incoming
    reader_kernel[:rank] = outgoing
    if paired:
        kernel[:, rank : 2 * rank] = -incoming
        reader_kernel[rank : 2 * rank] = -outgoing
    layer.kernel.assign(kernel.astype(layer.kernel.dtype))
    if layer.use_bias:
        layer.bias.assign(np.zeros(layer.bias.shape, dtype=layer.bias.dtype))
    reader.kernel.assign(reader_kernel.astype(reader.kernel.dtype))
    if reader.use_bias:
        reader.bias.assign(ops.convert_to_numpy(old_reader.bias))  # a copy: no shared array
    if getattr(old_reader, "unit_mask", None) is not None and hasattr(reader, "set_unit_mask"):
        reader.set_unit_mask(old_reader.get_unit_mask())

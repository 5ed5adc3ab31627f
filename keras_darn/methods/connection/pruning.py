"""Connection (weight) pruning with kernel masks, and what it pays structurally.

Han et al., *Learning both weights and connections*, as used by Esfandiarpoor
et al., *Auxiliary layer and adaptive pruning rate*: switch off the
connections with the smallest |w|, retrain, repeat. Connections are switched
off through the non-trainable `kernel_mask` of `PrunableDense` /
`PrunableConv2D` (create the model's layers with `connection_mask=True`, e.g.
`keras_darn.layers.to_prunable(model, connection_mask=True)`): a masked
weight multiplies by 0 in the forward pass, so it receives exactly zero
gradient, and `prune_connections` also sets its stored value to 0.

Units cut off by connection pruning are found and switched off in
`keras_darn.methods.connection.structure`, the auxiliary layer is in
`auxiliary`, and the prune-retrain drivers (static and adaptive rate) are in
`adaptive_rate`.
"""

import numpy as np
from keras import ops

from keras_darn.criteria import weight_magnitude
from keras_darn.layers import connection_masks
from keras_darn.validation import check_one_of


def connection_layers(model, layer_names=None):
    """The layers of `model` that have a connection mask (`kernel_mask`).

    Args:
        model: a built Keras model (nested models are searched) or layer.
        layer_names: optional list of layer names to restrict to. Defaults
            to `None` (all of them).

    Returns:
        A list of layers.

    Raises:
        ValueError: if the model has no layer with a kernel mask, or a name in
            `layer_names` is missing or names a layer without one.
    """
    masked = [
        layer
        for layer in connection_masks.kernel_layers(model)
        if getattr(layer, "kernel_mask", None) is not None
    ]
    if not masked:
        raise ValueError(
            f"Model '{model.name}' has no layer with a connection mask. Create "
            "its layers with `connection_mask=True`, e.g. `model = keras_darn."
            "layers.to_prunable(model, connection_mask=True)`."
        )
    if layer_names is None:
        return masked
    if isinstance(layer_names, str):
        layer_names = [layer_names]
    by_name = {layer.name: layer for layer in masked}
    missing = [name for name in layer_names if name not in by_name]
    if missing:
        raise ValueError(
            "Received an invalid value for `layer_names`: no layer with a "
            f"connection mask named {missing}. Layers with one: "
            f"{sorted(by_name)}. Received: layer_names={list(layer_names)}"
        )
    return [by_name[name] for name in layer_names]


# How a pruning rate PR selects connections.
PRUNING_MODES = ("fraction", "threshold", "std")


def check_mode(mode):
    """Raises `ValueError` unless `mode` is one of `PRUNING_MODES`."""
    check_one_of(mode, "mode", PRUNING_MODES)


def _check_rate(rate, mode):
    high = 1.0 if mode == "fraction" else np.inf
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not (
        0.0 <= float(rate) <= high
    ):
        interval = "[0, 1]" if mode == "fraction" else "[0, inf)"
        raise ValueError(
            f"Received an invalid value for `rate`, expected a number in {interval} "
            f"with mode={mode!r}. Received: rate={rate!r}"
        )


def prune_connections(model, rate, layer_names=None, mode="fraction"):
    """Switches off the live connections of smallest magnitude.

    With `mode="fraction"`, in every layer with a connection mask the
    `floor(rate * live)` live kernel entries with the smallest |w| are
    pruned (the same fraction of each layer). With `mode="threshold"`, every
    live entry with |w| < `rate` is pruned (an absolute threshold; the rate
    then has the units of the weights). With `mode="std"`, every live entry
    with |w| < `rate * std(kernel)` is pruned: Han et al.'s "quality
    parameter multiplied by the standard deviation of a layer's weights",
    the std taken over the layer's whole effective kernel (pruned entries
    count as 0, as in the common implementations), so the threshold follows
    the weights' scale. Pruned entries get mask 0 and stored value 0.
    Entries of masked-off units are not live. The model is changed in place.

    Args:
        model: a built model with `PrunableDense`/`PrunableConv2D` layers
            created with `connection_mask=True`.
        rate: fraction of the live connections to prune, in [0, 1], or the
            magnitude threshold (>= 0) with `mode="threshold"`, or the
            multiple (>= 0) of each layer's weight std with `mode="std"`.
        layer_names: optional list of layer names to prune. Defaults to
            `None` (every layer with a connection mask).
        mode: `"fraction"`, `"threshold"` or `"std"`. Defaults to
            `"fraction"`.

    Returns:
        `{layer_name: number of connections pruned}`.

    Raises:
        ValueError: if `mode` is unknown or `rate` out of range, or see
            `connection_layers`.

    Example:

    ```python
    model = keras_darn.layers.to_prunable(model, connection_mask=True)
    prune_connections(model, 0.2)   # {"dense": 2560, "dense_1": 960, ...}
    ```
    """
    check_mode(mode)
    _check_rate(rate, mode)
    pruned = {}
    for layer in connection_layers(model, layer_names):
        kernel = ops.convert_to_numpy(layer.kernel)
        live = connection_masks.live_connections(layer)
        if mode == "fraction":
            chosen = weight_magnitude.smallest_magnitude(kernel, live, float(rate))
        else:
            threshold = float(rate)
            if mode == "std":
                threshold *= float(np.std(connection_masks.effective_kernel(layer)))
            chosen = weight_magnitude.below_threshold(kernel, live, threshold)
        mask = layer.get_kernel_mask()
        mask[chosen] = 0.0
        layer.set_kernel_mask(mask)
        layer.kernel.assign(np.where(mask == 0.0, 0.0, kernel).astype(kernel.dtype))
        pruned[layer.name] = int(chosen.sum())
    return pruned


def zero_masked_weights(model):
    """Sets every masked kernel entry's stored value back to exactly 0.

    A masked weight gets zero gradient, but an optimizer still holding
    momentum from before it was masked (or applying decoupled weight decay)
    can move its stored value. That never changes the output; this keeps the
    stored kernel equal to the effective one. The prune-retrain drivers call
    it after every retraining.

    Args:
        model: a built model; layers without a connection mask are skipped.
    """
    for layer in connection_masks.kernel_layers(model):
        if getattr(layer, "kernel_mask", None) is None:
            continue
        kernel = ops.convert_to_numpy(layer.kernel)
        mask = layer.get_kernel_mask()
        if np.any(kernel[mask == 0.0] != 0):
            layer.kernel.assign(np.where(mask == 0.0, 0.0, kernel).astype(kernel.dtype))


def remaining_weights(model, by_layer=False):
    """Counts the kernel weights that are still live (the paper's "weights").

    A weight is live when its masks (`kernel_mask`, `unit_mask`) are 1, or,
    in a plain layer without masks, when it is non-zero
    (`connection_masks.live_connections`). Every layer with a kernel counts,
    so a masked model and its `keras_darn.shrink` result give the same count
    except for the outgoing weights of constant units, which `shrink` folds
    into biases. Biases are not counted.

    Args:
        model: a built Keras model.
        by_layer: return `{layer_name: count}` instead of the total.
            Defaults to `False`.

    Returns:
        An `int`, or a dict of them.
    """
    counts = {
        layer.name: int(connection_masks.live_connections(layer).sum())
        for layer in connection_masks.kernel_layers(model)
    }
    return counts if by_layer else int(sum(counts.values()))


def mean_abs_weight(model):
    """Mean |w| over the live kernel weights (the paper's "mean of weights",
    Tables I and II); 0.0 when none is live."""
    values = [
        np.abs(connection_masks.effective_kernel(layer)[connection_masks.live_connections(layer)])
        for layer in connection_masks.kernel_layers(model)
    ]
    values = np.concatenate(values) if values else np.zeros(0)
    return float(values.mean()) if values.size else 0.0

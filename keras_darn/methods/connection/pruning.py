"""Connection (weight) pruning with kernel masks, and what it pays structurally.

Han et al., *Learning both weights and connections*, as used by Esfandiarpoor
et al., *Auxiliary layer and adaptive pruning rate*: switch off the
connections with the smallest |w|, retrain, repeat. Connections are switched
off through the non-trainable `kernel_mask` of `PrunableDense` /
`PrunableConv2D` (create the model's layers with `connection_mask=True`, e.g.
`keras_darn.layers.to_prunable(model, connection_mask=True)`): a masked
weight multiplies by 0 in the forward pass, so it receives exactly zero
gradient, and `prune_connections` also sets its stored value to 0.

Connection pruning also removes whole units: a unit whose incoming
connections are all pruned outputs a constant, and one whose outgoing
connections are all pruned reaches nothing. `dead_units` lists both kinds,
`mask_disconnected_units` switches the second kind off (the first kind is
found by `keras_darn.shrink` itself), and `shrink` then returns a physically
smaller plain model computing the same function.

The prune-retrain drivers (static and adaptive rate) are in
`keras_darn.methods.connection.adaptive_rate`.
"""

import keras
import numpy as np
from keras import ops

from keras_darn.criteria import weight_magnitude
from keras_darn.graph import UnitGraph
from keras_darn.graph import registry
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
        for layer in weight_magnitude.kernel_layers(model)
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
        live = weight_magnitude.live_connections(layer)
        if mode == "fraction":
            chosen = weight_magnitude.smallest_magnitude(kernel, live, float(rate))
        else:
            threshold = float(rate)
            if mode == "std":
                threshold *= float(np.std(weight_magnitude.effective_kernel(layer)))
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
    for layer in weight_magnitude.kernel_layers(model):
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
    (`weight_magnitude.live_connections`). Every layer with a kernel counts,
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
        layer.name: int(weight_magnitude.live_connections(layer).sum())
        for layer in weight_magnitude.kernel_layers(model)
    }
    return counts if by_layer else int(sum(counts.values()))


def mean_abs_weight(model):
    """Mean |w| over the live kernel weights (the paper's "mean of weights",
    Tables I and II); 0.0 when none is live."""
    values = [
        np.abs(weight_magnitude.effective_kernel(layer)[weight_magnitude.live_connections(layer)])
        for layer in weight_magnitude.kernel_layers(model)
    ]
    values = np.concatenate(values) if values else np.zeros(0)
    return float(values.mean()) if values.size else 0.0


def _disconnected_units(model):
    """`{layer: indices}` of units whose outgoing connections are all zero.

    Works on `keras_darn.graph`'s coupled unit groups: a group's unit is
    disconnected when every Dense/Conv consumer of its channels has an
    all-zero effective kernel row for them. Units that reach a model output,
    a layer that mixes channels, a `LayerNormalization`, or a consumer that
    is not a plain `Dense`/`Conv` layer count as connected.
    """
    graph = UnitGraph(model)
    connected_roots = set()
    consumed_roots = set()
    for consumer in graph.consumers:
        layer = consumer.layer
        roots = graph.roots(consumer.channels)
        kernel = getattr(layer, "kernel", None)
        handler = registry.get_handler(layer)
        simple = (
            kernel is not None
            and getattr(handler, "fold_weight", None) == "kernel"
            and getattr(layer, "groups", 1) == 1
            and kernel.shape[-2] == len(roots)
        )
        if not simple:
            connected_roots.update(int(r) for r in roots)
            continue
        effective = weight_magnitude.effective_kernel(layer)
        rows = np.moveaxis(effective, -2, 0).reshape(len(roots), -1)
        row_live = np.any(rows != 0, axis=1)
        consumed_roots.update(int(r) for r in roots)
        connected_roots.update(int(r) for r in roots[row_live])
    for layer in graph.layers.values():
        if type(layer).__name__ in ("LayerNormalization", "GroupNormalization", "UnitNormalization"):
            channels = graph.inputs.get(id(layer))
            if channels is not None:
                connected_roots.update(int(r) for r in graph.roots(channels))
    found = {}
    for key, channels in graph.spaces.items():
        layer = graph.layer_of_space(key)
        roots = graph.roots(channels)
        off = [
            j
            for j, root in enumerate(roots)
            if int(root) in consumed_roots
            and int(root) not in connected_roots
            and graph.fixed_reason(root) is None
        ]
        if off:
            found[layer] = off
    return found


def dead_units(model):
    """Units that connection pruning has cut off, per layer.

    A unit is dead on its input side when all its incoming connections are
    zero (it outputs a constant, `activation(bias)`), and dead on its output
    side when all its outgoing connections are zero (see
    `mask_disconnected_units`). Units already switched off by a unit mask are
    not listed.

    Args:
        model: a built Functional or Sequential model.

    Returns:
        `{layer_name: {"incoming": [indices], "outgoing": [indices]}}` for
        every layer with a kernel; `"outgoing"` is empty for layers whose
        units reach a model output.
    """
    report = {}
    for layer in weight_magnitude.kernel_layers(model):
        effective = weight_magnitude.effective_kernel(layer)
        columns = effective.reshape(-1, effective.shape[-1])
        unit_mask = getattr(layer, "unit_mask", None)
        active = (
            np.ones(columns.shape[1], dtype=bool)
            if unit_mask is None
            else ops.convert_to_numpy(unit_mask) != 0
        )
        incoming = np.flatnonzero(active & ~np.any(columns != 0, axis=0)).tolist()
        report[layer.name] = {"incoming": incoming, "outgoing": []}
    for layer, units in _disconnected_units(model).items():
        if layer.name in report:
            unit_mask = getattr(layer, "unit_mask", None)
            active = None if unit_mask is None else ops.convert_to_numpy(unit_mask)
            report[layer.name]["outgoing"] = [
                j for j in units if active is None or active[j] != 0
            ]
    return report


def mask_disconnected_units(model):
    """Switches off the units whose outgoing connections are all pruned.

    Such a unit's output is multiplied by zero wherever it is used, so
    setting its unit mask to 0 changes no output of the model; afterwards its
    incoming weights stop counting as live and `keras_darn.shrink` removes
    it. Switching units off can disconnect units of the layer before, so
    this repeats until nothing changes. Only layers with a unit mask
    (`PrunableDense`/`PrunableConv2D`) are changed; for a coupled group
    (e.g. the inputs of an `Add`) each member that has one is switched off,
    which is exact because the group's channel is not used anywhere. The
    model is changed in place.

    Args:
        model: a built Functional or Sequential model.

    Returns:
        `{layer_name: [unit indices switched off]}` (layers with none are
        left out).

    Example:

    ```python
    prune_connections(model, 0.9)
    mask_disconnected_units(model)     # {"dense_1": [3, 17], ...}
    small = keras_darn.shrink(model)   # those units and the constant ones are gone
    ```
    """
    switched = {}
    while True:
        changed = False
        for layer, units in _disconnected_units(model).items():
            if not hasattr(layer, "set_unit_mask"):
                continue
            mask = layer.get_unit_mask()
            new = [j for j in units if mask[j] != 0]
            if not new:
                continue
            mask[new] = 0.0
            layer.set_unit_mask(mask)
            switched.setdefault(layer.name, []).extend(new)
            changed = True
        if not changed:
            return {name: sorted(units) for name, units in switched.items()}


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
    import warnings

    from keras_darn.layers import PrunableDense
    from keras_darn.rebuild import compile_like
    from keras_darn.rebuild import insert_layer

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
    from keras_darn.graph.nodes import FunctionalGraph

    readers = [node.operation for node in FunctionalGraph(new_model).consumers(layer.output)]
    if len(readers) != 1 or not isinstance(readers[0], keras.layers.Dense):
        raise ValueError(
            "`factorized=True` needs the auxiliary layer to feed exactly one Dense layer. "
            f"Received consumers: {[type(r).__name__ for r in readers]}"
        )
    reader, old_reader = readers[0], model.get_layer(readers[0].name)
    weights = weight_magnitude.effective_kernel(old_reader).astype("float64")
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
        reader.bias.assign(old_reader.bias)
    if getattr(old_reader, "unit_mask", None) is not None and hasattr(reader, "set_unit_mask"):
        reader.set_unit_mask(old_reader.get_unit_mask())

"""Units that connection pruning cuts off, and switching them off.

Connection pruning also removes whole units: a unit whose incoming
connections are all pruned outputs a constant, and one whose outgoing
connections are all pruned reaches nothing. `dead_units` lists both kinds,
`mask_disconnected_units` switches the second kind off (the first kind is
found by `keras_darn.shrink` itself), and `shrink` then returns a physically
smaller plain model computing the same function.
"""

import numpy as np
from keras import ops

from keras_darn.layers import connection_masks
from keras_darn.graph import UnitGraph
from keras_darn.graph import registry


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
        effective = connection_masks.effective_kernel(layer)
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
    for layer in connection_masks.kernel_layers(model):
        effective = connection_masks.effective_kernel(layer)
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

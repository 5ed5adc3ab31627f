"""Which resizable unit groups a pruning run scores, and which of their units are live."""

import numpy as np

from keras_darn.graph import unit_groups
from keras_darn.graph.nodes import leaf_layers
from keras_darn.graph.unit_axes import parts_of
from keras_darn.rebuild.unit_masks import masked_plan


def select_groups(model, order, layers=None, parts=False):
    """The resizable groups a `ProbedModel` probes, and the members outside the top level.

    Args:
        model: the model.
        order: its top-level nodes in call order.
        layers: names of layers whose groups are chosen; `None` chooses
            every group of the top-level graph (and, with `parts`, the
            others too).
        parts: also choose the groups that are not in the top-level graph:
            the parts of layers (attention heads) and the layers of nested
            models. Only criteria that read weights can score them.

    Returns:
        `([UnitGroup], {name: layer or UnitPart})`: the groups, each with
        `observable` set (whether all its members are in the top-level
        graph), and the members outside the top-level graph.

    Raises:
        ValueError: for a name in `layers` that is not a layer with
            resizable units, or a model with no group to probe.
    """
    groups = unit_groups(model, resizable_only=True)
    top = {node.operation.name for node in order}
    inner = {}
    if parts:
        for layer in leaf_layers(model):
            if layer.name not in top:
                inner.setdefault(layer.name, layer)
            for part in parts_of(layer).values():
                inner.setdefault(part.name, part)
    if layers is None:
        chosen = [g for g in groups if all(name in top or name in inner for name in g.layers)]
    else:
        if isinstance(layers, str):
            layers = [layers]
        chosen = []
        for name in layers:
            match = [g for g in groups if name in g.layers]
            if not match:
                names = [n for g in groups for n in g.layers]
                raise ValueError(
                    f"Received an invalid value for `layers`: '{name}' is not a layer "
                    f"with resizable units. Resizable layers: {names}. "
                    f"Received: layers={list(layers)}"
                )
            if match[0] not in chosen:
                chosen.append(match[0])
    if not chosen:
        raise ValueError(
            f"Model '{model.name}' has no resizable unit group in its top-level graph to score."
        )
    for group in chosen:
        group.observable = all(name in top for name in group.layers)
    return chosen, inner


def find_group(groups, key):
    """The group of `groups` with key (or member layer name) `key`.

    Raises:
        ValueError: when no group has a layer of that name.
    """
    for group in groups:
        if key == group.key or key in group.layers:
            return group
    raise ValueError(f"No scored group with layer '{key}'. Scored groups: "
                     f"{[g.key for g in groups]}. Received: {key!r}")


def live_units(model, groups, member_layer):
    """`{group key: bool array}`: the units not masked off.

    Masked units are those of the model's unit masks
    (`keras_darn.rebuild.unit_masks`, set during `fit`) and those switched
    off in `PrunableDense`/`PrunableConv2D`.

    Args:
        model: the model.
        groups: its `UnitGroup`s.
        member_layer: `member_layer(name)`, the member layer object of a name.
    """
    masked = masked_plan(model)
    live = {}
    for group in groups:
        alive = np.ones(group.size, dtype=bool)
        for name in group.layers:
            if name in masked:
                alive[np.isin(group.indices(name), masked[name])] = False
            layer = member_layer(name)
            if hasattr(layer, "get_unit_mask"):
                alive &= layer.get_unit_mask()[group.indices(name)] > 0
        live[group.key] = alive
    return live

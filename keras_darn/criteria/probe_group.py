"""`ProbeGroup`: one resizable unit group as the criteria see it, and how they are chosen."""

import numpy as np

from keras_darn.graph import unit_groups
from keras_darn.graph.nodes import leaf_layers
from keras_darn.graph.unit_axes import parts_of


class ProbeGroup:
    """One resizable unit group as the criteria see it.

    Attributes:
        key: name of the group's first layer; scores are keyed by it.
        unit_group: the `keras_darn.graph.UnitGroup`.
        size: number of units.
        layers: names of the member (producer) layers.
        observable: whether the units' outputs can be read and gated
            (`False` for units inside a layer, such as attention heads).
    """

    def __init__(self, unit_group, observable=True):
        self.unit_group = unit_group
        self.observable = observable
        self.key = unit_group.layers[0]
        self.size = unit_group.size
        self.layers = list(unit_group.layers)

    def layer_indices(self, units, layer_name=None):
        """Indices in `layer_name`'s own output of group units `units`."""
        name = layer_name or self.key
        return self.unit_group.indices(name)[np.asarray(units, dtype=np.int64)]

    def __repr__(self):
        return f"<ProbeGroup '{self.key}': {self.size} units of {self.layers}>"


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
        `([ProbeGroup], {name: layer or UnitPart})`, the second for the
        members outside the top-level graph.

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
    probe_groups = [ProbeGroup(g, observable=all(name in top for name in g.layers))
                    for g in chosen]
    return probe_groups, inner

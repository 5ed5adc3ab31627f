"""`ProbeGroup`: one resizable unit group as the criteria see it."""

import numpy as np


class ProbeGroup:
    """One resizable unit group as the criteria see it.

    Attributes:
        key: name of the group's first layer; scores are keyed by it.
        unit_group: the `keras_darn.graph.UnitGroup`.
        size: number of units.
        layers: names of the member (producer) layers.
    """

    def __init__(self, unit_group):
        self.unit_group = unit_group
        self.key = unit_group.layers[0]
        self.size = unit_group.size
        self.layers = list(unit_group.layers)

    def layer_indices(self, units, layer_name=None):
        """Indices in `layer_name`'s own output of group units `units`."""
        name = layer_name or self.key
        return self.unit_group.indices(name)[np.asarray(units, dtype=np.int64)]

    def __repr__(self):
        return f"<ProbeGroup '{self.key}': {self.size} units of {self.layers}>"

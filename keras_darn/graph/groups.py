"""Coupled unit groups: the units that must be removed or added together."""

import collections

import numpy as np

from keras_darn.graph.unit_graph import UnitGraph


class UnitGroup:
    """Units of one or more layers that change together.

    A unit of the group is one output unit of every member layer, e.g. the
    k-th filter of each convolution whose outputs are summed by an `Add`.

    Attributes:
        layers: names of the member layers, in trace order.
        key: the name of the first member layer; scores, plans and events
            name the group by it.
        size: number of units in the group.
        resizable: whether units of the group may be removed or added.
        reason: why the group is fixed (None when resizable).
        observable: whether the units' outputs can be read and gated by a
            forward pass over the top-level graph (`False` for units inside
            a layer, such as attention heads, and for layers of nested
            models; set by the criteria when they choose groups).
    """

    def __init__(self, layers, indices, reason):
        self.layers = list(layers)
        self.key = self.layers[0]
        self._indices = indices
        self.size = len(next(iter(indices.values())))
        self.reason = reason
        self.resizable = reason is None
        self.observable = True

    def indices(self, layer_name):
        """Output-unit indices of `layer_name` in this group, in group order."""
        return self._indices[layer_name]

    def layer_indices(self, units, layer_name=None):
        """Indices in `layer_name`'s own output (the key layer's by default) of group units `units`."""
        return self._indices[layer_name or self.key][np.asarray(units, dtype=np.int64)]

    def units(self):
        """One `{layer_name: index}` dict per unit of the group."""
        return [
            {name: int(self._indices[name][k]) for name in self.layers}
            for k in range(self.size)
        ]

    def __repr__(self):
        state = "resizable" if self.resizable else f"fixed: {self.reason}"
        return f"<UnitGroup {self.size} units of {self.layers} ({state})>"


def groups_of(graph):
    """The `UnitGroup`s of a traced `UnitGraph`, in trace order."""
    members = collections.defaultdict(dict)
    names = {}
    for key, channels in graph.spaces.items():
        layer = graph.layer_of_space(key)
        names[key] = layer.name
        for position, root in enumerate(graph.roots(channels)):
            # A grouped convolution's unit has a position in every group: the first names it.
            members[int(root)].setdefault(key, position)
    by_signature = collections.OrderedDict()
    for root, where in members.items():
        signature = (tuple(where), graph.fixed_reason(root))
        by_signature.setdefault(signature, []).append(where)
    groups = []
    for (keys, reason), units in by_signature.items():
        indices = {names[k]: np.array([u[k] for u in units], dtype=np.int64) for k in keys}
        groups.append(UnitGroup([names[k] for k in keys], indices, reason))
    return groups


def unit_groups(model, resizable_only=False):
    """Finds the coupled unit groups of a model.

    Channels joined by element-wise merges (`Add`, `Multiply`, ...) belong to
    one group; `Concatenate`, `Flatten`, pooling, normalization and
    activations carry units through. Units that reach a model input or output,
    or a layer that mixes channels, form fixed groups.

    Args:
        model: a functional or Sequential Keras model.
        resizable_only: leave out the fixed groups. Defaults to `False`.

    Returns:
        A list of `UnitGroup`.

    Raises:
        ValueError: for subclassed or unbuilt models.

    Example:

    ```python
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(16, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(16, 3, padding="same", name="b")(a)
    x = keras.layers.Add()([a, b])
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    darn.unit_groups(model)
    # [<UnitGroup 16 units of ['a', 'b'] (resizable)>, <UnitGroup 2 units of ...>]
    ```
    """
    groups = groups_of(UnitGraph(model))
    return [g for g in groups if g.resizable] if resizable_only else groups

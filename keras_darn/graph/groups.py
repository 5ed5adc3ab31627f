"""Coupled unit groups: the units that must be removed or added together."""

import collections

import numpy as np

from keras_darn.graph.nodes import leaf_layers
from keras_darn.graph.unit_axes import parts_of
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

    A method may attach what it knows of the group as one more attribute,
    named after the method.
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

"""Which Dense/Conv2D units the NodeDrop conditions cover.

A layer is covered when its inputs are bounded in [0, s] (see
`tensor_bounds`) and its units pass through an activation that is 0 for
every v <= 0 (`"nodedrop"`), or when it is followed by BatchNormalization and
such an activation (`"nodedrop_bn"`). The units of a covered layer are a
`UnitGroup` (the model's own group when the layer's units form one alone)
with a `nodedrop` attribute, a `NodeDropCover` saying how NodeDrop covers
them. Every other layer with weights is reported with the reason it is not
covered.
"""

import collections
import dataclasses

import keras
import numpy as np

from keras_darn.graph.groups import UnitGroup
from keras_darn.graph.groups import groups_of
from keras_darn.graph.nodes import FunctionalGraph
from keras_darn.graph.nodes import GraphError
from keras_darn.graph.output_bounds import is_linear
from keras_darn.graph.output_bounds import zeroes_nonpositive
from keras_darn.graph.unit_graph import UnitGraph
from keras_darn.methods.nodedrop.bounds import origin
from keras_darn.methods.nodedrop.bounds import tensor_bounds

KIND_NODEDROP = "nodedrop"
KIND_NODEDROP_BN = "nodedrop_bn"

# Layers that map every v <= 0 to a value <= 0 and keep the unit axis, so they
# may sit between a linear Dense/Conv2D and its zeroing activation.
_SIGN_PASS_THROUGH = tuple(
    getattr(keras.layers, name)
    for name in "Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D".split()
) + tuple(
    getattr(keras.layers, f"{kind}Pooling{d}D")
    for kind in ("Max", "Average")
    for d in (1, 2, 3)
)


@dataclasses.dataclass(frozen=True, eq=False)
class NodeDropCover:
    """How NodeDrop covers the units of one Dense/Conv2D layer.

    It is the `nodedrop` attribute of the layer's `UnitGroup` in
    `NodeDropEligibility.groups`.

    Attributes:
        layer: the Dense or Conv2D layer that computes the units; a dead unit
            is switched off with this layer's `set_unit_mask`.
        kind: `"nodedrop"` (eq. 1 on the layer's kernel and bias) or
            `"nodedrop_bn"` (eq. 6 on the following BatchNormalization).
        bn_layer: the BatchNormalization layer for `"nodedrop_bn"`, else
            `None`.
        activation_layer: the layer whose output is the units' activation
            (the layer itself when its own activation zeroes v <= 0).
        output: the Keras tensor of the units' activations.
        unit_axis: axis of `output` that indexes the units.
        input_bound: s such that every input of `layer` lies in [0, s]
            (1 behind the bounded activations; `None` for `"nodedrop_bn"`).
    """

    layer: keras.layers.Layer
    kind: str
    bn_layer: object
    activation_layer: keras.layers.Layer
    output: object
    unit_axis: int
    input_bound: object = None


@dataclasses.dataclass(frozen=True)
class IneligibleLayer:
    """A layer with weights that NodeDrop does not cover, and why."""

    name: str
    reason: str


@dataclasses.dataclass(frozen=True)
class NodeDropEligibility:
    """Result of `nodedrop_eligibility`: covered groups and skipped layers.

    Attributes:
        groups: list of `UnitGroup`, one per covered layer (named by its
            `key`, the layer's name), in graph order; the `nodedrop`
            attribute of each is its `NodeDropCover`.
        ineligible: list of `IneligibleLayer`.
    """

    groups: list
    ineligible: list

    def summary(self):
        """A human-readable, multi-line description."""
        lines = [f"NodeDrop covers {len(self.groups)} layer(s):"]
        for group in self.groups:
            cover = group.nodedrop
            via = f" via '{cover.bn_layer.name}'" if cover.bn_layer else ""
            lines.append(
                f"  {group.key}: {group.size} units, {cover.kind}{via}, "
                f"activation in '{cover.activation_layer.name}'"
            )
        if self.ineligible:
            lines.append(f"Not eligible ({len(self.ineligible)}):")
            lines.extend(f"  {i.name}: {i.reason}" for i in self.ineligible)
        return "\n".join(lines)


def nodedrop_eligibility(model, input_range=None):
    """Finds the units of `model` that the NodeDrop conditions apply to.

    A Dense or Conv2D layer is covered (kind `"nodedrop"`) when every input
    it receives is known to lie in [0, 1] and its units pass through an
    activation that is 0 for every v <= 0: its own (`relu`, `relu6`,
    `soft_clamped_relu`, `clamped_relu`) or, with a linear activation, the
    only consumer of its output (possibly after dropout or pooling). Inputs
    are known to lie in [0, 1] when they are model inputs declared so with
    `input_range`, or come from `SoftClampedReLU`, `ClampedReLU`, sigmoid,
    hard sigmoid or `ReLU(max_value<=1)`, through pooling, flatten, reshape,
    dropout, padding, cropping, concatenation and similar layers. A Dense or
    Conv2D layer with linear activation followed only by BatchNormalization
    (over the unit axis) and then such an activation is covered by
    NodeDrop-BN (kind `"nodedrop_bn"`), whatever its inputs.

    Args:
        model: a built Functional or Sequential `keras.Model`. Nested models
            are treated as opaque layers.
        input_range: the value range of the model inputs: `None` (unknown),
            a `(low, high)` pair for every input, or a dict from input name to
            `(low, high)`. An input with `low >= 0` counts as bounded by
            `high` (the paper's case is `(0, 1)`; for [0, s] the condition
            becomes `s * sum(max(w, 0)) + b <= 0`, exact but harder for the
            regularizer to reach: rescale inputs to [0, 1] instead). Defaults
            to `None`.

    Returns:
        A `NodeDropEligibility` with the covered groups (`UnitGroup`s with a
        `NodeDropCover` as their `nodedrop` attribute) and the layers with
        weights that are not covered, each with a reason.

    Raises:
        ValueError: if `model` is not a built Functional/Sequential model or
            `input_range` is malformed.

    Example:

    >>> inputs = keras.Input((28, 28, 1))
    >>> x = keras.layers.Conv2D(8, 3, activation=darn.layers.soft_clamped_relu)(inputs)
    >>> outputs = keras.layers.Dense(10, activation="softmax")(
    ...     keras.layers.Flatten()(x))
    >>> model = keras.Model(inputs, outputs)
    >>> [g.key for g in nodedrop_eligibility(model, (0, 1)).groups]
    ['conv2d']
    """
    graph = FunctionalGraph(model)
    bounded = tensor_bounds(graph, input_range)
    covers, ineligible, seen = [], [], set()
    for node in graph.nodes:
        layer = node.operation
        if id(layer) in seen or not isinstance(
            layer, (keras.layers.Dense, keras.layers.Conv2D)
        ):
            continue
        seen.add(id(layer))
        cover, reason = _cover_of(graph, node, bounded)
        if cover is None:
            ineligible.append(IneligibleLayer(layer.name, reason))
            continue
        covers.append(cover)
        if cover.bn_layer is not None:
            seen.add(id(cover.bn_layer))
    for layer in graph.layers:
        # Op nodes (`x * 2.0`, `keras.ops.relu(x)`) hold no weights.
        if id(layer) not in seen and getattr(layer, "weights", None):
            ineligible.append(IneligibleLayer(layer.name, _unsupported_reason(layer)))
    return NodeDropEligibility(_groups_of(model, covers), ineligible)


def _groups_of(model, covers):
    """The `UnitGroup` of each cover's layer, with the cover as its `nodedrop`.

    A layer whose units form one group of the model alone gets that group.
    NodeDrop switches a dead unit off in its own layer only (the unit
    outputs 0 whatever its partners do), so a layer whose units change
    together with other units (of other layers, or its own in a grouped
    convolution) gets a group of its own units, fixed for the reason the
    model's groups give.
    """
    if not covers:
        return []
    try:
        graph = UnitGraph(model)
    except GraphError as error:
        reason = f"the unit graph cannot trace the model: {error}"
        return [_layer_group(cover, reason) for cover in covers]
    model_groups = groups_of(graph)
    names = collections.Counter(layer.name for layer in graph.resizable_layers())
    return [_group_of(cover, model_groups, names[cover.layer.name]) for cover in covers]


def _group_of(cover, model_groups, namesakes):
    """The model's group of `cover.layer`'s units, if they form one alone."""
    name = cover.layer.name
    if namesakes > 1:
        return _layer_group(cover, f"a layer of a nested model is named '{name}' too")
    containing = [g for g in model_groups if name in g.layers]
    group = containing[0] if len(containing) == 1 else None
    if group is None or group.layers != [name] or not np.array_equal(
        group.indices(name), np.arange(_units(cover.layer))
    ):
        return _layer_group(cover, _fixed_reason(name, containing))
    group.nodedrop = cover
    return group


def _layer_group(cover, reason):
    """A group of the units of `cover.layer` alone, fixed for `reason`."""
    name = cover.layer.name
    group = UnitGroup([name], {name: np.arange(_units(cover.layer))}, reason)
    group.nodedrop = cover
    return group


def _fixed_reason(name, containing):
    """Why the units of layer `name`, spread over groups `containing`, are fixed."""
    fixed = [g.reason for g in containing if g.reason]
    if fixed:
        return fixed[0]
    partners = sorted({other for g in containing for other in g.layers} - {name})
    if partners:
        return f"its units change together with those of {partners}"
    return "its units are not one unit group of the model on their own"


def _units(layer):
    return layer.filters if hasattr(layer, "filters") else layer.units


def _cover_of(graph, node, bounded):
    """The `NodeDropCover` of a Dense/Conv2D node, or `(None, reason)`."""
    layer = node.operation
    if graph.calls(layer) != 1:
        return None, f"shared layer (called {graph.calls(layer)} times)"
    unit_axis = _unit_axis(layer)
    output = node.outputs[0]
    if zeroes_nonpositive(layer.activation):
        activation_layer = layer
    elif is_linear(layer.activation):
        bn_cover = _bn_cover(graph, layer, output, unit_axis)
        if bn_cover is not None:
            return bn_cover, None
        activation_layer, output, reason = _following_activation(
            graph, output
        )
        if activation_layer is None:
            return None, reason
    else:
        return None, (
            f"activation '{_activation_name(layer.activation)}' "
            "is not 0 for every v <= 0"
        )
    inputs = node.arguments.keras_tensors
    unbounded = [t for t in inputs if id(t) not in bounded]
    if unbounded:
        source = origin(unbounded[0])
        return None, (
            "inputs are not known to lie in [0, 1]: they come from "
            f"'{source.name}' ({type(source).__name__}); use SoftClampedReLU, "
            "ClampedReLU or sigmoid before it, or declare model inputs with "
            "input_range=(0, 1)"
        )
    input_bound = max(bounded[id(t)] for t in inputs)
    cover = NodeDropCover(
        layer, KIND_NODEDROP, None, activation_layer, output, unit_axis, input_bound
    )
    return cover, None


def _bn_cover(graph, layer, output, unit_axis):
    consumers = graph.consumers(output)
    if len(consumers) != 1:
        return None
    bn = consumers[0].operation
    if not isinstance(bn, keras.layers.BatchNormalization):
        return None
    rank = len(output.shape)
    if graph.calls(bn) != 1 or bn.axis % rank != unit_axis % rank:
        return None
    activation_layer, bn_output, _ = _following_activation(
        graph, consumers[0].outputs[0]
    )
    if activation_layer is None:
        return None
    return NodeDropCover(
        layer, KIND_NODEDROP_BN, bn, activation_layer, bn_output, unit_axis
    )


def _activation_name(activation):
    return getattr(activation, "__name__", None) or getattr(
        activation, "name", repr(activation)
    )


def _unit_axis(layer):
    if isinstance(layer, keras.layers.Conv2D) and layer.data_format == "channels_first":
        return 1
    return -1


def _following_activation(graph, tensor):
    """Follows a linear output to its zeroing activation.

    Returns `(activation_layer, activation_output, None)`, or
    `(None, None, reason)` when the output does not reach exactly one such
    activation (through dropout or pooling only).
    """
    while True:
        if graph.is_output(tensor):
            return None, None, "its linear output is a model output"
        consumers = graph.consumers(tensor)
        if len(consumers) != 1:
            names = [c.operation.name for c in consumers]
            return None, None, (
                f"its linear output goes to {len(consumers)} layers {names}; "
                "NodeDrop needs a single activation that is 0 for v <= 0"
            )
        op = consumers[0].operation
        if zeroes_nonpositive(op):
            return op, consumers[0].outputs[0], None
        if not isinstance(op, _SIGN_PASS_THROUGH):
            return None, None, (
                f"its linear output goes to '{op.name}' ({type(op).__name__}),"
                " not to an activation that is 0 for every v <= 0"
            )
        tensor = consumers[0].outputs[0]


def _unsupported_reason(layer):
    if isinstance(layer, keras.layers.BatchNormalization):
        return (
            "BatchNormalization that is not between a Dense/Conv2D with "
            "linear activation and an activation that is 0 for v <= 0 (over "
            "the unit axis): NodeDrop-BN needs Dense/Conv2D -> BN -> ReLU"
        )
    if isinstance(layer, keras.Model):
        return "nested model: NodeDrop does not look inside nested models"
    return (
        f"layer type '{type(layer).__name__}' is not supported: NodeDrop "
        "covers Dense and Conv2D units (and BatchNormalization before ReLU)"
    )

"""NodeDrop groups: which Dense/Conv2D units the NodeDrop conditions cover.

A layer is covered when its inputs are bounded in [0, s] (see
`nodedrop_bounds`) and its units pass through an activation that is 0 for
every v <= 0 (`"nodedrop"`), or when it is followed by BatchNormalization and
such an activation (`"nodedrop_bn"`). Every other layer with weights is
reported with the reason it is not covered.
"""

import dataclasses

import keras

from keras_darn import layers as darn_layers
from keras_darn.graph.nodes import FunctionalGraph
from keras_darn.graph.output_bounds import is_linear
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
class NodeDropGroup:
    """The units of one Dense/Conv2D layer that the NodeDrop condition covers.

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

    @property
    def name(self):
        return self.layer.name

    @property
    def units(self):
        layer = self.layer
        return layer.filters if hasattr(layer, "filters") else layer.units


@dataclasses.dataclass(frozen=True)
class IneligibleLayer:
    """A layer with weights that NodeDrop does not cover, and why."""

    name: str
    reason: str


@dataclasses.dataclass(frozen=True)
class NodeDropEligibility:
    """Result of `nodedrop_eligibility`: covered groups and skipped layers.

    Attributes:
        groups: list of `NodeDropGroup`, in graph order.
        ineligible: list of `IneligibleLayer`.
    """

    groups: list
    ineligible: list

    def summary(self):
        """A human-readable, multi-line description."""
        lines = [f"NodeDrop covers {len(self.groups)} layer(s):"]
        for group in self.groups:
            via = f" via '{group.bn_layer.name}'" if group.bn_layer else ""
            lines.append(
                f"  {group.name}: {group.units} units, {group.kind}{via}, "
                f"activation in '{group.activation_layer.name}'"
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
        A `NodeDropEligibility` with the covered groups and the layers with
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
    >>> [g.name for g in nodedrop_eligibility(model, (0, 1)).groups]
    ['conv2d']
    """
    graph = FunctionalGraph(model)
    bounded = tensor_bounds(graph, input_range)
    groups, ineligible, seen = [], [], set()
    for node in graph.nodes:
        layer = node.operation
        if id(layer) in seen or not isinstance(
            layer, (keras.layers.Dense, keras.layers.Conv2D)
        ):
            continue
        seen.add(id(layer))
        group, reason = _group_for(graph, node, bounded)
        if group is None:
            ineligible.append(IneligibleLayer(layer.name, reason))
            continue
        groups.append(group)
        if group.bn_layer is not None:
            seen.add(id(group.bn_layer))
    for layer in graph.layers:
        # Op nodes (`x * 2.0`, `keras.ops.relu(x)`) hold no weights.
        if id(layer) not in seen and getattr(layer, "weights", None):
            ineligible.append(IneligibleLayer(layer.name, _unsupported_reason(layer)))
    return NodeDropEligibility(groups, ineligible)


def _group_for(graph, node, bounded):
    """The `NodeDropGroup` of a Dense/Conv2D node, or `(None, reason)`."""
    layer = node.operation
    if graph.calls(layer) != 1:
        return None, f"shared layer (called {graph.calls(layer)} times)"
    unit_axis = _unit_axis(layer)
    output = node.outputs[0]
    if _zero_for_nonpositive(layer.activation):
        activation_layer = layer
    elif is_linear(layer.activation):
        bn_group = _bn_group(graph, layer, output, unit_axis)
        if bn_group is not None:
            return bn_group, None
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
    group = NodeDropGroup(
        layer, KIND_NODEDROP, None, activation_layer, output, unit_axis, input_bound
    )
    return group, None


def _bn_group(graph, layer, output, unit_axis):
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
    return NodeDropGroup(
        layer, KIND_NODEDROP_BN, bn, activation_layer, bn_output, unit_axis
    )


def _zero_for_nonpositive(activation):
    """Whether `activation(v)` is exactly 0 for every v <= 0."""
    if isinstance(activation, (darn_layers.SoftClampedReLU, darn_layers.ClampedReLU)):
        return True
    if isinstance(activation, keras.layers.ReLU):
        return activation.negative_slope == 0 and activation.threshold >= 0
    return activation in (
        keras.activations.relu,
        keras.activations.relu6,
        darn_layers.soft_clamped_relu,
        darn_layers.clamped_relu,
    )


def _zeroing_layer(layer):
    if not isinstance(layer, keras.layers.Layer):
        # An op node: `keras.ops.relu(x)` and `keras.ops.relu6(x)` zero v <= 0.
        return type(layer).__name__ in ("Relu", "Relu6") and type(
            layer
        ).__module__.startswith("keras.")
    if isinstance(layer, keras.layers.Activation):
        return _zero_for_nonpositive(layer.activation)
    return _zero_for_nonpositive(layer)


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
        if _zeroing_layer(op):
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

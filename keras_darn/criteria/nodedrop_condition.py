"""The NodeDrop condition: which units of a model are provably dead.

Jensen, Harer & Chin, *NodeDrop*: a unit with inputs x in [0, 1]^n, weights w,
bias b and an activation with sigma(v) = 0 for every v <= 0 outputs 0 for every
input once

    sum(max(w, 0)) + b <= 0                                              (eq. 1)

(the weaker `sum(|w|) + b <= 0` also works but finds fewer units). A unit
followed by BatchNormalization and such an activation outputs 0 on every
training batch of size m once `|gamma| * sqrt(m) + beta <= 0` (eq. 6).

This module finds, by walking the Keras functional graph, the units the
condition applies to (`nodedrop_eligibility`), evaluates it
(`nodedrop_dead_units`) and measures what a unit outputs at inference
(`measure_dropped_unit_outputs`), which is what NodeDrop-BN's guarantee does
not cover.

The conditions here are evaluated with a float rounding slack: a unit counts as
dead only if its margin stays <= 0 after adding a bound on the float32 rounding
error of the dot product (about n * 2**-24 * (sum|w| + |b|)), so "dead" means
an exact 0 in the computed output, not only in exact arithmetic.
"""

import dataclasses
import math

import keras
import numpy as np

from keras_darn.regularizers import validate_batch_size

KIND_NODEDROP = "nodedrop"
KIND_NODEDROP_BN = "nodedrop_bn"


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
        return _num_units(self.layer)


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


def _num_units(layer):
    return layer.filters if hasattr(layer, "filters") else layer.units


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
    graph = _FunctionalGraph(model)
    bounded = _unit_interval_tensors(graph, input_range)
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
        if id(layer) not in seen and layer.weights:
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
    elif _is_linear(layer.activation):
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
        source = _origin(unbounded[0])
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


def _float_slack(scale, terms, dtype):
    """Bound on the rounding error of a dot product with `terms` products."""
    unit_roundoff = np.finfo(np.dtype(dtype)).eps / 2
    n = terms + 2
    return n * unit_roundoff / (1 - n * unit_roundoff) * scale


def unit_margins(layer, weaker=False, input_bound=1.0):
    """The NodeDrop margin `s * sum(max(w, 0)) + b` of every unit of a layer.

    A unit with inputs in [0, s] (s = 1 in the paper) and an activation that
    is 0 for v <= 0 is dead when its margin is <= 0 (eq. 1). For a conv
    filter the sum runs over its whole kernel.

    Args:
        layer: a built Dense or Conv2D layer.
        weaker: use the weaker `s * sum(|w|) + b` instead. Defaults to
            `False`.
        input_bound: the bound s of the inputs. Defaults to `1.0`.

    Returns:
        A float64 NumPy array with one margin per unit.
    """
    kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), "float64")
    kernel = kernel.reshape(-1, kernel.shape[-1])
    weights = np.abs(kernel) if weaker else np.maximum(kernel, 0.0)
    margin = input_bound * weights.sum(axis=0)
    if layer.bias is not None:
        margin = margin + np.asarray(
            keras.ops.convert_to_numpy(layer.bias), "float64"
        )
    return margin


def bn_unit_margins(bn_layer, batch_size):
    """The NodeDrop-BN margin `|gamma| * sqrt(m) + beta` of every unit.

    Args:
        bn_layer: a built BatchNormalization layer (without `scale`, gamma is
            1; without `center`, beta is 0).
        batch_size: the training batch size m BN normalizes over.

    Returns:
        A float64 NumPy array with one margin per unit.
    """
    m = validate_batch_size(batch_size)
    size = bn_layer.moving_mean.shape[0]
    gamma = np.ones(size)
    beta = np.zeros(size)
    if bn_layer.gamma is not None:
        gamma = np.asarray(keras.ops.convert_to_numpy(bn_layer.gamma), "float64")
    if bn_layer.beta is not None:
        beta = np.asarray(keras.ops.convert_to_numpy(bn_layer.beta), "float64")
    return np.abs(gamma) * math.sqrt(m) + beta


def _dead_nodedrop(group, weaker):
    layer = group.layer
    margin = unit_margins(layer, weaker=weaker, input_bound=group.input_bound)
    kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), "float64")
    kernel = kernel.reshape(-1, kernel.shape[-1])
    scale = group.input_bound * np.abs(kernel).sum(axis=0)
    if layer.bias is not None:
        bias = np.asarray(keras.ops.convert_to_numpy(layer.bias), "float64")
        scale = scale + np.abs(bias)
    slack = _float_slack(scale, kernel.shape[0], layer.compute_dtype)
    return margin + slack <= 0.0


def _dead_nodedrop_bn(bn_layer, batch_size):
    margin = bn_unit_margins(bn_layer, batch_size)
    beta = np.zeros_like(margin)
    if bn_layer.beta is not None:
        beta = np.asarray(keras.ops.convert_to_numpy(bn_layer.beta), "float64")
    # BN's few float operations per value; 16 roundings is generous.
    slack = _float_slack(margin - beta + np.abs(beta), 14, bn_layer.compute_dtype)
    return margin + slack <= 0.0


def nodedrop_dead_units(
    model, input_range=None, batch_size=None, weaker=False, eligibility=None
):
    """Tells, for every unit NodeDrop covers, whether it is provably dead.

    For `"nodedrop"` groups a unit is dead when `sum(max(w, 0)) + b <= 0`
    (or `sum(|w|) + b <= 0` with `weaker=True`), for `"nodedrop_bn"` groups
    when `|gamma| * sqrt(batch_size) + beta <= 0` (dead on every training
    batch of at most `batch_size` examples; inference with moving statistics
    is not covered, see `measure_dropped_unit_outputs`). Both include a
    float32 rounding slack. The current unit masks are not consulted.

    Args:
        model: a built Functional or Sequential `keras.Model`.
        input_range: range of the model inputs, see `nodedrop_eligibility`.
            Defaults to `None`.
        batch_size: the training batch size m (per replica), required when
            the model has NodeDrop-BN units. Defaults to `None`.
        weaker: use the weaker `sum(|w|) + b <= 0`. Defaults to `False`.
        eligibility: a precomputed `nodedrop_eligibility(model, input_range)`
            to skip the graph walk. Defaults to `None`.

    Returns:
        A dict from layer name (the Dense/Conv2D layer computing the units)
        to a boolean NumPy array, `True` for a dead unit.

    Raises:
        ValueError: if the model has NodeDrop-BN units and `batch_size` is
            not a positive integer.

    Example:

    >>> dead = nodedrop_dead_units(model, input_range=(0, 1))
    >>> {name: int(mask.sum()) for name, mask in dead.items()}
    {'conv2d': 0}
    """
    if eligibility is None:
        eligibility = nodedrop_eligibility(model, input_range)
    dead = {}
    for group in eligibility.groups:
        if group.kind == KIND_NODEDROP_BN:
            if batch_size is None:
                raise ValueError(
                    f"Layer '{group.name}' is followed by BatchNormalization "
                    f"'{group.bn_layer.name}' and ReLU (NodeDrop-BN), whose "
                    "condition needs the training batch size m. Received: "
                    "batch_size=None"
                )
            dead[group.name] = _dead_nodedrop_bn(group.bn_layer, batch_size)
        else:
            dead[group.name] = _dead_nodedrop(group, weaker)
    return dead


def measure_dropped_unit_outputs(
    model, data, units=None, input_range=None, batch_size=None, eligibility=None
):
    """Largest inference-time activation of selected units, measured on data.

    Runs `model` in inference mode (`training=False`, so BatchNormalization
    uses its moving statistics) on `data` and returns, per unit, the largest
    |activation| it produced. Call it BEFORE masking units to learn what
    dropping them changes at inference: for `"nodedrop"` units the result is
    0 by construction, for `"nodedrop_bn"` units it may not be, because eq. 6
    bounds training-batch outputs only.

    Args:
        model: a built Functional or Sequential `keras.Model`.
        data: a batch of model inputs (array, or list/dict for several
            inputs). Keep it small: it is run in one call.
        units: dict from layer name to a boolean array of the units to
            measure. `None` measures the units `nodedrop_dead_units` reports.
            Defaults to `None`.
        input_range: range of the model inputs, see `nodedrop_eligibility`.
            Defaults to `None`.
        batch_size: training batch size m for NodeDrop-BN, see
            `nodedrop_dead_units`. Defaults to `None`.
        eligibility: a precomputed `nodedrop_eligibility`. Defaults to
            `None`.

    Returns:
        A dict from layer name to a float64 array of shape `(units,)`: the
        largest |activation| of each selected unit over `data`, NaN for
        units not selected.

    Example:

    >>> dead = nodedrop_dead_units(model, batch_size=128)
    >>> worst = measure_dropped_unit_outputs(model, x_val[:256], units=dead,
    ...                                      batch_size=128)
    """
    if eligibility is None:
        eligibility = nodedrop_eligibility(model, input_range)
    if units is None:
        units = nodedrop_dead_units(
            model, batch_size=batch_size, eligibility=eligibility
        )
    groups = [g for g in eligibility.groups if np.any(units.get(g.name, False))]
    result = {}
    if not groups:
        return result
    graph = _FunctionalGraph(model)
    inputs = graph.inputs[0] if len(graph.inputs) == 1 else graph.inputs
    probe = keras.Model(inputs, [g.output for g in groups])
    activations = probe(data, training=False)
    for group, values in zip(groups, activations):
        values = np.abs(np.asarray(keras.ops.convert_to_numpy(values), "float64"))
        values = np.moveaxis(values, group.unit_axis, -1)
        largest = values.reshape(-1, values.shape[-1]).max(axis=0)
        selected = np.asarray(units[group.name], dtype=bool)
        result[group.name] = np.where(selected, largest, np.nan)
    return result


# --- Walking the functional graph -------------------------------------------

_INPUT_BOUND_PASS_THROUGH = tuple(
    getattr(keras.layers, name)
    for name in (
        "MaxPooling1D MaxPooling2D MaxPooling3D AveragePooling1D "
        "AveragePooling2D AveragePooling3D GlobalMaxPooling1D "
        "GlobalMaxPooling2D GlobalMaxPooling3D GlobalAveragePooling1D "
        "GlobalAveragePooling2D GlobalAveragePooling3D Flatten Reshape Permute "
        "RepeatVector Cropping1D Cropping2D Cropping3D ZeroPadding1D "
        "ZeroPadding2D ZeroPadding3D UpSampling1D UpSampling2D UpSampling3D "
        "Concatenate Maximum Minimum Average Identity ActivityRegularization "
        "Masking"
    ).split()
    if hasattr(keras.layers, name)
)
_DROPOUTS = tuple(
    getattr(keras.layers, name)
    for name in "Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D".split()
)
# Layers whose output is `activation(...)` of their `activation` attribute.
_ACTIVATION_LAST = tuple(
    getattr(keras.layers, name)
    for name in (
        "Activation Dense EinsumDense Conv1D Conv2D Conv3D Conv1DTranspose "
        "Conv2DTranspose Conv3DTranspose DepthwiseConv1D DepthwiseConv2D "
        "SeparableConv1D SeparableConv2D"
    ).split()
    if hasattr(keras.layers, name)
)
# Layers that map every v <= 0 to a value <= 0 and keep the unit axis, so they
# may sit between a linear Dense/Conv2D and its zeroing activation.
_SIGN_PASS_THROUGH = _DROPOUTS + tuple(
    getattr(keras.layers, f"{kind}Pooling{d}D")
    for kind in ("Max", "Average")
    for d in (1, 2, 3)
)


class _FunctionalGraph:
    """The nodes of a Functional (or built Sequential) model, in graph order."""

    def __init__(self, model):
        function = model
        if isinstance(model, keras.Sequential):
            function = model._functional
            if function is None:
                raise ValueError(
                    f"Sequential model '{model.name}' has no graph yet: build "
                    "it with a `keras.Input` first."
                )
        if not isinstance(model, keras.Model) or not isinstance(
            function, keras.Function
        ):
            raise ValueError(
                "NodeDrop needs a Functional or Sequential Keras model "
                "(subclassed models have no graph to analyse). Received: "
                f"model of type {type(model).__name__}"
            )
        self.inputs = function.inputs
        self.outputs = function.outputs
        by_depth = function._nodes_by_depth
        self.nodes = [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]]
        self._consumers = {}
        self._calls = {}
        self.layers = []
        for node in self.nodes:
            for tensor in node.arguments.keras_tensors:
                self._consumers.setdefault(id(tensor), []).append(node)
            if node.is_input:
                continue
            op = node.operation
            if id(op) not in self._calls:
                self.layers.append(op)
            self._calls[id(op)] = self._calls.get(id(op), 0) + 1
        self._output_ids = {id(t) for t in self.outputs}

    def consumers(self, tensor):
        return self._consumers.get(id(tensor), [])

    def is_output(self, tensor):
        return id(tensor) in self._output_ids

    def calls(self, layer):
        return self._calls.get(id(layer), 0)


def _input_bounds(graph, input_range):
    """Upper bounds of the model inputs known to lie in [0, bound]."""
    names = [_input_name(t) for t in graph.inputs]
    if input_range is None:
        return {}
    if isinstance(input_range, dict):
        unknown = sorted(set(input_range) - set(names))
        if unknown:
            raise ValueError(
                f"Received an invalid value for `input_range`: no model input "
                f"named {unknown}. Model inputs: {names}. Received: "
                f"input_range={input_range}"
            )
        ranges = dict(input_range)
    else:
        ranges = {name: input_range for name in names}
    bounds = {}
    for name, value in ranges.items():
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            low = high = math.nan
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(
                "Received an invalid value for `input_range`, expected a "
                "(low, high) pair of finite numbers with low <= high, or a "
                f"dict of such pairs by input name. Received: "
                f"input_range={input_range!r}"
            )
        if low >= 0:
            bounds[name] = high
    return bounds


def _input_name(tensor):
    return tensor._keras_history[0].name


def _unit_interval_tensors(graph, input_range):
    """Maps id(tensor) -> s for tensors known to lie in [0, s].

    The NodeDrop condition is stated for inputs in [0, 1]; tracking the bound
    s lets it stay exact behind layers such as Dropout, which scales kept
    values by 1 / (1 - rate) during training (the condition becomes
    `s * sum(max(w, 0)) + b <= 0`).
    """
    input_bounds = _input_bounds(graph, input_range)
    bounds = {}
    for node in graph.nodes:
        if node.is_input:
            for tensor in node.outputs:
                if _input_name(tensor) in input_bounds:
                    bounds[id(tensor)] = input_bounds[_input_name(tensor)]
            continue
        inputs = node.arguments.keras_tensors
        known = [bounds.get(id(t)) for t in inputs]
        bound_in = None
        if known and all(b is not None for b in known):
            bound_in = max(known)
        bound = _output_bound(node.operation, bound_in, known)
        if bound is not None:
            for tensor in node.outputs:
                bounds[id(tensor)] = bound
    return bounds


def _output_bound(op, bound_in, known):
    """s such that `op`'s output lies in [0, s], or None if unknown."""
    from keras_darn import layers as darn_layers

    if isinstance(op, (darn_layers.SoftClampedReLU, darn_layers.ClampedReLU)):
        return 1.0
    if isinstance(op, keras.layers.ReLU):
        if op.negative_slope != 0:
            return None
        if op.max_value is not None:
            return float(op.max_value)
        return bound_in
    activation = getattr(op, "activation", None)
    if activation is not None and isinstance(op, _ACTIVATION_LAST):
        bound = _activation_bound(activation)
        if bound is not None:
            return bound
        if isinstance(op, keras.layers.Activation) and bound_in is not None:
            passes = _is_linear(activation) or activation is keras.activations.relu
            return bound_in if passes else None
        return None
    if bound_in is None:
        return None
    if isinstance(op, _INPUT_BOUND_PASS_THROUGH):
        return bound_in
    if isinstance(op, _DROPOUTS):
        return bound_in / (1.0 - op.rate)
    if isinstance(op, keras.layers.Add):
        return float(sum(known))
    if isinstance(op, keras.layers.Multiply):
        return float(np.prod(known))
    if isinstance(op, keras.layers.Rescaling):
        scale, offset = np.asarray(op.scale), np.asarray(op.offset)
        if scale.size == 1 and offset.size == 1 and scale >= 0 and offset >= 0:
            return float(scale * bound_in + offset)
    return None


def _activation_bound(activation):
    from keras_darn import layers as darn_layers

    if isinstance(activation, (darn_layers.SoftClampedReLU, darn_layers.ClampedReLU)):
        return 1.0
    if activation in (
        keras.activations.sigmoid,
        keras.activations.hard_sigmoid,
        keras.activations.softmax,
        darn_layers.soft_clamped_relu,
        darn_layers.clamped_relu,
    ):
        return 1.0
    if activation is keras.activations.relu6:
        return 6.0
    return None


def _zero_for_nonpositive(activation):
    """Whether `activation(v)` is exactly 0 for every v <= 0."""
    from keras_darn import layers as darn_layers

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
    if isinstance(layer, keras.layers.Activation):
        return _zero_for_nonpositive(layer.activation)
    return _zero_for_nonpositive(layer)


def _is_linear(activation):
    return activation is None or activation is keras.activations.linear


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


def _origin(tensor):
    """The layer a tensor comes from, looking through shape-only layers."""
    while True:
        op = tensor._keras_history[0]
        inputs = getattr(op, "_inbound_nodes", None) and op._inbound_nodes[
            tensor._keras_history[1]
        ].arguments.keras_tensors
        if not isinstance(op, _INPUT_BOUND_PASS_THROUGH + _DROPOUTS) or not inputs:
            return op
        tensor = inputs[0]


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

"""Which tensors of a functional graph are known to lie in [0, s].

NodeDrop's condition holds for units whose inputs are bounded in [0, s]. This
module propagates such bounds from declared model inputs and bounded
activations through shape-only, pooling, dropout and merge layers
(`tensor_bounds`), and names the layer an unbounded input comes from
(`origin`).
"""

import math

import keras
import numpy as np

from keras_darn import layers as darn_layers
from keras_darn.graph.nodes import producer_of

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
DROPOUTS = tuple(
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
    return producer_of(tensor)[0].name


def tensor_bounds(graph, input_range):
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
        inputs = node.arguments.keras_tensors if node is not None else []
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
            passes = is_linear(activation) or activation is keras.activations.relu
            return bound_in if passes else None
        return None
    if bound_in is None:
        return None
    if isinstance(op, _INPUT_BOUND_PASS_THROUGH):
        return bound_in
    if isinstance(op, DROPOUTS):
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


def is_linear(activation):
    """Whether `activation` is the identity (`None` or `linear`)."""
    return activation is None or activation is keras.activations.linear


def origin(tensor):
    """The layer a tensor comes from, looking through shape-only layers."""
    while True:
        op, node = producer_of(tensor)
        inputs = node.arguments.keras_tensors if node is not None else []
        if not isinstance(op, _INPUT_BOUND_PASS_THROUGH + DROPOUTS) or not inputs:
            return op
        tensor = inputs[0]

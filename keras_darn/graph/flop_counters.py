"""FLOP counters per layer type: the registry `count_flops` dispatches to.

A counter is a callable `counter(layer, input_shapes, output_shapes)` that
returns the FLOPs of one call of `layer`, per example. The counting
conventions are documented in `keras_darn.metrics.counts`. A layer type is
looked up along its class hierarchy, so subclasses use their base class's
counter unless they register their own
(`keras_darn.graph.register_layer(..., flops=...)`, which takes precedence).
"""

import contextlib
import math
import re
import warnings

import keras

from keras_darn.graph import registry

# Per-element cost of activation functions, keyed by function name.
ACTIVATION_FLOPS = {
    "linear": 0,
    "relu": 1,
    "relu6": 1,
    "threshold": 1,
    "hard_tanh": 1,
    "leaky_relu": 2,
    "hard_shrink": 2,
    "soft_shrink": 3,
    "sparse_plus": 3,
    "sparse_sigmoid": 3,
    "tanh": 1,
    "exponential": 1,
    "softplus": 3,
    "softsign": 3,
    "hard_sigmoid": 3,
    "hard_silu": 4,
    "hard_swish": 4,
    "sigmoid": 4,
    "log_sigmoid": 4,
    "elu": 4,
    "squareplus": 4,
    "tanh_shrink": 2,
    "celu": 5,
    "selu": 5,
    "silu": 5,
    "swish": 5,
    "gelu": 5,
    "mish": 5,
    "softmax": 5,
    "log_softmax": 5,
}

# Elementwise `keras.ops` operations, keyed by operation class name.
_ELEMENTWISE_OPS = set(
    "Add Subtract Multiply Divide TrueDivide Maximum Minimum Negative Absolute Abs Square "
    "Sqrt Exp Log Power Clip Where FloorDivide Mod Reciprocal Sign Round Floor Ceil Equal "
    "NotEqual Greater GreaterEqual Less LessEqual".split()
)
# `keras.ops` reductions: one accumulation per input element, as global pooling.
_REDUCTION_OPS = set("Mean Sum Max Min Amax Amin Prod Any All".split())
# `keras.ops` operations that only move data.
_DATA_MOVEMENT_OPS = set(
    "Reshape Transpose ExpandDims Squeeze Concatenate GetItem Stack Cast Flatten Ravel Tile "
    "Repeat BroadcastTo Slice StopGradient Copy Moveaxis".split()
)

_COUNTERS = {}
_builtins_registered = False


def register_activation_flops(name, flops):
    """Registers the FLOPs per element of an activation function, by name.

    Args:
        name: the activation's `__name__` (or its layer's snake-case name).
        flops: non-negative FLOPs per output element.

    Example:

    ```python
    register_activation_flops("my_swish", 5)
    ```
    """
    if isinstance(flops, bool) or not isinstance(flops, int) or flops < 0:
        raise ValueError(
            "Received an invalid value for `flops`, expected a non-negative integer. "
            f"Received: flops={flops!r}"
        )
    ACTIVATION_FLOPS[name] = flops


class UnknownDimension(Exception):
    pass


def elements_per_example(shape):
    """Number of elements per example (all dimensions but the batch one)."""
    dims = shape[1:]
    if any(d is None for d in dims):
        raise UnknownDimension(shape)
    return math.prod(dims)


def _channel_axis(layer):
    return 1 if getattr(layer, "data_format", None) == "channels_first" else -1


def _spatial_size(shape, layer):
    axis = _channel_axis(layer)
    return elements_per_example(shape) // shape[axis]


def activation_flops(activation, output_shape):
    if activation is None:
        return 0
    if isinstance(activation, keras.layers.Layer):
        return layer_flops(activation, [output_shape], [output_shape])
    name = getattr(activation, "__name__", type(activation).__name__)
    if name not in ACTIVATION_FLOPS:
        _warn_unknown(f"activation function '{name}'")
        return 0
    return ACTIVATION_FLOPS[name] * elements_per_example(output_shape)


def bias_flops(layer, output_shape):
    return elements_per_example(output_shape) if getattr(layer, "use_bias", False) else 0


def _dense_flops(layer, input_shapes, output_shapes):
    out = output_shapes[0]
    in_features = input_shapes[0][-1]
    positions = elements_per_example(out) // out[-1]
    macs = positions * in_features * out[-1]
    return 2 * macs + bias_flops(layer, out) + activation_flops(layer.activation, out)


def _conv_flops(layer, input_shapes, output_shapes):
    inp, out = input_shapes[0], output_shapes[0]
    in_channels = inp[_channel_axis(layer)]
    groups = getattr(layer, "groups", 1) or 1
    kernel = math.prod(layer.kernel_size)
    macs = elements_per_example(out) * kernel * in_channels // groups
    return 2 * macs + bias_flops(layer, out) + activation_flops(layer.activation, out)


def _depthwise_conv_flops(layer, input_shapes, output_shapes):
    out = output_shapes[0]
    macs = elements_per_example(out) * math.prod(layer.kernel_size)
    return 2 * macs + bias_flops(layer, out) + activation_flops(layer.activation, out)


def _separable_conv_flops(layer, input_shapes, output_shapes):
    inp, out = input_shapes[0], output_shapes[0]
    depthwise_channels = inp[_channel_axis(layer)] * layer.depth_multiplier
    positions = _spatial_size(out, layer)
    depthwise_macs = positions * depthwise_channels * math.prod(layer.kernel_size)
    pointwise_macs = elements_per_example(out) * depthwise_channels
    return (
        2 * (depthwise_macs + pointwise_macs)
        + bias_flops(layer, out)
        + activation_flops(layer.activation, out)
    )


def _conv_transpose_flops(layer, input_shapes, output_shapes):
    inp, out = input_shapes[0], output_shapes[0]
    out_channels = out[_channel_axis(layer)]
    macs = elements_per_example(inp) * math.prod(layer.kernel_size) * out_channels
    return 2 * macs + bias_flops(layer, out) + activation_flops(layer.activation, out)


def per_output_element(cost):
    """A FLOP counter of `cost` FLOPs per output element (for `register_layer`)."""

    def counter(layer, input_shapes, output_shapes):
        return cost * elements_per_example(output_shapes[0])

    return counter


def _free(layer, input_shapes, output_shapes):
    return 0


def _layer_normalization_flops(layer, input_shapes, output_shapes):
    if getattr(layer, "rms_scaling", False):
        per_element = 4
    else:
        per_element = 5 + int(bool(layer.scale)) + int(bool(layer.center))
    return per_element * elements_per_example(output_shapes[0])


def _pooling_flops(layer, input_shapes, output_shapes):
    return math.prod(layer.pool_size) * elements_per_example(output_shapes[0])


def _global_pooling_flops(layer, input_shapes, output_shapes):
    return elements_per_example(input_shapes[0])


def _merge_flops(layer, input_shapes, output_shapes):
    return (len(input_shapes) - 1) * elements_per_example(output_shapes[0])


def _average_flops(layer, input_shapes, output_shapes):
    return len(input_shapes) * elements_per_example(output_shapes[0])


def _activation_layer_flops(layer, input_shapes, output_shapes):
    return activation_flops(layer.activation, output_shapes[0])


def _relu_layer_flops(layer, input_shapes, output_shapes):
    per_element = 2 if getattr(layer, "negative_slope", 0) else 1
    return per_element * elements_per_example(output_shapes[0])


def _upsampling_flops(layer, input_shapes, output_shapes):
    if getattr(layer, "interpolation", "nearest") == "nearest":
        return 0
    spatial_dims = len(output_shapes[0]) - 2
    return 2 * 2**spatial_dims * elements_per_example(output_shapes[0])


def _register_builtins():
    global _builtins_registered
    if _builtins_registered:
        return
    _builtins_registered = True
    layers = keras.layers
    table = {
        _dense_flops: ["Dense"],
        _conv_flops: ["Conv1D", "Conv2D", "Conv3D"],
        _depthwise_conv_flops: ["DepthwiseConv1D", "DepthwiseConv2D"],
        _separable_conv_flops: ["SeparableConv1D", "SeparableConv2D"],
        _conv_transpose_flops: [
            "Conv1DTranspose",
            "Conv2DTranspose",
            "Conv3DTranspose",
        ],
        per_output_element(2): [
            "BatchNormalization",
            "Rescaling",
            "Normalization",
            "PReLU",
            "LeakyReLU",
        ],
        # Square, sum, scale by the root mean square; RMSNormalization then its own scale.
        per_output_element(3): ["UnitNormalization"],
        per_output_element(4): ["RMSNormalization"],
        per_output_element(4): ["ELU"],
        per_output_element(5): ["Softmax"],
        _layer_normalization_flops: [
            "LayerNormalization",
            "GroupNormalization",
        ],
        _pooling_flops: [
            "MaxPooling1D",
            "MaxPooling2D",
            "MaxPooling3D",
            "AveragePooling1D",
            "AveragePooling2D",
            "AveragePooling3D",
        ],
        _global_pooling_flops: [
            "GlobalMaxPooling1D",
            "GlobalMaxPooling2D",
            "GlobalMaxPooling3D",
            "GlobalAveragePooling1D",
            "GlobalAveragePooling2D",
            "GlobalAveragePooling3D",
        ],
        _merge_flops: ["Add", "Subtract", "Multiply", "Maximum", "Minimum"],
        _average_flops: ["Average"],
        _activation_layer_flops: ["Activation"],
        _relu_layer_flops: ["ReLU"],
        _upsampling_flops: ["UpSampling1D", "UpSampling2D", "UpSampling3D"],
        _free: [
            "InputLayer",
            "Concatenate",
            "Flatten",
            "Reshape",
            "Permute",
            "RepeatVector",
            "ZeroPadding1D",
            "ZeroPadding2D",
            "ZeroPadding3D",
            "Cropping1D",
            "Cropping2D",
            "Cropping3D",
            "Embedding",
            "Dropout",
            "SpatialDropout1D",
            "SpatialDropout2D",
            "SpatialDropout3D",
            "GaussianNoise",
            "GaussianDropout",
            "AlphaDropout",
            "Identity",
            "Masking",
            "ActivityRegularization",
        ],
    }
    for counter, names in table.items():
        for name in names:
            layer_class = getattr(layers, name, None)
            if layer_class is not None:
                _COUNTERS.setdefault(layer_class, counter)


def add_counter(counter, layer_class):
    """Adds a built-in counter for `layer_class` (and its subclasses)."""
    _COUNTERS[layer_class] = counter


_warned = None


@contextlib.contextmanager
def warn_once_per_type():
    """Within this context, an unknown layer type is warned about once."""
    global _warned
    _warned = set()
    try:
        yield
    finally:
        _warned = None


def _warn_unknown(what):
    if _warned is not None:
        if what in _warned:
            return
        _warned.add(what)
    warnings.warn(
        f"count_flops has no FLOP counter for {what}; counting 0 FLOPs for "
        "it. Register one with `keras_darn.graph.register_layer(..., flops=...)`.",
        stacklevel=2,
    )


def layer_flops(operation, input_shapes, output_shapes):
    """FLOPs of one call of `operation` (a layer or a `keras.ops` operation).

    Raises:
        UnknownDimension: If a shape needed has an unknown non-batch dimension.
    """
    _register_builtins()
    counter = registry.describe(operation).flops
    if counter is not None:
        return int(counter(operation, input_shapes, output_shapes))
    for cls in type(operation).__mro__:
        if cls in _COUNTERS:
            return int(_COUNTERS[cls](operation, input_shapes, output_shapes))
    if not isinstance(operation, keras.layers.Layer):
        # A `keras.ops` operation applied to symbolic tensors.
        name = type(operation).__name__
        if name in _ELEMENTWISE_OPS:
            return elements_per_example(output_shapes[0])
        if name in _REDUCTION_OPS:
            return elements_per_example(input_shapes[0])
        if name in _DATA_MOVEMENT_OPS:
            return 0
        snake_name = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        if snake_name in ACTIVATION_FLOPS:
            return ACTIVATION_FLOPS[snake_name] * elements_per_example(output_shapes[0])
        _warn_unknown(f"operation type '{name}'")
        return 0
    _warn_unknown(f"layer type '{type(operation).__name__}'")
    return 0

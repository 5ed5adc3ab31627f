"""How each layer type moves unit indices through a graph.

A handler tells the tracer, for one layer type:

- how the channels of its inputs become the channels of its outputs
  (`propagate`): a producer (`Dense`, `Conv2D`, ...) starts new units of its
  own, a pass-through layer (`BatchNormalization`, activations, pooling)
  carries them, a merge (`Add`, `Multiply`) couples its inputs, `Concatenate`
  joins ranges and `Flatten` spreads a channel over spatial positions;
- which axes of which weights index input or output units (`weight_axes`), so
  that the Rebuilder can slice or grow them;
- what the layer does to channels that hold a known constant (`constants`),
  so that `shrink` can remove units that are provably dead.

Register a handler for a custom layer type with
`keras_darn.graph.register_layer`; the registry is searched along the
layer's class hierarchy, so subclasses of `Dense` or `Conv2D` work unchanged.
"""

import keras
import numpy as np

from keras_darn.graph import grouped_conv
from keras_darn.graph.channels import Channels

# Kinds of weight axes.
IN = "in"  # indexed by the input channels of the layer.
OUT = "out"  # indexed by the layer's own output units.
IN_X_M = "in_x_m"  # input channel c with depth multiplier m: c * m + k.

_MIXING_ACTIVATIONS = ("softmax", "log_softmax")


def resolve_weight_axes(layer, weight_axes):
    """`[(variable, axes)]` for `{attribute or weight name: axes}`."""
    weights = getattr(layer, "weights", None) or []  # op nodes have none
    pairs = []
    for name, axes in weight_axes.items():
        variable = getattr(layer, name, None) if isinstance(name, str) else None
        if not any(variable is w for w in weights):
            named = [w for w in weights if w.name == name]
            if len(named) > 1:
                raise ValueError(
                    f"Layer '{layer.name}' has {len(named)} weights named '{name}'; its handler "
                    "must describe them by variable (override `variable_axes`)."
                )
            variable = named[0] if named else None
        if variable is not None:
            pairs.append((variable, axes))
    return pairs


def activation_name(layer):
    """The name of a layer's `activation` (or of an `Activation` layer)."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", type(activation).__name__)


class LayerHandler:
    """Base class: a layer that mixes channels; its units stay fixed."""

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        """Channels of the layer's outputs, from those of its inputs.

        Args:
            layer: the Keras layer.
            inputs: list of `Channels`, one per input tensor.
            input_shapes: the original input shapes (batch axis included).
            output_shapes: the original output shapes.
            trace: the running trace (`keras_darn.graph.unit_graph`), which
                allocates, couples and fixes units.

        Returns:
            A list of `Channels`, one per output tensor.
        """
        return self.fix_all(inputs, output_shapes, trace, self.fixed_reason(layer))

    @staticmethod
    def fix_all(inputs, output_shapes, trace, reason):
        """Fixes every input's units and returns fixed outputs, all for `reason`."""
        for channels in inputs:
            trace.fix(channels, reason)
        return [trace.fixed_channels(shape[-1], reason) for shape in output_shapes]

    def fixed_reason(self, layer):
        """Why the units around a layer this handler cannot resize are fixed."""
        return f"layer '{layer.name}' of type {type(layer).__name__} has no unit handler"

    #: Whether units added through this layer keep the model's function
    #: (False for `LayerNormalization`: new channels change its statistics).
    exact_growth = True

    def weight_axes(self, layer):
        """`{weight_name: {axis: kind}}` for the weights tied to units.

        A weight name is the layer's attribute holding the variable (or the
        variable's name, where the layer has one variable of that name).
        """
        return {}

    def variable_axes(self, layer):
        """`[(variable, {axis: kind})]` for the layer's weights tied to units.

        The Rebuilder matches a layer's variables to the new layer's by
        their order in `layer.weights`, and resizes each by its axis map.
        Handlers of layers that hold sublayers override this to combine
        their parts' maps; by default it resolves `weight_axes`.

        Raises:
            ValueError: if a name in `weight_axes` matches several variables.
        """
        return resolve_weight_axes(layer, self.weight_axes(layer))

    def planned_config(self, layer, config, plan):
        """Config of the layer at the widths of `plan` (a rebuild plan).

        `plan.width(space)` and `plan.channels(space)` give the new width
        and channel layout of a unit space ("out", "in", "in:<k>",
        "part:<name>"), or None where the plan does not know it.
        """
        width_arg = getattr(self, "width_arg", None)
        width = plan.width("out")
        if width_arg and width is not None:
            config[width_arg] = width
        inputs = plan.channels("in")
        if inputs is not None:
            config = self.adapt_config(layer, config, len(inputs))
        return config

    def finish_weights(self, layer, values, plan):
        """Last changes to the resized weights (a list in `layer.weights` order)."""
        return values

    def adapt_config(self, layer, config, input_width):
        """Config for the layer when its input has `input_width` channels."""
        return config

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        """Output constants per channel (NaN where not constant)."""
        return None


class ProducerHandler(LayerHandler):
    """A layer with weights that consumes input channels and makes its own.

    Args:
        width_arg: the constructor argument holding the number of units.
        weight_axes: `{weight_name: {axis: kind}}`.
        consumes_channels: whether the last input axis carries channels
            (False for `Embedding`, whose input holds integer ids).
        fold_weight: the kernel through which a constant input channel can be
            absorbed into the bias (its input axis is -2, its output axis
            -1), or None when only zero inputs can be removed exactly.
            Defaults to `None`.
    """

    def __init__(self, width_arg, weight_axes, consumes_channels=True, fold_weight=None):
        self.width_arg = width_arg
        self._weight_axes = weight_axes
        self.consumes_channels = consumes_channels
        self.fold_weight = fold_weight

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        if self.consumes_channels:
            trace.consume(layer, inputs[0])
        own = trace.space(layer, output_shapes[0][-1])
        if activation_name(layer) in _MIXING_ACTIVATIONS:
            trace.fix(own, f"layer '{layer.name}' applies {activation_name(layer)} across its units")
        return [own for _ in output_shapes]

    def weight_axes(self, layer):
        return self._weight_axes


class GroupedConvHandler(ProducerHandler):
    """`Conv1D`/`Conv2D`/`Conv3D`, grouped ones included (see
    `keras_darn.graph.grouped_conv`: depthwise-as-grouped convolutions pass
    units like `DepthwiseConv2D`, others change every group evenly)."""

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        if grouped_conv.groups_of(layer) == 1:
            return super().propagate(layer, inputs, input_shapes, output_shapes, trace)

        def producer(layer, inputs, output_shapes, trace):
            return super(GroupedConvHandler, self).propagate(
                layer, inputs, input_shapes, output_shapes, trace
            )

        return grouped_conv.propagate(layer, inputs, output_shapes, trace, producer)

    def weight_axes(self, layer):
        if grouped_conv.groups_of(layer) == 1:
            return self._weight_axes
        return grouped_conv.weight_axes(layer, self._weight_axes)

    def adapt_config(self, layer, config, input_width):
        return grouped_conv.adapt_config(layer, config, input_width)

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        if not grouped_conv.is_depthwise(layer):
            return None
        bias = keras.ops.convert_to_numpy(layer.bias) if layer.use_bias else None
        return grouped_conv.constants(
            layer, input_constants[0], keras.ops.convert_to_numpy(layer.kernel), bias,
            lambda v: keras.ops.convert_to_numpy(layer.activation(v)),
        )


class PassThroughHandler(LayerHandler):
    """Channel `c` in, channel `c` out (normalization, activations, pooling).

    Args:
        weight_axes: `{weight_name: {axis: IN}}` for per-channel weights.
        constant_rule: how a constant channel comes out: "identity" (pooling,
            upsampling, cropping), "zero_only" (zero padding keeps only 0
            constant), "call" (evaluate the layer elementwise) or "none".
    """

    def __init__(self, weight_axes=None, constant_rule="call"):
        self._weight_axes = weight_axes or {}
        self.constant_rule = constant_rule

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        if activation_name(layer) in _MIXING_ACTIVATIONS:
            return LayerHandler.propagate(self, layer, inputs, input_shapes, output_shapes, trace)
        return [inputs[0] for _ in output_shapes]

    def weight_axes(self, layer):
        return self._weight_axes

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        constant = input_constants[0]
        if self.constant_rule == "identity":
            return constant
        if self.constant_rule == "zero_only":
            return np.where(constant == 0, 0.0, np.nan)
        if self.constant_rule == "none":
            return np.full_like(constant, np.nan)
        known = ~np.isnan(constant)
        if not known.any():
            return constant
        rank = len(input_shapes[0])
        probe = np.where(known, constant, 0.0).astype("float32")
        probe = probe.reshape((1,) * (rank - 1) + (len(constant),))
        out = keras.ops.convert_to_numpy(layer(probe, training=False)).reshape(-1)
        return np.where(known, out, np.nan)


class NormalizationHandler(PassThroughHandler):
    """`BatchNormalization`/`LayerNormalization` over the channel axis."""

    def __init__(self, weight_names, constant_rule):
        super().__init__({name: {0: IN} for name in weight_names}, constant_rule)

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        axis = layer.axis
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        rank = len(input_shapes[0])
        if [a % rank for a in axes] != [rank - 1]:
            return LayerHandler.propagate(self, layer, inputs, input_shapes, output_shapes, trace)
        return super().propagate(layer, inputs, input_shapes, output_shapes, trace)


class DepthwiseHandler(PassThroughHandler):
    """`DepthwiseConv2D`/`DepthwiseConv1D`: per-channel kernels."""

    def __init__(self):
        super().__init__({"kernel": {-2: IN}, "bias": {0: IN_X_M}})

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        multiplier = layer.depth_multiplier
        out = inputs[0] if multiplier == 1 else inputs[0].repeat(multiplier)
        return [out]

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        constant = np.repeat(input_constants[0], layer.depth_multiplier)
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        weight_sum = kernel.reshape(-1, kernel.shape[-2] * kernel.shape[-1]).sum(0)
        out = constant * weight_sum
        if layer.use_bias:
            out = out + keras.ops.convert_to_numpy(layer.bias)
        if layer.padding != "valid":
            out = np.where(constant == 0, out, np.nan)
        return out


class MergeHandler(LayerHandler):
    """Element-wise merges: all inputs' channels become the same units."""

    def __init__(self, combine):
        self.combine = combine

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        width = max(len(c) for c in inputs)
        full = [c for c in inputs if len(c) == width]
        for other in full[1:]:
            trace.couple(full[0], other, layer)
        for partial in inputs:
            if len(partial) != width:
                trace.fix(partial, f"layer '{layer.name}' broadcasts a {len(partial)}-channel input")
        return [full[0]]

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        width = max(len(c) for c in input_constants)
        stacked = np.stack([np.broadcast_to(c, (width,)) for c in input_constants])
        return self.combine(stacked)


def product(stacked):
    product = np.prod(stacked, axis=0)
    any_zero = np.any(stacked == 0, axis=0)
    return np.where(any_zero, 0.0, product)


class ConcatenateHandler(LayerHandler):
    """`Concatenate` on the channel axis offsets index ranges."""

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        rank = len(output_shapes[0])
        if layer.axis % rank != rank - 1:
            for other in inputs[1:]:
                trace.couple(inputs[0], other, layer)
            return [inputs[0]]
        old_widths = [shape[-1] for shape in input_shapes]
        return [Channels.concatenate(inputs, old_widths)]

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        rank = len(input_shapes[0])
        if layer.axis % rank != rank - 1:
            stacked = np.stack(input_constants)
            return np.where(np.all(stacked == stacked[0], axis=0), stacked[0], np.nan)
        return np.concatenate(input_constants)


class FlattenHandler(LayerHandler):
    """`Flatten` maps channel `c` at position `p` to `p * channels + c`."""

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        shape = input_shapes[0]
        if len(shape) <= 2:
            return [inputs[0]]
        if getattr(layer, "data_format", "channels_last") == "channels_first":
            return LayerHandler.propagate(self, layer, inputs, input_shapes, output_shapes, trace)
        positions = int(np.prod(shape[1:-1]))
        return [inputs[0].tile(positions, shape[-1])]

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        shape = input_shapes[0]
        positions = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
        return np.tile(input_constants[0], positions)


class ReshapeHandler(LayerHandler):
    """`Reshape` keeping the channel axis passes units; others fix them."""

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        in_shape, out_shape = input_shapes[0], output_shapes[0]
        if in_shape[-1] == out_shape[-1]:
            return [inputs[0]]
        if len(out_shape) == 2 and len(in_shape) > 2:
            positions = int(np.prod(in_shape[1:-1]))
            return [inputs[0].tile(positions, in_shape[-1])]
        reason = (
            f"layer '{layer.name}' (Reshape {tuple(in_shape[1:])} -> "
            f"{tuple(out_shape[1:])}) mixes the channel axis"
        )
        for channels in inputs:
            trace.fix(channels, reason)
        return [trace.fixed_channels(out_shape[-1], reason)]

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        in_shape, out_shape = input_shapes[0], output_shapes[0]
        if in_shape[-1] == out_shape[-1]:
            return input_constants[0]
        if len(out_shape) == 2 and len(in_shape) > 2:
            return np.tile(input_constants[0], int(np.prod(in_shape[1:-1])))
        return np.full(out_shape[-1], np.nan)


    def adapt_config(self, layer, config, input_width):
        target = list(config["target_shape"])
        if layer.input.shape[-1] == target[-1]:
            target[-1] = input_width
            config = {**config, "target_shape": tuple(target)}
        return config

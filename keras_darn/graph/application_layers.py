"""Unit handlers of `GroupNormalization` and of the custom layers that
`keras.applications` architectures are built with (registered on import).

- `LayerScale` (ConvNeXt): `x * gamma`, one scale per channel; units pass
  through, `gamma` follows them and `projection_dim` the width.
- `CustomScaleLayer` (InceptionResNetV2): `x + r * scale` of two tensors;
  their units are coupled like `Add`'s.
- `GroupNormalization`: statistics are taken over groups of channels, so a
  unit is one channel position of every group (removed from every group at
  once, `groups` kept); with one channel per group (`groups == channels`)
  units pass through as in `BatchNormalization` and `groups` follows the
  width. Like `LayerNormalization`, removing or adding a channel of a group
  that holds several changes its statistics: it is not function-preserving.
"""

import keras
import numpy as np

from keras_darn.graph import grouped_conv
from keras_darn.graph import nodes
from keras_darn.graph.handlers import IN
from keras_darn.graph.handlers import LayerHandler
from keras_darn.graph.handlers import MergeHandler
from keras_darn.graph.handlers import PassThroughHandler
from keras_darn.graph.registry import register_layer


class LayerScaleHandler(PassThroughHandler):
    """`LayerScale`: per-channel `gamma`; `projection_dim` follows the width."""

    def __init__(self):
        super().__init__({"gamma": {0: IN}}, constant_rule="call")

    def adapt_config(self, layer, config, input_width):
        return {**config, "projection_dim": int(input_width)}


class ScaledSumHandler(MergeHandler):
    """`CustomScaleLayer`: `inputs[0] + inputs[1] * scale`."""

    def __init__(self):
        super().__init__(combine=None)

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        first, second = (np.asarray(c, dtype=np.float64) for c in input_constants[:2])
        return first + second * float(layer.scale)


class GroupNormalizationHandler(LayerHandler):
    """`GroupNormalization` over the channel axis (see the module docstring)."""

    exact_growth = False

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        rank = len(input_shapes[0])
        width = input_shapes[0][-1]
        if layer.axis % rank != rank - 1:
            return LayerHandler.propagate(self, layer, inputs, input_shapes, output_shapes, trace)
        groups = int(layer.groups)
        if 1 < groups < width:
            grouped_conv.couple_groups(
                inputs[0], groups, width // groups, layer, trace,
                what="group normalization",
            )
        return [inputs[0]]

    def weight_axes(self, layer):
        return {"gamma": {0: IN}, "beta": {0: IN}}

    def adapt_config(self, layer, config, input_width):
        shape = nodes.first_input_shape(layer)
        width = None if not shape else shape[layer.axis]
        if width is not None and int(layer.groups) == int(width):
            config = {**config, "groups": int(input_width)}
        return config

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        return np.full(len(input_constants[0]), np.nan)


def _application_layer(module, name):
    """A custom layer class of `keras.applications`, or None where absent."""
    try:
        source = __import__(f"keras.src.applications.{module}", fromlist=[name])
    except ImportError:
        return None
    return getattr(source, name, None)


def _register():
    register_layer(keras.layers.GroupNormalization, handler=GroupNormalizationHandler())
    layer_scale = _application_layer("convnext", "LayerScale")
    if layer_scale is not None:
        register_layer(layer_scale, handler=LayerScaleHandler(), flops=_per_element)
    custom_scale = _application_layer("inception_resnet_v2", "CustomScaleLayer")
    if custom_scale is not None:
        register_layer(custom_scale, handler=ScaledSumHandler(), flops=_scaled_sum_flops)


def _per_element(layer, input_shapes, output_shapes):
    return int(np.prod(output_shapes[0][1:]))


def _scaled_sum_flops(layer, input_shapes, output_shapes):
    return 2 * int(np.prod(output_shapes[0][1:]))


_register()

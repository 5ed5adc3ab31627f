"""The trace of planned widths through a graph.

Run by `keras_darn.graph.unit_graph.walk` with the same handlers as the
analysis, it records the channel layout every layer of the new model reads,
and checks that coupled layers still agree.
"""

import warnings

import numpy as np

from keras_darn.graph import registry
from keras_darn.graph.channels import Channels
from keras_darn.graph.unit_graph import GraphError


class LayoutTrace:
    """The trace of planned widths: records every layer's new inputs."""

    def __init__(self, new_spaces):
        self.new_spaces = new_spaces
        self.inputs = {}
        self.layers = {}
        self.model_inputs = {}

    def enter_model(self, model, arguments):
        self.model_inputs.setdefault(id(model), arguments)

    def visit(self, layer, node, arguments, prefix):
        handler = registry.get_handler(layer)
        self.layers[id(layer)] = layer
        if arguments:
            self.inputs.setdefault(id(layer), list(arguments))
        in_shapes = [tuple(t.shape) for t in node.input_tensors]
        out_shapes = [tuple(t.shape) for t in node.outputs]
        return handler.propagate(layer, arguments, in_shapes, out_shapes, self)

    def space(self, layer, width):
        return self.new_spaces[id(layer)]

    def consume(self, layer, channels):
        pass

    def couple(self, first, second, layer):
        new_first = first.origin < 0
        if not (
            np.array_equal(first.origin, second.origin)
            and np.array_equal(first.ids[new_first], second.ids[new_first])
        ):
            raise GraphError(
                f"The plan would join different units at layer '{layer.name}'; the coupled "
                "layers' units cannot be laid out consistently. Add units to another layer of "
                "the group."
            )

    def fix(self, channels, reason):
        pass

    def fixed_channels(self, width, reason):
        return Channels(np.full(width, -1))


def warn_inexact_growth(layout):
    """Warns where new units enter a layer whose function they change."""
    for key, layer in layout.layers.items():
        if registry.get_handler(layer).exact_growth:
            continue
        inputs = layout.inputs.get(key) or []
        if any((channels.origin < 0).any() for channels in inputs):
            warnings.warn(
                f"Units added before layer '{layer.name}' ({type(layer).__name__}) change its "
                "output: it normalizes over its channels, so new channels shift its statistics. "
                "The grown model does not compute the same function.",
                stacklevel=3,
            )

"""Unit handlers of recurrent layers and of the wrappers around layers.

- `RecurrentHandler`: `LSTM`, `GRU`, `SimpleRNN`. A unit is one hidden unit:
  its column in every gate of the input kernel, the recurrent kernel and
  the bias (the gates `[i, f, c, o]` of an `LSTM`, `[z, r, h]` of a `GRU`
  are sliced together), and its row of the recurrent kernel, through which
  its state feeds every unit's gates at the next step. Added units get
  random incoming and zero outgoing weights (recurrent row included), so
  the other units and the layers after see the same values.
- `BidirectionalHandler`: the forward and backward layers are the
  composite's parts. With `merge_mode="concat"` (or None) they are separate
  unit spaces (the wrapper's own units are the forward layer's, its part
  `"<name>/backward"` the backward layer's, which lands after the forward
  units in the concatenation), which must keep the same width (Keras derives
  the wrapper's output shape from the forward layer); with "sum", "ave" or
  "mul" a forward unit and the backward unit it is merged with are one unit.
- `WrapperHandler`: `TimeDistributed` and wrappers like it: the wrapped
  layer's handler, on the inner shapes.
"""

import keras

from keras_darn.graph import composite
from keras_darn.graph.channels import Channels
from keras_darn.graph.handlers import LayerHandler
from keras_darn.graph.registry import register_layer
from keras_darn.graph.unit_axes import OWN
from keras_darn.graph.unit_axes import UnitAxis


class RecurrentHandler(LayerHandler):
    """`LSTM`/`GRU`/`SimpleRNN` hidden units (see the module docstring)."""

    width_arg = "units"

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        reason = self._fixed_reason(layer, inputs, output_shapes)
        if reason:
            return self.fix_all(inputs, output_shapes, trace, reason)
        trace.consume(layer, inputs[0])
        own = trace.space(layer, layer.units)
        return [own for _ in output_shapes]

    def _fixed_reason(self, layer, inputs, output_shapes):
        if len(inputs) != 1:
            return (
                f"layer '{layer.name}' is called with initial states or a mask tensor, "
                "which keras_darn does not resize"
            )
        if getattr(layer, "stateful", False):
            return f"layer '{layer.name}' is stateful; its stored states keep their width"
        if any(shape[-1] != layer.units for shape in output_shapes):
            return f"layer '{layer.name}' has outputs that are not {layer.units} units wide"
        return None

    def variable_axes(self, layer):
        cell = layer.cell
        gates = int(cell.kernel.shape[-1]) // int(cell.units)
        out = UnitAxis(OWN, blocks=gates)
        pairs = [
            (cell.kernel, {0: "in", 1: out}),
            (cell.recurrent_kernel, {0: UnitAxis(OWN, role="outgoing"), 1: out}),
        ]
        bias = getattr(cell, "bias", None)
        if bias is not None:
            pairs.append((bias, {len(bias.shape) - 1: out}))
        return pairs


_COUPLED_MERGES = ("sum", "ave", "mul")


class BidirectionalHandler(LayerHandler):
    """`Bidirectional`: forward and backward layers (see the module docstring)."""

    def _spaces(self, layer):
        backward = OWN if layer.merge_mode in _COUPLED_MERGES else "part:backward"
        return {OWN: OWN, "in": "in"}, {OWN: backward, "in": "in"}

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        if len(inputs) != 1:
            return self._fixed(layer, inputs, output_shapes, trace, "is called with several tensors")
        forward, backward = layer.forward_layer, layer.backward_layer
        merged = 2 if layer.merge_mode is None else 1
        states = (len(output_shapes) - merged) // 2
        results = []
        for sublayer, spaces in zip((forward, backward), self._spaces(layer)):
            width = getattr(sublayer, "units", None)
            if width is None:
                return self._fixed(layer, inputs, output_shapes, trace, "wraps a layer without units")
            shapes = [tuple(output_shapes[0][:-1]) + (width,)]
            shapes += [(output_shapes[0][0], width)] * states
            results.append(composite.run_sublayer(
                sublayer, trace, layer, spaces, inputs, input_shapes, shapes
            ))
        ahead, back = results
        if layer.merge_mode == "concat":
            outputs = [Channels.concatenate([ahead[0], back[0]], [forward.units, backward.units])]
        elif layer.merge_mode is None:
            outputs = [ahead[0], back[0]]
        else:
            outputs = [ahead[0]]
        return outputs + ahead[1:] + back[1:]

    def _fixed(self, layer, inputs, output_shapes, trace, why):
        return self.fix_all(inputs, output_shapes, trace, f"layer '{layer.name}' (Bidirectional) {why}")

    def variable_axes(self, layer):
        forward_spaces, backward_spaces = self._spaces(layer)
        return composite.renamed_axes(layer.forward_layer, forward_spaces) + composite.renamed_axes(
            layer.backward_layer, backward_spaces
        )

    def planned_config(self, layer, config, plan):
        forward_width = plan.width(OWN)
        backward_width = plan.width(self._spaces(layer)[1][OWN])
        if None not in (forward_width, backward_width) and forward_width != backward_width:
            raise ValueError(
                f"The plan gives layer '{layer.name}' (Bidirectional) {forward_width} forward and "
                f"{backward_width} backward units; Keras needs as many of each. Change "
                f"'{layer.name}' and '{layer.name}/backward' by the same number of units."
            )
        for key, sublayer, spaces in zip(
            ("layer", "backward_layer"), (layer.forward_layer, layer.backward_layer), self._spaces(layer)
        ):
            if key in config:
                config[key] = composite.serialized_sublayer(config[key], sublayer, plan, spaces)
        return config


class WrapperHandler(LayerHandler):
    """A wrapper applying `getattr(layer, attribute)` to every time step."""

    def __init__(self, attribute="layer", config_key="layer"):
        self.attribute = attribute
        self.config_key = config_key

    _SPACES = {OWN: OWN, "in": "in"}

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        inner = getattr(layer, self.attribute)
        drop_time = [tuple(s[:1]) + tuple(s[2:]) for s in input_shapes]
        out_shapes = [tuple(s[:1]) + tuple(s[2:]) for s in output_shapes]
        return composite.run_sublayer(inner, trace, layer, self._SPACES, inputs, drop_time, out_shapes)

    def variable_axes(self, layer):
        return composite.renamed_axes(getattr(layer, self.attribute), self._SPACES)

    def planned_config(self, layer, config, plan):
        config[self.config_key] = composite.serialized_sublayer(
            config[self.config_key], getattr(layer, self.attribute), plan, self._SPACES
        )
        return config


for _layer_class in (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN):
    register_layer(_layer_class, handler=RecurrentHandler())
register_layer(keras.layers.Bidirectional, handler=BidirectionalHandler())
register_layer(keras.layers.TimeDistributed, handler=WrapperHandler())

"""Unit handlers of attention and of the normalization in a residual stream.

`MultiHeadAttention` has four unit spaces:

- its own units: the output projection's output channels (in a transformer
  block they join the residual stream through an `Add`);
- `"<name>/heads"`: whole heads. A head is its slice of the query, key and
  value kernels and biases and its rows of the output projection; a new
  head gets random query/key/value weights and zero output rows, so the
  outputs stay the same;
- `"<name>/key_dim"`: the query/key features shared by every head. A new
  feature gets a random query column and a zero key column; the query
  weights are rescaled by `sqrt(new key_dim / old key_dim)`, so the scaled
  dot products (divided by `sqrt(key_dim)`) keep their values;
- `"<name>/value_dim"`: the value features of every head (random value
  columns, zero output-projection rows when added).

`GroupedQueryAttention` has `"<name>/heads"`: one key/value head with the
query heads of its group; its output carries its query's channels.

Their query and value (key) inputs are consumers like a `Dense` kernel's input.
A `query_mask` or `value_mask` (a tensor of a lower rank than the query,
such as a padding mask) carries no channels. Layers called with a separate
key or a full attention mask, with `return_attention_scores`, a gate or a
multi-axis output shape keep their units fixed.

`LayerNormalization` passes its channels through, and may be resized where
it normalizes a residual stream that is pruned (its weights are sliced), but
this does not keep the function: removing or adding a channel changes the
mean and variance it divides by. The Rebuilder warns when units are added
before one; no exactness is claimed there.
"""

import keras
import numpy as np

from keras_darn.graph.handlers import LayerHandler
from keras_darn.graph.handlers import NormalizationHandler
from keras_darn.graph.registry import register_layer
from keras_darn.graph.unit_axes import OWN
from keras_darn.graph.unit_axes import UnitAxis
from keras_darn.graph.unit_axes import part_of

_HEADS, _KEY, _VALUE = "part:heads", "part:key_dim", "part:value_dim"


def _dense(layer, role):
    """The `EinsumDense` projection of a `MultiHeadAttention` ("query", ...)."""
    # Keras keeps the projections as `_query_dense`, ... without a public name.
    return getattr(layer, f"_{role}_dense")



def _consume_query_and_value(layer, inputs, trace):
    """Records that an attention layer reads its query (and a separate value
    input, if any) on their channels; returns the query."""
    query = inputs[0]
    value = inputs[1] if len(inputs) > 1 else query
    trace.consume(layer, query)
    if value is not query:
        trace.consume(part_of(layer, "value_input"), value)
    return query

class MultiHeadAttentionHandler(LayerHandler):
    """`MultiHeadAttention` heads, key/value features and outputs (see module)."""

    def _fixed_reason(self, layer, inputs, output_shapes):
        if len(inputs) > 2:
            return (f"layer '{layer.name}' is called with a separate key or an attention "
                    "mask tensor")
        if len(output_shapes) != 1:
            return f"layer '{layer.name}' returns its attention scores"
        if getattr(layer, "_use_gate", False) or getattr(layer, "use_gate", False):
            return f"layer '{layer.name}' uses a gate"
        shape = layer.get_config().get("output_shape")
        if isinstance(shape, (list, tuple)) and len(shape) != 1:
            return f"layer '{layer.name}' has a multi-axis output shape {tuple(shape)}"
        return None

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        # Padding masks ([batch, steps], below the query's rank) hold no channels.
        rank = len(input_shapes[0])
        for channels, shape in zip(inputs, input_shapes):
            if len(shape) < rank:
                trace.fix(channels, f"it is a mask read by layer '{layer.name}'")
        inputs = [c for c, shape in zip(inputs, input_shapes) if len(shape) == rank]
        reason = self._fixed_reason(layer, inputs, output_shapes)
        if reason:
            return self.fix_all(inputs, output_shapes, trace, reason)
        query = _consume_query_and_value(layer, inputs, trace)
        trace.space(part_of(layer, "heads"), layer.num_heads)
        trace.space(part_of(layer, "key_dim"), layer.key_dim)
        trace.space(part_of(layer, "value_dim"), layer.value_dim)
        return [trace.space(layer, output_shapes[0][-1])]

    def variable_axes(self, layer):
        value_input = "in:1"
        heads, key, value = UnitAxis(_HEADS), UnitAxis(_KEY), UnitAxis(_VALUE)
        key_out = UnitAxis(_KEY, role="outgoing")
        pairs = [
            (_dense(layer, "query").kernel, {0: "in", 1: heads, 2: key}),
            (_dense(layer, "key").kernel, {0: UnitAxis(value_input), 1: heads, 2: key_out}),
            (_dense(layer, "value").kernel, {0: UnitAxis(value_input), 1: heads, 2: value}),
            (_dense(layer, "output").kernel, {
                0: UnitAxis(_HEADS, role="outgoing"), 1: UnitAxis(_VALUE, role="outgoing"), 2: OWN,
            }),
        ]
        if layer.use_bias:
            pairs += [
                (_dense(layer, "query").bias, {0: heads, 1: key}),
                (_dense(layer, "key").bias, {0: UnitAxis(_HEADS, role="vector"), 1: key_out}),
                (_dense(layer, "value").bias, {0: heads, 1: value}),
                (_dense(layer, "output").bias, {0: OWN}),
            ]
        return pairs

    def planned_config(self, layer, config, plan):
        for argument, space in (("num_heads", _HEADS), ("key_dim", _KEY), ("value_dim", _VALUE)):
            width = plan.width(space)
            config[argument] = width if width is not None else getattr(layer, argument)
        width, query = plan.width(OWN), plan.width("in")
        if width is not None and (width != query or config.get("output_shape") is not None):
            config["output_shape"] = width
        return config

    def finish_weights(self, layer, values, plan):
        width = plan.width(_KEY)
        if width is None or width == layer.key_dim:
            return values
        scale = np.sqrt(width / layer.key_dim)
        query = {id(_dense(layer, "query").kernel)}
        if layer.use_bias:
            query.add(id(_dense(layer, "query").bias))
        return [
            value * value.dtype.type(scale) if id(w) in query and value is not None else value
            for w, value in zip(layer.weights, values)
        ]


class GroupedQueryAttentionHandler(LayerHandler):
    """`GroupedQueryAttention`: key/value heads with their query heads.

    A unit of `"<name>/heads"` is one key/value head and the
    `num_query_heads // num_key_value_heads` query heads that read it. The
    output projection writes as many channels as the query has, so the
    layer's output carries the query's units.
    """

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        reason = None
        if len(inputs) > 2:
            reason = f"layer '{layer.name}' is called with a separate key or a mask tensor"
        elif len(output_shapes) != 1:
            reason = f"layer '{layer.name}' returns its attention scores"
        elif getattr(layer, "_use_gate", False) or layer.get_config().get("use_gate"):
            reason = f"layer '{layer.name}' uses a gate"
        if reason:
            return self.fix_all(inputs, output_shapes, trace, reason)
        query = _consume_query_and_value(layer, inputs, trace)
        trace.space(part_of(layer, "heads"), layer.num_key_value_heads)
        return [query]

    def variable_axes(self, layer):
        group = layer.num_query_heads // layer.num_key_value_heads
        query_heads = UnitAxis(_HEADS, repeat=group)
        value_input = UnitAxis("in:1")
        pairs = [
            (_dense(layer, "query").kernel, {0: "in", 1: query_heads}),
            (_dense(layer, "key").kernel, {0: value_input, 1: UnitAxis(_HEADS)}),
            (_dense(layer, "value").kernel, {0: value_input, 1: UnitAxis(_HEADS)}),
            (_dense(layer, "output").kernel, {
                0: UnitAxis(_HEADS, repeat=group, role="outgoing"), 2: UnitAxis("in", role="incoming"),
            }),
        ]
        if layer.use_bias:
            pairs += [
                (_dense(layer, "query").bias, {0: UnitAxis(_HEADS, repeat=group, role="vector")}),
                (_dense(layer, "key").bias, {0: UnitAxis(_HEADS, role="vector")}),
                (_dense(layer, "value").bias, {0: UnitAxis(_HEADS, role="vector")}),
                (_dense(layer, "output").bias, {0: UnitAxis("in", role="vector")}),
            ]
        return pairs

    def planned_config(self, layer, config, plan):
        heads = plan.width(_HEADS)
        if heads is not None:
            group = layer.num_query_heads // layer.num_key_value_heads
            config["num_key_value_heads"] = heads
            config["num_query_heads"] = heads * group
        return config


class LayerNormalizationHandler(NormalizationHandler):
    """`LayerNormalization`: resizable in a pruned stream, never exactly."""

    exact_growth = False


register_layer(keras.layers.MultiHeadAttention, handler=MultiHeadAttentionHandler())
register_layer(keras.layers.GroupQueryAttention, handler=GroupedQueryAttentionHandler())
register_layer(
    keras.layers.LayerNormalization,
    handler=LayerNormalizationHandler(("gamma", "beta"), "none"),
)

"""FLOP counters of attention and recurrent layers (conventions: `keras_darn.metrics.counts`).

Per example, with the conventions of the other counters (a multiply-add is
2, an added bias 1 per element, activations as `ACTIVATION_FLOPS`):

- `MultiHeadAttention` / `GroupQueryAttention`: the query, key, value and
  output projections as `EinsumDense` layers (2 per kernel entry and
  position, plus the bias), the query scaling (1 per projected query
  element), the scores and the weighted sum (2 * heads * head size per pair
  of query and key positions each), and the softmax (5 per score).
- `SimpleRNN`, `LSTM`, `GRU`, per time step: the input and recurrent
  kernels (2 per entry), the biases, the gate activations per unit (LSTM:
  3 recurrent activations and 2 activations; GRU: 2 and 1; SimpleRNN: 1),
  and the state updates per unit (LSTM: 3 for the cell state and 1 for the
  output; GRU: 4, plus 1 for the reset gate).
- `Bidirectional`: both directions, plus 1 per output element where the
  merge adds, multiplies or averages them (`concat` costs nothing).
"""

import math

import keras

from keras_darn.graph import flop_counters


def _positions(shape):
    """Positions of a tensor `(batch, steps..., features)` per example."""
    return flop_counters.elements_per_example(shape) // shape[-1]


def _einsum_dense_flops(layer, positions):
    kernel = math.prod(layer.kernel.shape)
    bias = math.prod(layer.bias.shape) if getattr(layer, "bias", None) is not None else 0
    return positions * (2 * kernel + bias)


def _activation(name_or_function, elements):
    name = getattr(name_or_function, "__name__", name_or_function)
    return flop_counters.ACTIVATION_FLOPS.get(name, 0) * elements


def attention_flops(layer, input_shapes, output_shapes):
    """`MultiHeadAttention` and `GroupQueryAttention` (query, value[, key] inputs)."""
    queries = _positions(input_shapes[0])
    keys = _positions(input_shapes[1]) if len(input_shapes) > 1 else queries
    heads = getattr(layer, "num_heads", None) or layer.num_query_heads
    key_size = getattr(layer, "key_dim", None) or layer.head_dim
    value_size = getattr(layer, "_value_dim", None) or getattr(layer, "value_dim", None) or key_size
    return (
        _einsum_dense_flops(layer._query_dense, queries)
        + _einsum_dense_flops(layer._key_dense, keys)
        + _einsum_dense_flops(layer._value_dense, keys)
        + _einsum_dense_flops(layer._output_dense, queries)
        + queries * heads * key_size  # the query scaling
        + 2 * queries * keys * heads * (key_size + value_size)
        + flop_counters.ACTIVATION_FLOPS["softmax"] * queries * keys * heads
    )


# Per unit and step: (recurrent activations, activations, other elementwise).
_CELL_ELEMENTWISE = {"SimpleRNN": (0, 1, 0), "LSTM": (3, 2, 4), "GRU": (2, 1, 5)}


def recurrent_flops(layer, input_shapes, output_shapes):
    """`SimpleRNN`, `LSTM` and `GRU` over every time step."""
    cell = getattr(layer, "cell", layer)
    shape = input_shapes[0]
    steps = shape[1]
    if steps is None:
        raise flop_counters.UnknownDimension(shape)
    units = cell.units
    kernels = math.prod(cell.kernel.shape) + math.prod(cell.recurrent_kernel.shape)
    bias = math.prod(cell.bias.shape) if getattr(cell, "bias", None) is not None else 0
    recurrent, plain, other = _CELL_ELEMENTWISE[type(layer).__name__]
    per_step = (
        2 * kernels + bias
        + _activation(getattr(cell, "recurrent_activation", None), recurrent * units)
        + _activation(cell.activation, plain * units)
        + other * units
    )
    return steps * per_step


def bidirectional_flops(layer, input_shapes, output_shapes):
    """`Bidirectional`: both directions and their merge."""
    total = sum(
        flop_counters.layer_flops(direction, input_shapes, output_shapes)
        for direction in (layer.forward_layer, layer.backward_layer)
    )
    if layer.merge_mode in ("sum", "mul", "ave"):
        total += flop_counters.elements_per_example(output_shapes[0])
    return total


flop_counters.add_counter(attention_flops, keras.layers.MultiHeadAttention)
flop_counters.add_counter(attention_flops, keras.layers.GroupQueryAttention)
for _layer_class in (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU):
    flop_counters.add_counter(recurrent_flops, _layer_class)
flop_counters.add_counter(bidirectional_flops, keras.layers.Bidirectional)

"""Gates: where a unit's output is scaled on its way into the next layer.

A gate sits at the end of a chain of channel-preserving layers
(BatchNormalization, activations, dropout, pooling) that starts at a member
layer's output, on the edges into the layers where the chain ends (a
producer, a merge, `Flatten`, a nested model). Zeroing a channel there is
what removing the unit does to the rest of the network.
"""

import keras
import numpy as np
from keras import ops

from keras_darn.graph import handlers as handlers_lib
from keras_darn.graph import registry

_MIXING = ("softmax", "log_softmax")


class Gate:
    """Scales one tensor on its way into some of its consumers.

    A gate sits at the end of a chain of channel-preserving layers that
    starts at a member layer's output, on the edges into the layers where
    the chain ends (a producer, a merge, `Flatten`...). A member whose output
    branches has one gate per branch.

    Attributes:
        name: the member layer's name, then `#1`, `#2`... for further gates.
        layer: the member (producer) layer.
        tensor_id: id of the gated symbolic tensor.
        consumers: ids of the nodes that receive the gated value.
        width: number of channels.
        parts: `(group key, channel positions in group order)` pairs.
        pos_map: where each channel reads its gain (see `finish`).
    """

    def __init__(self, name, layer, tensor, consumers):
        self.name = name
        self.layer = layer
        self.tensor = tensor
        self.tensor_id = id(tensor)
        self.consumers = {id(node) for node in consumers}
        self.consumer_nodes = list(consumers)
        self.width = int(tensor.shape[-1])
        self.parts = []
        self.pos_map = None

    def finish(self):
        # Channel c reads entry pos_map[c] of concat([gains of each part..., 1]).
        pos_map = np.full(self.width, -1, dtype=np.int64)
        offset = 0
        for _, positions in self.parts:
            pos_map[positions] = offset + np.arange(len(positions))
            offset += len(positions)
        pos_map[pos_map < 0] = offset
        self.pos_map = pos_map


def is_channel_preserving(layer, node):
    handler = registry.get_handler(layer)
    if not isinstance(handler, handlers_lib.PassThroughHandler):
        return False
    if isinstance(layer, keras.layers.LayerNormalization):
        return False  # normalizes across channels
    if handlers_lib.activation_name(layer) in _MIXING:
        return False
    if isinstance(layer, keras.layers.BatchNormalization):
        rank = len(node.input_tensors[0].shape)
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        return [a % rank for a in axes] == [rank - 1]
    return len(node.input_tensors) == 1 and len(node.outputs) == 1


def chain_ends(tensor, consumers, output_ids):
    """`(tensor, consumer nodes)` where channel-preserving chains from `tensor` end.

    From a member layer's output, edges into channel-preserving layers are
    followed; every other consumer (a producer, a merge, `Flatten`, a nested
    model) receives the gated value of the tensor it reads.
    """
    ends = []
    following = consumers.get(id(tensor), [])
    stops = [
        node
        for node in following
        if isinstance(node.operation, keras.Model)
        or not is_channel_preserving(node.operation, node)
    ]
    if stops:
        ends.append((tensor, stops))
    for node in following:
        if node not in stops and id(node.outputs[0]) not in output_ids:
            ends.extend(chain_ends(node.outputs[0], consumers, output_ids))
    return ends


def make_gates(order, functional, groups):
    """`{member layer name: [Gate, ...]}` for the given `UnitGroup`s.

    Raises:
        ValueError: for a member layer outside the top-level graph or called
            more than once.
    """
    consumers = {}
    for node in order:
        for tensor in node.input_tensors:
            consumers.setdefault(id(tensor), []).append(node)
    output_ids = {id(t) for t in functional.outputs}
    nodes_of = {}
    for node in order:
        nodes_of.setdefault(node.operation.name, []).append(node)
    gates = {}  # member layer name -> list of Gate
    for group in groups:
        for name in group.layers:
            if name not in gates:
                found = nodes_of.get(name, [])
                if len(found) != 1 or len(found[0].outputs) != 1:
                    where = "is not in the top-level graph" if not found else (
                        f"is called {len(found)} times"
                    )
                    raise ValueError(
                        f"Layer '{name}' {where}; criteria can only score units of "
                        "layers called once in the top-level graph (flatten nested "
                        "models first)."
                    )
                ends = chain_ends(found[0].outputs[0], consumers, output_ids)
                gates[name] = [
                    Gate(name if i == 0 else f"{name}#{i}", found[0].operation, t, c)
                    for i, (t, c) in enumerate(ends)
                ]
            positions = np.asarray(group.indices(name))
            for gate in gates[name]:
                gate.parts.append((group.key, positions))
    for member in gates.values():
        for gate in member:
            gate.finish()
    return gates


def apply_gate(gate, value, gains, replicate_key=None, replicate_rows=None):
    """`value` times the gate's gains (per row for the replicated group)."""
    parts = []
    for key, _ in gate.parts:
        part = replicate_rows if key == replicate_key else gains[key]
        part = ops.cast(part, value.dtype)
        parts.append(part if len(part.shape) == 2 else ops.expand_dims(part, 0))
    parts.append(ops.ones((1, 1), dtype=value.dtype))
    rows = None
    for part in parts:
        if part.shape[0] != 1:
            rows = ops.shape(part)[0]
    if rows is not None:
        parts = [ops.broadcast_to(p, (rows, p.shape[1])) for p in parts]
    gain = ops.take(ops.concatenate(parts, axis=-1), gate.pos_map, axis=-1)
    gain = ops.reshape(gain, [-1] + [1] * (len(value.shape) - 2) + [gate.width])
    return value * gain


def tile(value, times):
    """`value` repeated `times` times along the batch axis (replica-major)."""
    return ops.tile(value, [times] + [1] * (len(value.shape) - 1))

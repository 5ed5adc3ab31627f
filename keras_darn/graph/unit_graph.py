"""Tracing a Keras graph to find which units are coupled.

`UnitGraph(model)` walks a functional or Sequential model (nested models
included) node by node, asks each layer's handler how channels move, and
unites the units that element-wise merges tie together, the way
Torch-Pruning's DepGraph groups coupled channels. Units reaching a model
output, a model input, or a layer that mixes channels are fixed.

The same walk, run in "rebuild" mode over the planned new widths, tells the
Rebuilder the input layout of every layer of the new model.
"""

import keras
import numpy as np

from keras_darn.graph import handlers as handlers_lib
from keras_darn.graph import nodes
from keras_darn.graph import op_nodes
from keras_darn.graph import registry
from keras_darn.graph.channels import Channels
from keras_darn.graph.nodes import GraphError  # noqa: F401  (raised here, part of this module's API)
from keras_darn.graph.nodes import functional_of
from keras_darn.graph.nodes import is_model
from keras_darn.graph.unit_axes import OWN
from keras_darn.graph.unit_axes import as_unit_axis
from keras_darn.graph.unit_axes import parts_of


class _UnionFind:
    def __init__(self):
        self.parent = []
        self.fixed = {}

    def new(self, count):
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        return np.arange(start, start + count, dtype=np.int64)

    def find(self, x):
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        if rb in self.fixed:
            self.fixed.setdefault(ra, self.fixed.pop(rb))

    def fix(self, x, reason):
        self.fixed.setdefault(self.find(x), reason)

    def roots(self, ids):
        return np.array([self.find(int(i)) for i in ids], dtype=np.int64)


class Consumer:
    """A call of a weight-bearing layer on a traced input."""

    __slots__ = ("layer", "channels", "constants")

    def __init__(self, layer, channels, constants):
        self.layer = layer
        self.channels = channels
        self.constants = constants


class UnitGraph:
    """The coupled units of a Keras model.

    Args:
        model: a functional or Sequential `keras.Model` (built).
        with_constants: also work out which channels hold a constant for every
            input (masked-off units, units with all-zero incoming weights and
            what follows from them), for `shrink`. Defaults to `False`.

    Attributes:
        spaces: `{layer: Channels}` output units of every resizable layer.
        consumers: list of `Consumer`, every call of a weight-bearing layer.
        inputs: `{id(layer): Channels}` of every layer's first input.
        layers: `{name: layer}` of every layer traced (nested models give
            `outer/inner` names too).

    Raises:
        GraphError: for subclassed or unbuilt models.
    """

    def __init__(self, model, with_constants=False):
        self.model = model
        self.with_constants = with_constants
        self._uf = _UnionFind()
        self.spaces = {}
        self.consumers = []
        self.layers = {}
        self.inputs = {}
        self.input_lists = {}
        self._layer_by_id = {}
        self._current_constants = None
        self.output_channels = []
        functional = functional_of(model)
        inputs = []
        for tensor in functional.inputs:
            channels = Channels(self._uf.new(channel_width(tensor)))
            self.fix(channels, "it is a channel of a model input")
            inputs.append((channels, np.full(len(channels), np.nan)))
        outputs = walk(functional, self, inputs)
        for channels, _ in outputs:
            self.fix(channels, "it reaches a model output")
            self.output_channels.append(channels)

    # ---- Trace interface used by handlers -------------------------------
    def space(self, layer, width):
        key = id(layer)
        if key not in self.spaces:
            self.spaces[key] = Channels(self._uf.new(width))
            self._layer_by_id[key] = layer
        return self.spaces[key]

    def consume(self, layer, channels):
        for consumer in self.consumers:
            if consumer.layer is layer:
                self.couple(consumer.channels, channels, layer)
        self.consumers.append(Consumer(layer, channels, self._current_constants))

    def couple(self, first, second, layer):
        if len(first) != len(second):
            raise GraphError(
                f"Layer '{layer.name}' joins inputs of {len(first)} and {len(second)} channels."
            )
        for a, b in zip(first.ids, second.ids):
            self._uf.union(int(a), int(b))

    def fix(self, channels, reason):
        for unit in channels.ids:
            self._uf.fix(int(unit), reason)

    def fixed_channels(self, width, reason):
        channels = Channels(self._uf.new(width))
        self.fix(channels, reason)
        return channels

    # ---- Queries --------------------------------------------------------
    def root(self, unit):
        return self._uf.find(int(unit))

    def roots(self, channels):
        return self._uf.roots(channels.ids)

    def fixed_reason(self, unit):
        """Why a unit cannot change, or None if it can."""
        return self._uf.fixed.get(self._uf.find(int(unit)))

    def axis_ids(self, layer, kind, length):
        """The unit id at each position of a weight axis of `layer`, or `None` where unknown.

        Args:
            layer: a traced layer.
            kind: the axis' kind in the layer handler's axis map (`"in"`,
                `"out"`, `"in_x_m"` or a `UnitAxis`, parts included).
            length: the axis' length; ids that do not fill it exactly are
                not returned.
        """
        kind = as_unit_axis(kind, layer)
        if kind.space == OWN:
            channels = self.spaces.get(id(layer))
        elif kind.space.startswith("part:"):
            part = parts_of(layer).get(kind.space[len("part:"):])
            channels = None if part is None else self.spaces.get(id(part))
        else:
            index = 0 if kind.space == "in" else int(kind.space[len("in:"):])
            inputs = self.input_lists.get(id(layer)) or []
            channels = inputs[index] if index < len(inputs) else None
        if channels is None:
            return None
        ids = np.repeat(channels.ids, kind.repeat)
        ids = np.tile(ids, kind.blocks)
        return ids if len(ids) == length else None

    def layer_of_space(self, key):
        return self._layer_by_id[key]

    def resizable_layers(self):
        """Layers with a resizable output, in trace order."""
        return [self._layer_by_id[key] for key in self.spaces]

    # ---- The walk -------------------------------------------------------
    def visit(self, layer, node, arguments, prefix):
        """Channels and constants of a node's outputs (called by `walk`)."""
        self.layers.setdefault(f"{prefix}{layer.name}", layer)
        self.layers.setdefault(layer.name, layer)
        if arguments:
            self.inputs.setdefault(id(layer), arguments[0][0])
            self.input_lists.setdefault(id(layer), [channels for channels, _ in arguments])
        return self._propagate(layer, node, arguments)

    def _propagate(self, layer, node, arguments):
        handler = registry.get_handler(layer)
        in_shapes = [tuple(t.shape) for t in node.input_tensors]
        out_shapes = [tuple(t.shape) for t in node.outputs]
        channels = [c for c, _ in arguments]
        constants = [k for _, k in arguments]
        self._current_constants = constants[0] if constants else None
        # Scalars and arrays an op node combines its inputs with (`x * 2.0`).
        self.constant_arguments = (
            nodes.constant_arguments(node) if op_nodes.is_operation(layer) else ()
        )
        out_channels = handler.propagate(layer, channels, in_shapes, out_shapes, self)
        self.constant_arguments = ()
        if not self.with_constants:
            return [(c, None) for c in out_channels]
        if op_nodes.is_operation(layer):
            value = op_nodes.node_constants(layer, node, constants, in_shapes)
            if value is None:
                value = handler.constants(layer, constants, in_shapes, out_shapes)
            out_constants = [
                np.full(len(c), np.nan) if value is None else np.asarray(value, dtype=np.float64)
                for c in out_channels
            ]
        elif isinstance(handler, handlers_lib.ProducerHandler) and id(layer) in self.spaces:
            # (A depthwise grouped convolution makes no units of its own.)
            value = producer_constants(layer, handler, in_shapes[0], len(out_channels[0]))
            out_constants = [value] * len(out_shapes)
        else:
            value = handler.constants(layer, constants, in_shapes, out_shapes)
            out_constants = [
                np.full(len(c), np.nan) if value is None else np.asarray(value, dtype=np.float64)
                for c in out_channels
            ]
        return list(zip(out_channels, out_constants))


def channel_width(tensor):
    """Size of a tensor's last (channel) axis; 1 for a rank-1 tensor."""
    width = tensor.shape[-1] if len(tensor.shape) > 1 else 1
    return int(width) if width is not None else 0


def walk(functional, trace, inputs, prefix=""):
    """Runs `trace.visit` over every node of a functional graph in order.

    Nested models are walked in place, so their layers are seen like the
    outer model's. `inputs` holds one value per model input; `visit` returns
    one value per node output.
    """
    values = {id(t): v for t, v in zip(functional.inputs, inputs)}
    for depth in sorted(functional._nodes_by_depth, reverse=True):
        for node in functional._nodes_by_depth[depth]:
            layer = node.operation
            if layer is None or node.is_input:
                continue
            arguments = [values[id(t)] for t in node.input_tensors]
            if is_model(layer):
                if hasattr(trace, "enter_model"):
                    trace.enter_model(layer, arguments)
                outputs = walk(functional_of(layer), trace, arguments, f"{prefix}{layer.name}/")
            else:
                outputs = trace.visit(layer, node, arguments, prefix)
            for tensor, value in zip(node.outputs, outputs):
                values[id(tensor)] = value
    return [values[id(t)] for t in functional.outputs]


def producer_constants(layer, handler, input_shape, width):
    """Output value of every unit that is constant for all inputs, else NaN.

    A unit masked off by our prunable layers outputs 0; a unit whose incoming
    weights are all zero outputs whatever the layer gives for a zero input.
    """
    axes = handler.weight_axes(layer)
    weights = {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}
    mask = weights.get("unit_mask")
    constants = np.full(width, np.nan)
    zero_input = np.ones(width, dtype=bool)
    kernel_mask = weights.get("kernel_mask")
    for name, weight_axes in axes.items():
        kinds = set(weight_axes.values())
        if name not in weights or handlers_lib.OUT not in kinds or len(kinds) < 2:
            continue
        value = weights[name]
        if kernel_mask is not None and value.shape == kernel_mask.shape:
            value = value * kernel_mask
        out_axis = [a for a, k in weight_axes.items() if k == handlers_lib.OUT][0]
        moved = np.moveaxis(value, out_axis, -1).reshape(-1, value.shape[out_axis])
        zero_input &= ~np.any(moved != 0, axis=0)
    if zero_input.any() and handler.consumes_channels and None not in input_shape[1:]:
        probe = np.zeros((1,) + tuple(input_shape[1:]), dtype="float32")
        out = keras.ops.convert_to_numpy(layer(probe, training=False))
        out = out.reshape(-1, out.shape[-1])
        steady = np.all(out == out[:1], axis=0)
        constants = np.where(zero_input & steady, out[0], np.nan)
    if mask is not None:
        constants = np.where(mask == 0, 0.0, constants)
    return constants


"""Layer-by-layer comparison of a model with its resized twin.

Every node of the twin is fed the inputs the same node of the reference model
gets on `x` (on the units both have), so rounding is not carried from layer to
layer: a deep untrained net that amplifies rounding by many orders of
magnitude end to end is still judged as strictly as float64 allows at each
node. Nested models are walked in place; channels last.
"""

import keras
import numpy as np
from keras import tree

from keras_darn.graph import UnitGraph
from keras_darn.graph.nodes import functional_of
from keras_darn.graph.nodes import is_model


def relative_diff(actual, expected):
    """Largest absolute difference relative to the largest expected value."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.abs(actual - expected).max()) / max(float(np.abs(expected).max()), 1e-30)


class _NodeChannels(UnitGraph):
    """The unit graph of a model, with the channels of every node's inputs and outputs."""

    def __init__(self, model):
        self.nodes = {}
        super().__init__(model)

    def visit(self, layer, node, arguments, prefix):
        outputs = super().visit(layer, node, arguments, prefix)
        self.nodes[id(node)] = ([c for c, _ in arguments], [c for c, _ in outputs])
        return outputs

    def unit_roots(self, units):
        """The roots of `{layer_name: [indices]}`."""
        found = set()
        for name, indices in units.items():
            roots = self.roots(self.spaces[id(self.layers[name])])
            found.update(int(r) for r in roots[list(indices)])
        return found

    def shared(self, channels, changed):
        """Which of `channels` both models have (those not among `changed` roots)."""
        return ~np.isin(self.roots(channels), list(changed))


def _nodes(functional):
    return [node for depth in sorted(functional._nodes_by_depth, reverse=True)
            for node in functional._nodes_by_depth[depth]
            if node.operation is not None and not node.is_input]


def _call(node, feed):
    args, kwargs = node.arguments.fill_in(feed)
    return [keras.ops.convert_to_numpy(v) for v in tree.flatten(node.operation(*args, **kwargs))]


def _lockstep(reference, twin, x, check):
    """Runs `reference` on `x` node by node and calls `check(node, twin_node,
    arguments, outputs)` for every node; op nodes get new automatic names in
    the twin, so nodes are paired by their place in the graph, which the
    Rebuilder keeps."""

    def walk(reference, twin, inputs):
        reference, twin = functional_of(reference), functional_of(twin)
        values = {id(t): v for t, v in zip(reference.inputs, inputs)}
        reference_nodes, twin_nodes = _nodes(reference), _nodes(twin)
        assert len(reference_nodes) == len(twin_nodes)
        for node, other in zip(reference_nodes, twin_nodes):
            assert type(node.operation) is type(other.operation), (node.operation, other.operation)
            arguments = [values[id(t)] for t in node.input_tensors]
            if is_model(node.operation):
                outputs = walk(node.operation, other.operation, arguments)
            else:
                outputs = _call(node, dict(zip(map(id, node.input_tensors), arguments)))
                check(node, other, arguments, outputs)
            values.update(zip(map(id, node.outputs), outputs))
        return [values[id(t)] for t in reference.outputs]

    walk(reference, twin, [x])


def growth_diff_by_layer(original, grown, added, x, seed=0):
    """How far the old units of a grown model stray from the original, layer by layer.

    Every node of `grown` is fed the inputs the same node of `original` gets
    on `x` (its old units) and random values on the units growth added, so a
    non-zero outgoing weight of an added unit shows; its old units' output is
    compared with the original node's output.

    Args:
        original: the model before growth.
        grown: the grown model (same layer names).
        added: `{layer_name: (width_before, count)}`, the first layer of every
            grown group, whose units `width_before ... width_before + count - 1`
            are the added ones.
        x: input of `original`.

    Returns:
        `(largest relative difference, name of the node where it is, nodes compared)`.
    """
    graph = _NodeChannels(grown)
    new_roots = graph.unit_roots({name: range(width, width + count)
                                  for name, (width, count) in added.items()})
    rng = np.random.default_rng(seed)
    found = {"worst": 0.0, "where": None, "compared": 0}

    def check(node, twin, arguments, expected_outputs):
        in_channels, out_channels = graph.nodes[id(twin)]
        feed = {}
        for tensor, channels, value in zip(twin.input_tensors, in_channels, arguments):
            keep = graph.shared(channels, new_roots)
            assert keep.sum() == value.shape[-1], (twin.operation.name, keep.sum(), value.shape)
            wide = rng.normal(size=value.shape[:-1] + (len(keep),)).astype(value.dtype)
            wide[..., keep] = value
            feed[id(tensor)] = wide
        for channels, value, expected in zip(out_channels, _call(twin, feed), expected_outputs):
            keep = graph.shared(channels, new_roots)
            assert keep.sum() == expected.shape[-1], (twin.operation.name, keep.sum())
            _record(found, relative_diff(value[..., keep], expected), twin.operation.name)

    _lockstep(original, grown, x, check)
    return found["worst"], found["where"], found["compared"]


def removal_diff_by_layer(model, smaller, x, removed_roots):
    """How far a model with units removed strays from the model before, layer by layer.

    Every node of `smaller` is fed the inputs the same node of `model` gets
    on `x`, less the removed units, and its output is compared with the
    node's output on the units it kept. Where every removed unit is zero
    where it is read (a masked unit) or a constant its readers absorbed (a
    dead one), the difference is rounding alone.

    Args:
        model: the model before removal (a masked model, say).
        smaller: the model with the units taken out (same layer names).
        x: input of `model`.
        removed_roots: the removed units, as roots of `model`'s unit graph
            (`Rebuilder(model).roots_of(...)`, `.dead_roots()`).

    Returns:
        `(largest relative difference, name of the node where it is, nodes compared)`.
    """
    graph = _NodeChannels(model)
    gone = {int(r) for r in removed_roots}
    found = {"worst": 0.0, "where": None, "compared": 0}

    def check(node, twin, arguments, expected_outputs):
        in_channels, out_channels = graph.nodes[id(node)]
        feed = {}
        for tensor, channels, value in zip(twin.input_tensors, in_channels, arguments):
            feed[id(tensor)] = value[..., graph.shared(channels, gone)]
        for channels, value, expected in zip(out_channels, _call(twin, feed), expected_outputs):
            kept = expected[..., graph.shared(channels, gone)]
            assert kept.shape == value.shape, (twin.operation.name, kept.shape, value.shape)
            _record(found, relative_diff(value, kept), twin.operation.name)

    _lockstep(model, smaller, x, check)
    return found["worst"], found["where"], found["compared"]


def _record(found, diff, where):
    found["compared"] += 1
    if diff >= found["worst"]:
        found.update(worst=diff, where=where)

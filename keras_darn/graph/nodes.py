"""The one place that reads Keras' functional-graph internals.

Every other module of keras_darn walks a model through these functions:
the functional graph behind a model, its nodes in call order, the node that
produced a tensor, the nodes at which a layer was called, and the leaf
layers of nested models.
"""

import copy

import keras
import numpy as np


class GraphError(ValueError):
    """A model or plan the unit graph cannot handle."""


def functional_of(model):
    """The functional graph behind a `Functional` or `Sequential` model.

    Raises:
        GraphError: for subclassed models, or Sequential models not built.
    """
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise GraphError(
                f"Sequential model '{model.name}' has no known input shape; "
                "build it (e.g. start it with keras.Input) first."
            )
        return functional
    if _is_functional(model):
        return model
    raise GraphError(
        f"Model '{model.name}' of type {type(model).__name__} is a subclassed model; "
        "keras_darn reads the graph of functional and Sequential models only. Rewrite it "
        "with the functional API."
    )


def _is_functional(layer):
    return isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth") and not isinstance(
        layer, keras.Sequential
    )


def is_model(layer):
    return isinstance(layer, keras.Model)



def is_graph_model(layer):
    """Whether `layer` is a Sequential or Functional model (not subclassed)."""
    return isinstance(layer, keras.Sequential) or (
        isinstance(layer, keras.Model) and isinstance(layer, keras.Function)
    )


def leaf_layers(model):
    """The layers of `model` that are neither models nor inputs, each once.

    Nested Functional and Sequential models are walked into, depth first, in
    `model.layers` order.

    Example:

    ```python
    [layer.name for layer in leaf_layers(model)]
    ```
    """
    leaves, seen = [], set()

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if is_graph_model(layer):
            for child in layer.layers:
                visit(child)
        elif not isinstance(layer, keras.layers.InputLayer):
            leaves.append(layer)

    visit(model)
    return leaves


def nodes_in_order(model):
    """The operation nodes of a Functional (or built Sequential) model, in call order.

    Input nodes are left out; nested models appear as one node each.
    """
    functional = functional_of(model)
    by_depth = functional._nodes_by_depth
    return [
        node
        for depth in sorted(by_depth, reverse=True)
        for node in by_depth[depth]
        if node.operation is not None and not node.is_input
    ]


def shared_layers(model):
    """`{layer name: number of calls}` of the layers with weights that `model`'s
    top-level graph calls more than once."""
    counts = {}
    for node in nodes_in_order(model):
        if getattr(node.operation, "weights", None):
            counts[node.operation.name] = counts.get(node.operation.name, 0) + 1
    return {name: count for name, count in counts.items() if count > 1}


def producer_of(tensor):
    """`(operation, node)` that computed a `KerasTensor` of a functional graph.

    `node` is `None` for an operation that records no nodes.
    """
    operation, node_index, _ = tensor._keras_history
    nodes = getattr(operation, "_inbound_nodes", None)
    return operation, (nodes[node_index] if nodes else None)


def inbound_nodes(layer):
    """The nodes at which `layer` was called in functional graphs."""
    return list(getattr(layer, "_inbound_nodes", []))


class FunctionalGraph:
    """The nodes of a Functional (or built Sequential) model, in graph order."""

    def __init__(self, model):
        function = functional_of(model)
        self.inputs = function.inputs
        self.outputs = function.outputs
        by_depth = function._nodes_by_depth
        self.nodes = [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]]
        self._consumers = {}
        self._calls = {}
        self.layers = []
        for node in self.nodes:
            for tensor in node.arguments.keras_tensors:
                self._consumers.setdefault(id(tensor), []).append(node)
            if node.is_input:
                continue
            op = node.operation
            if id(op) not in self._calls:
                self.layers.append(op)
            self._calls[id(op)] = self._calls.get(id(op), 0) + 1
        self._output_ids = {id(t) for t in self.outputs}

    def consumers(self, tensor):
        return self._consumers.get(id(tensor), [])

    def is_output(self, tensor):
        return id(tensor) in self._output_ids

    def calls(self, layer):
        return self._calls.get(id(layer), 0)


def constant_arguments(node):
    """The arguments of a node that are not Keras tensors (numbers, arrays,
    variables), flattened; strings, `None` and booleans are left out."""
    flat = keras.tree.flatten((node.arguments.args, node.arguments.kwargs))
    return [
        value
        for value in flat
        if not isinstance(value, (keras.KerasTensor, str, bool, type(None)))
        and (isinstance(value, (int, float, np.ndarray)) or hasattr(value, "shape"))
    ]


def call_node(node, values):
    """Calls a node's operation eagerly, `values` in place of its input tensors."""
    tensors = {id(t): v for t, v in zip(node.input_tensors, values)}
    args, kwargs = node.arguments.fill_in(tensors)
    return node.operation(*args, **kwargs)


def first_input_shape(operation):
    """The shape of the first input of an operation's first call, or None."""
    calls = getattr(operation, "_inbound_nodes", None)
    if not calls or not calls[0].input_tensors:
        return None
    return tuple(calls[0].input_tensors[0].shape)


def fresh_operation(operation):
    """A copy of an operation that shares no graph nodes with the original."""
    clone = copy.copy(operation)
    clone._inbound_nodes = []
    clone._outbound_nodes = []
    return clone

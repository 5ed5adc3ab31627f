"""Which tensors of a functional graph are known to lie in [0, s].

NodeDrop's condition holds for units whose inputs are bounded in [0, s]. This
module propagates such bounds from declared model inputs through the graph,
each layer by its type's rule (`keras_darn.graph.output_bounds`), in
`tensor_bounds`, and names the layer an unbounded input comes from
(`origin`).
"""

import math

from keras_darn.graph.nodes import producer_of
from keras_darn.graph.output_bounds import looks_through
from keras_darn.graph.output_bounds import output_bound

def _input_bounds(graph, input_range):
    """Upper bounds of the model inputs known to lie in [0, bound]."""
    names = [_input_name(t) for t in graph.inputs]
    if input_range is None:
        return {}
    if isinstance(input_range, dict):
        unknown = sorted(set(input_range) - set(names))
        if unknown:
            raise ValueError(
                f"Received an invalid value for `input_range`: no model input "
                f"named {unknown}. Model inputs: {names}. Received: "
                f"input_range={input_range}"
            )
        ranges = dict(input_range)
    else:
        ranges = {name: input_range for name in names}
    bounds = {}
    for name, value in ranges.items():
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            low = high = math.nan
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(
                "Received an invalid value for `input_range`, expected a "
                "(low, high) pair of finite numbers with low <= high, or a "
                f"dict of such pairs by input name. Received: "
                f"input_range={input_range!r}"
            )
        if low >= 0:
            bounds[name] = high
    return bounds


def _input_name(tensor):
    return producer_of(tensor)[0].name


def tensor_bounds(graph, input_range):
    """Maps id(tensor) -> s for tensors known to lie in [0, s].

    The NodeDrop condition is stated for inputs in [0, 1]; tracking the bound
    s lets it stay exact behind layers such as Dropout, which scales kept
    values by 1 / (1 - rate) during training (the condition becomes
    `s * sum(max(w, 0)) + b <= 0`).
    """
    input_bounds = _input_bounds(graph, input_range)
    bounds = {}
    for node in graph.nodes:
        if node.is_input:
            for tensor in node.outputs:
                if _input_name(tensor) in input_bounds:
                    bounds[id(tensor)] = input_bounds[_input_name(tensor)]
            continue
        inputs = node.arguments.keras_tensors if node is not None else []
        bound = output_bound(node.operation, [bounds.get(id(t)) for t in inputs])
        if bound is not None:
            for tensor in node.outputs:
                bounds[id(tensor)] = bound
    return bounds


def origin(tensor):
    """The layer a tensor comes from, looking through shape-only layers."""
    while True:
        op, node = producer_of(tensor)
        inputs = node.arguments.keras_tensors if node is not None else []
        if not inputs or not looks_through(op):
            return op
        tensor = inputs[0]

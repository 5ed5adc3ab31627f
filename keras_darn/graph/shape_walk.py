"""Walks the call graph of a functional or Sequential model with shapes.

Every call of an operation (a layer called twice is visited twice) is handed
to a visitor together with the shapes of its inputs and outputs. Nested
models are entered, not visited, and the shapes are propagated into them,
so an inner model defined with unknown spatial sizes gets the sizes it is
actually called with.
"""

import keras
from keras import tree

from keras_darn.graph.unit_graph import functional_of
from keras_darn.graph.nodes import is_graph_model


def input_specs(model, input_shape=None):
    """`KerasTensor`s for the model inputs.

    Args:
        model: A functional or Sequential model.
        input_shape: `None` to use the model's own input shapes, or a shape
            tuple without batch dimension (a list of them for several
            inputs); the batch dimension is then left unknown.
    """
    functional = functional_of(model)
    if input_shape is None:
        return list(functional.inputs)
    shapes = input_shape
    if not shapes or not isinstance(shapes[0], (list, tuple)):
        shapes = [shapes]
    if len(shapes) != len(functional.inputs):
        raise ValueError(
            f"Model '{model.name}' has {len(functional.inputs)} inputs but "
            f"`input_shape` gives {len(shapes)} shapes. "
            f"Received: input_shape={input_shape}"
        )
    return [
        keras.KerasTensor((None,) + tuple(shape), dtype=x.dtype)
        for shape, x in zip(shapes, functional.inputs)
    ]


def walk(model, inputs, visit, prefix=""):
    """Propagates `inputs` through `model`, calling `visit` for every call.

    Args:
        model: A functional or Sequential model.
        inputs: A flat list of `KerasTensor`s, one per model input.
        visit: Called as `visit(operation, name, input_shapes,
            output_shapes)` for every operation call outside nested models;
            `name` is prefixed with the nested models' names and "/".
        prefix: Prefix for the names handed to `visit`.

    Returns:
        The flat list of output `KerasTensor`s.
    """
    functional = functional_of(model)
    tensors = {id(x): y for x, y in zip(functional.inputs, inputs)}
    depths = sorted(functional._nodes_by_depth, reverse=True)
    for depth in depths:
        for node in functional._nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            if any(id(x) not in tensors for x in node.input_tensors):
                continue
            args, kwargs = node.arguments.fill_in(tensors)
            arguments = [
                x
                for x in tree.flatten((args, kwargs))
                if isinstance(x, keras.KerasTensor)
            ]
            operation = node.operation
            if is_graph_model(operation):
                outputs = walk(
                    operation, arguments, visit, prefix + operation.name + "/"
                )
            else:
                same_shapes = all(
                    tuple(x.shape) == tuple(y.shape)
                    for x, y in zip(arguments, node.input_tensors)
                )
                if same_shapes:
                    outputs = node.outputs
                else:
                    outputs = tree.flatten(
                        operation.compute_output_spec(*args, **kwargs)
                    )
                visit(
                    operation,
                    prefix + operation.name,
                    [tuple(x.shape) for x in arguments],
                    [tuple(y.shape) for y in outputs],
                )
            for x, y in zip(node.outputs, tree.flatten(outputs)):
                tensors[id(x)] = y
    return [tensors[id(x)] for x in functional.outputs]

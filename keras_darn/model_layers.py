"""Walking the layers of functional and Sequential models, nested ones included."""

import keras


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

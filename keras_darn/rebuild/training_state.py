"""Carrying the training state of a model over to its rebuilt version.

The new model is compiled from the old one's compile config (same loss,
metrics and optimizer configuration) and the optimizer's slot variables
(Adam moments, SGD momentum, ...) are sliced for surviving units and zero for
new ones, with the step counter kept, so training continues where it was.
"""

import keras


def compile_like(new_model, old_model, variable_map=None):
    """Compiles `new_model` like `old_model` and carries optimizer state.

    Does nothing when `old_model` is not compiled.

    Args:
        new_model: the rebuilt model.
        old_model: the model it was rebuilt from.
        variable_map: `(old_variable, new_variable, transform)` triples from
            `Rebuilder.variable_map`; `transform(array, fill="zeros")` maps
            a slot of the old variable to the new layout. Without it, only
            slots of variables with unchanged shapes and paths are carried.
            Defaults to `None`.

    Returns:
        `new_model`, compiled.

    Example:

    ```python
    rebuilder = darn.Rebuilder(model).remove({"dense": [0]})
    new_model = rebuilder.build()
    compile_like(new_model, model, rebuilder.variable_map)
    ```
    """
    config = old_model.get_compile_config() if old_model.compiled else None
    if config is None:
        return new_model
    new_model.compile_from_config(config)
    old_optimizer = getattr(old_model, "optimizer", None)
    if old_optimizer is None or not old_optimizer.built:
        return new_model
    new_optimizer = new_model.optimizer
    new_optimizer.build(new_model.trainable_variables)
    pairs = _variable_pairs(old_model, new_model, variable_map)
    old_slots = _slot_lists(old_optimizer)
    new_slots = _slot_lists(new_optimizer)
    for attribute, old_list in old_slots.items():
        new_list = new_slots.get(attribute)
        if new_list is None:
            continue
        for old_variable, new_variable, transform in pairs:
            old_index = _index(old_optimizer, old_variable)
            new_index = _index(new_optimizer, new_variable)
            if old_index is None or new_index is None:
                continue
            value = keras.ops.convert_to_numpy(old_list[old_index])
            new_list[new_index].assign(transform(value, fill="zeros"))
    new_optimizer.iterations.assign(old_optimizer.iterations)
    return new_model


def _variable_pairs(old_model, new_model, variable_map):
    if variable_map is not None:
        return [(o, n, t) for o, n, t in variable_map if o.trainable]
    new_by_path = {v.path: v for v in new_model.trainable_variables}
    pairs = []
    for old in old_model.trainable_variables:
        new = new_by_path.get(old.path)
        if new is not None and tuple(new.shape) == tuple(old.shape):
            pairs.append((old, new, lambda array, fill=None: array))
    return pairs


def _slot_lists(optimizer):
    """Attributes of the optimizer holding one slot per trainable variable."""
    count = len(optimizer._trainable_variables)
    slots = {}
    for attribute, value in vars(optimizer).items():
        if (
            isinstance(value, list)
            and len(value) == count
            and count
            and attribute != "_trainable_variables"
            and all(isinstance(v, keras.Variable) for v in value)
        ):
            slots[attribute] = value
    return slots


def _index(optimizer, variable):
    try:
        return optimizer._get_variable_index(variable)
    except (KeyError, ValueError):
        return None

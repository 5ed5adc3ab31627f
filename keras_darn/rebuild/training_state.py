"""Carrying the training state of a model over to its rebuilt version.

The new model is compiled from the old one's compile config (same loss,
metrics and optimizer configuration) and the optimizer's slot variables
(Adam moments, SGD momentum, ...) are sliced for surviving units and zero for
new ones, with the step counter kept, so training continues where it was.
`compile_fresh` is the opposite: a fresh optimizer (zero slots, step counter
0) whose learning-rate schedule still goes on from where the old one was.
"""

import copy

import keras


def compile_like(new_model, old_model, variable_map=None):
    """Compiles `new_model` like `old_model` and carries optimizer state.

    Does nothing when `old_model` is not compiled.

    Args:
        new_model: the rebuilt model.
        old_model: the model it was rebuilt from.
        variable_map: `(old_variable, new_variable, transform)` triples from
            `Rebuilder.variable_map`; `transform(array, fill="zeros")` maps
            a slot of the old variable to the new layout. Without it, slots are
            carried only between models of the same structure (trainable
            variables paired in order, every shape equal).
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
    # A numpy copy, not the old variable: under JAX the new model's `fit`
    # donates (deletes) its optimizer's arrays, so they must not be shared.
    new_optimizer.iterations.assign(keras.ops.convert_to_numpy(old_optimizer.iterations))
    return new_model


def _variable_pairs(old_model, new_model, variable_map):
    if variable_map is not None:
        return [(o, n, t) for o, n, t in variable_map if o.trainable]
    # Without a map, the models must have the same structure: trainable
    # variables pair up in order, and only if every shape agrees.
    old_variables = old_model.trainable_variables
    new_variables = new_model.trainable_variables
    if len(old_variables) != len(new_variables) or any(
        tuple(o.shape) != tuple(n.shape) for o, n in zip(old_variables, new_variables)
    ):
        return []
    return [(o, n, _unchanged) for o, n in zip(old_variables, new_variables)]


def _unchanged(array, fill=None):
    return array


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


@keras.saving.register_keras_serializable(package="keras_darn")
class StepOffsetSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule read `offset` steps further on.

    A fresh optimizer starts its step counter at 0, which would restart a
    schedule; wrapping the schedule in `StepOffsetSchedule(schedule, steps)`
    makes it continue where the old optimizer was.

    Args:
        schedule: a `keras.optimizers.schedules.LearningRateSchedule` (or its
            serialized config).
        offset: non-negative integer, the steps already taken.

    Example:

    ```python
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=1000)
    later = StepOffsetSchedule(schedule, offset=400)
    later(0)  # == schedule(400)
    ```
    """

    def __init__(self, schedule, offset):
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                "Argument `schedule` must be a keras.optimizers.schedules.LearningRateSchedule. "
                f"Received: schedule={schedule!r}"
            )
        if isinstance(offset, bool) or int(offset) != offset or offset < 0:
            raise ValueError(
                f"Argument `offset` must be a non-negative integer. Received: offset={offset!r}"
            )
        self.schedule = schedule
        self.offset = int(offset)

    def __call__(self, step):
        return self.schedule(step + self.offset)

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "offset": self.offset,
        }


def compile_fresh(new_model, old_model):
    """Compiles `new_model` like `old_model`, with a fresh optimizer.

    The optimizer has the old one's configuration but zero slots and step
    counter (Adam's bias correction starts over), while a learning-rate
    schedule continues from the old optimizer's step instead of restarting.
    Does nothing when `old_model` is not compiled.

    Args:
        new_model: the model to compile (often rebuilt from `old_model`).
        old_model: the compiled model whose configuration is copied.

    Returns:
        `new_model`, compiled.

    Example:

    ```python
    new_model = darn.Rebuilder(model).add({"dense": 8}).build()
    compile_fresh(new_model, model)  # same loss and optimizer, fresh state
    ```
    """
    config = old_model.get_compile_config() if old_model.compiled else None
    if config is None:
        return new_model
    config = copy.deepcopy(config)
    optimizer_config = config.get("optimizer")
    steps = int(old_model.optimizer.iterations.numpy()) if old_model.optimizer else 0
    if steps and isinstance(optimizer_config, dict):
        learning_rate = optimizer_config["config"].get("learning_rate")
        if isinstance(learning_rate, dict):
            schedule = keras.optimizers.schedules.deserialize(learning_rate)
            if isinstance(schedule, StepOffsetSchedule):
                schedule = StepOffsetSchedule(schedule.schedule, schedule.offset + steps)
            else:
                schedule = StepOffsetSchedule(schedule, steps)
            optimizer_config["config"]["learning_rate"] = keras.optimizers.schedules.serialize(schedule)
    new_model.compile_from_config(config)
    return new_model

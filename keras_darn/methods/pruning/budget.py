"""Turning a target in parameters or FLOPs into a uniform pruning fraction."""

import math

from keras_darn.metrics import count_flops
from keras_darn.metrics import count_params
from keras_darn.rebuild import remove_units


def _removal_plan(groups, fraction, target):
    plan = {}
    for group in groups:
        min_units = max(target.min_units_of(n) for n in group.layers)
        count = min(math.ceil(fraction * group.size - 1e-9), group.size - min_units)
        if count > 0:
            first = group.layers[0]
            plan[first] = group.unit_group.indices(first)[:count].tolist()
    return plan


def uniform_fraction(model, groups, target, tolerance=1e-3):
    """The smallest fraction f that, removed from every group, reaches the target.

    Which units go does not change the count, so the count of each candidate
    fraction is measured on the model rebuilt without the first
    `ceil(f * size)` units of every group (`remove_units`), by bisection.

    Args:
        model: the Keras model.
        groups: the probed groups (`ProbedModel.groups`) that may shrink.
        target: a `Target` with `params` or `flops` (an int, or a float in
            `(0, 1]` for that share of the model's own count).
        tolerance: bisection precision on f. Defaults to `1e-3`.

    Returns:
        A float in `[0, 1)`.

    Raises:
        ValueError: when even the smallest widths the target allows
            (`min_units`) stay above it; the message gives both counts.
    """
    if target.params is not None:
        name, goal, counter = "params", target.params, count_params
    else:
        name, goal, counter = "flops", target.flops, count_flops
    original = counter(model)
    if isinstance(goal, float):
        goal = goal * original
    if original <= goal:
        return 0.0

    def count(fraction):
        plan = _removal_plan(groups, fraction, target)
        return counter(remove_units(model, plan, compile=False)) if plan else original

    smallest = count(1.0 - 1e-9)
    if smallest > goal:
        raise ValueError(
            f"The target {name}={target.params if name == 'params' else target.flops!r} cannot "
            f"be reached by removing units of the prunable layers: with every group at its "
            f"minimum width the model still has {smallest:,} {name} (now {original:,})."
        )
    low, high = 0.0, 1.0 - 1e-9
    while high - low > tolerance:
        middle = (low + high) / 2
        if count(middle) <= goal:
            high = middle
        else:
            low = middle
    return high

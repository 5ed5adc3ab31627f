"""Checks of a plan queued on the Rebuilder: its form and its unit indices."""

import numpy as np


def check_plan(plan, argument):
    """Returns `plan` if it is a non-empty dict (keyed by layer name), else raises."""
    if not isinstance(plan, dict) or not plan:
        raise ValueError(
            f"Expected `{argument}` to be a non-empty dict keyed by layer name. "
            f"Received: {argument}={plan!r}"
        )
    return plan


def check_indices(indices, width, name):
    """`indices` as an integer array, checked to lie in `[0, width)` without repeats."""
    array = np.asarray(list(indices) if not np.isscalar(indices) else [indices])
    if array.size == 0:
        raise ValueError(f"Received no unit indices for layer '{name}'.")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"Unit indices of layer '{name}' must be integers. Received: {indices!r}")
    bad = array[(array < 0) | (array >= width)]
    if bad.size:
        raise ValueError(
            f"Unit index value(s) {sorted(set(bad.tolist()))} out of range for layer "
            f"'{name}' with {width} units."
        )
    if len(set(array.tolist())) != array.size:
        raise ValueError(f"Repeated unit indices for layer '{name}'. Received: {indices!r}")
    return array

"""Weight L1 norm of each unit's incoming weights (a data-free baseline).

Li et al., *Pruning Filters for Efficient ConvNets* (cited by DARN): a filter
whose kernel has a small L1 norm contributes little. A unit's score is the
sum of |w| over its incoming kernel weights (the kernel slice along the
output axis); for a group of coupled layers, the mean over its layers.
Masked connections (`kernel_mask`) count as zero.
"""

import keras
import numpy as np

from keras_darn.criteria.base import Criterion
from keras_darn.criteria.base import group_mean
from keras_darn.criteria.base import register_criterion
from keras_darn.graph import handlers as handlers_lib
from keras_darn.graph import registry


def incoming_weight_l1(layer):
    """Sum of |w| of each output unit's incoming weights in `layer`.

    Args:
        layer: a built producer layer (`Dense`, `Conv2D`, ...).

    Returns:
        A float64 array with one entry per output unit.

    Raises:
        ValueError: if the layer has no kernel with an output axis.
    """
    axes = registry.get_handler(layer).weight_axes(layer)
    weights = {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}
    mask = weights.get("kernel_mask")
    for name, weight_axes in axes.items():
        kinds = set(weight_axes.values())
        if name in ("unit_mask", "kernel_mask") or name not in weights:
            continue
        if handlers_lib.OUT not in kinds or len(kinds) < 2:
            continue
        value = np.abs(weights[name].astype(np.float64))
        if mask is not None and mask.shape == value.shape:
            value = value * mask
        out_axis = [a for a, k in weight_axes.items() if k == handlers_lib.OUT][0]
        return np.moveaxis(value, out_axis, -1).reshape(-1, value.shape[out_axis]).sum(0)
    raise ValueError(
        f"Layer '{layer.name}' of type {type(layer).__name__} has no kernel with an "
        "output-unit axis; weight-norm scores need one."
    )


@register_criterion("weight_l1", "WeightL1")
class WeightL1(Criterion):
    """Scores each unit by the L1 norm of its incoming weights (no data).

    Args:
        batch_size: unused; kept for a uniform constructor. Defaults to
            `256`.

    Example:

    ```python
    scores = darn.criteria.WeightL1()(model)
    ```
    """

    name = "weight_l1"
    needs_data = False

    def score(self, probed, x, y, strategy):
        per_gate = {}
        for group in probed.groups:
            for gate in probed.gates_of(group.key):
                per_gate[gate.name] = incoming_weight_l1(gate.layer)
        return group_mean(probed, per_gate)

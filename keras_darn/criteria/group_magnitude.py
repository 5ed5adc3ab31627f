"""Group weight magnitude and BatchNorm scale: data-free criteria over whole groups.

A unit of a coupled group lives in several weight tensors: the output slice
of every producer kernel in the group (its filters), the input slice of every
layer that reads it (the next convolution's or Dense's rows, a depthwise
kernel's channel), and the scale of every normalization it passes through.
`GroupMagnitude` scores a unit by summing `|w| ** p` over all of these
slices, the group-level magnitude importance of Torch-Pruning (Fang et al.,
*DepGraph: Towards Any Structural Pruning*, CVPR 2023); with only the
producers' kernels and `p=1` it is Li et al.'s filter L1 norm. `BatchNormScale`
scores a unit by the `|gamma|` of the BatchNormalization layers it passes
through (Liu et al., *Learning Efficient Convolutional Networks through
Network Slimming*, ICCV 2017). Neither needs data.

Which slices belong to a unit is read from the coupled-unit trace
(`keras_darn.graph.UnitGraph`) and each layer's registered weight axes, so
every layer type the Rebuilder handles is scored without a rule of its own.
"""

import collections

import keras
import numpy as np

from keras_darn.criteria.base import Criterion
from keras_darn.criteria.base import register_criterion
from keras_darn.graph import registry
from keras_darn.graph.unit_graph import UnitGraph

_BOOKKEEPING = ("unit_mask", "kernel_mask")
_SCALES = ("gamma",)


def member_slices(model, keys_by_root, p=2.0, scales_only=False):
    """Sums `|w| ** p` of every weight slice that belongs to each group unit.

    Args:
        model: the Keras model (masked layers allowed: masked connections
            count as zero).
        keys_by_root: `{unit-trace root: (group key, unit position)}`.
        p: the exponent. Defaults to `2`.
        scales_only: only normalization scales (`gamma`). Defaults to
            `False` (kernels of every layer and normalization scales; biases
            and moving statistics are left out, as in Torch-Pruning).

    Returns:
        `{group key: {weight path: array over the group's units}}`: one
        contribution per weight tensor that holds the group's units.
    """
    graph = UnitGraph(model)
    contributions = collections.defaultdict(dict)
    sizes = collections.Counter(key for key, _ in keys_by_root.values())
    for layer in {id(v): v for v in graph.layers.values()}.values():
        if not getattr(layer, "weights", None):  # op nodes have none
            continue
        try:
            pairs = registry.get_handler(layer).variable_axes(layer)
        except (ValueError, KeyError):
            continue
        kernel_mask = next((w for w in layer.weights if w.name == "kernel_mask"), None)
        for variable, axes in pairs:
            if variable.name in _BOOKKEEPING or not variable.trainable:
                continue
            is_scale = variable.name in _SCALES
            if (scales_only and not is_scale) or (len(variable.shape) < 2 and not is_scale):
                continue
            value = np.abs(keras.ops.convert_to_numpy(variable).astype(np.float64)) ** p
            if kernel_mask is not None and tuple(kernel_mask.shape) == value.shape:
                value = value * keras.ops.convert_to_numpy(kernel_mask)
            for axis, kind in axes.items():
                axis = axis % value.ndim
                ids = graph.axis_ids(layer, kind, value.shape[axis])
                if ids is None:
                    continue
                per_position = np.moveaxis(value, axis, 0).reshape(value.shape[axis], -1).sum(1)
                for position, unit_id in enumerate(ids):
                    found = keys_by_root.get(graph.root(unit_id))
                    if found is None:
                        continue
                    key, unit = found
                    row = contributions[key].setdefault(
                        f"{variable.path}:{axis}", np.zeros(sizes[key])
                    )
                    row[unit] += per_position[position]
    return contributions


def group_roots(probed, graph=None):
    """`{unit-trace root: (group key, unit position)}` for the probed groups."""
    graph = graph or UnitGraph(probed.model)
    roots = {}
    for group in probed.groups:
        layer = probed.member_layer(group.key)
        ids = graph.spaces[id(layer)].ids[group.indices(group.key)]
        for unit, unit_id in enumerate(ids):
            roots[graph.root(unit_id)] = (group.key, unit)
    return roots


def _summed(probed, p, scales_only):
    contributions = member_slices(probed.model, group_roots(probed), p, scales_only)
    scores = {}
    for group in probed.groups:
        rows = list(contributions.get(group.key, {}).values())
        scores[group.key] = np.sum(rows, axis=0) if rows else np.full(group.size, np.nan)
    return scores


@register_criterion("magnitude", "GroupMagnitude")
class GroupMagnitude(Criterion):
    """Scores each unit by `sum |w| ** p` over every weight slice of its group (no data).

    The slices are the unit's outgoing filters in every producer of its
    coupled group, its input rows in every layer that reads it, and its
    normalization scales: the whole cost of the unit in the network.

    Args:
        p: the exponent, `1` (L1) or `2` (squared L2). Defaults to `2`.
        batch_size: unused; kept for a uniform constructor. Defaults to
            `256`.

    Raises:
        ValueError: if `p` is not a positive number.

    Example:

    ```python
    scores = darn.criteria.GroupMagnitude(p=1)(model)
    ```
    """

    name = "magnitude"
    needs_data = False
    reads_weights_only = True
    default_p = 2.0

    def __init__(self, p=None, batch_size=256):
        super().__init__(batch_size)
        p = self.default_p if p is None else p
        if isinstance(p, bool) or not isinstance(p, (int, float)) or p <= 0:
            raise ValueError(
                f"Received an invalid value for `p`, expected a positive number. Received: p={p!r}"
            )
        self.p = float(p)

    def score(self, probed, x, y, strategy):
        return _summed(probed, self.p, scales_only=False)

    def get_config(self):
        return {**super().get_config(), "p": self.p}


@register_criterion("magnitude_l1", "GroupMagnitudeL1")
class GroupMagnitudeL1(GroupMagnitude):
    """`GroupMagnitude` with `p=1` (the L1 norm over the group's slices).

    Example:

    ```python
    scores = darn.criteria.GroupMagnitudeL1()(model)
    ```
    """

    name = "magnitude_l1"
    default_p = 1.0


@register_criterion("bn_scale", "BatchNormScale")
class BatchNormScale(Criterion):
    """Scores each unit by `|gamma|` of the BatchNormalization layers it passes (no data).

    Groups that pass through no normalization layer are scored by their
    L1 weight magnitude instead (`GroupMagnitudeL1`); pruning normalizes
    scores per group, so both kinds can share one global ranking.

    Args:
        batch_size: unused; kept for a uniform constructor. Defaults to
            `256`.

    Example:

    ```python
    scores = darn.criteria.BatchNormScale()(model)
    ```
    """

    name = "bn_scale"
    needs_data = False
    reads_weights_only = True

    def score(self, probed, x, y, strategy):
        scores = _summed(probed, 1.0, scales_only=True)
        missing = [k for k, v in scores.items() if not np.isfinite(v).any()]
        if missing:
            fallback = _summed(probed, 1.0, scales_only=False)
            scores.update({k: fallback[k] for k in missing})
        return scores

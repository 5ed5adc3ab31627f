"""Unit masks on every member of a coupled group, kept while a model trains.

Masking a unit zeroes every entry of every weight that `remove_units` would
drop with it: the producers' kernel columns and biases, the consumers'
kernel rows, BatchNormalization's gamma and beta, depthwise kernels, an
attention head's query, key, value and output slices, the gate slices of a
recurrent unit. The Rebuilder's plans name those entries (`kept_entries`),
so a masked unit leaves its group as exactly zero and no layer reads it: the
masked model computes what the rebuilt one computes, on every architecture
the Rebuilder supports. A variable constraint multiplies each weight by its
masks after every optimizer step (Torch-Pruning calls this soft pruning), so
the masked entries stay zero however the optimizer moves them.

Units that reach a layer normalizing over its channels (`LayerNormalization`,
`GroupNormalization`) cannot be masked exactly: their zero still counts in
the statistics. `UnitMasks.inexact_reason` says so, and such groups are left
to the Rebuilder between fits.
"""

import contextlib

import keras
import numpy as np
from keras import ops

from keras_darn.graph import registry
from keras_darn.graph.channels import Channels
from keras_darn.graph.nodes import leaf_layers
from keras_darn.rebuild.rebuilder import Rebuilder

# A masked channel enters BatchNormalization as 0. Its running mean is
# zeroed too, so that the channel also leaves as 0 without a gamma
# (`scale=False`): (0 - 0) / sqrt(variance + epsilon) + 0. Its batch mean
# is 0 from then on, so the running mean stays 0. The running variance is
# left as it is (it only divides that 0).
_KEPT_STATISTICS = ("moving_variance",)


class MaskConstraint(keras.constraints.Constraint):
    """Multiplies a weight by one 0/1 vector per unit axis, after another constraint.

    Args:
        masks: `[(axis, keras.Variable of shape (weight.shape[axis],))]`.
        inner: the constraint the weight had before, or `None`.
    """

    def __init__(self, masks, inner=None):
        self.masks = list(masks)
        self.inner = inner

    def __call__(self, weight):
        if self.inner is not None:
            weight = self.inner(weight)
        rank = len(weight.shape)
        for axis, mask in self.masks:
            shape = [1] * rank
            shape[axis] = -1
            weight = weight * ops.cast(ops.reshape(mask, shape), weight.dtype)
        return weight


def kept_entries(rebuilder):
    """Which entries of each weight a Rebuilder's queued removals keep, without building.

    The entries `rebuilder.build()` would drop are exactly those listed here
    as not kept: each weight is resized by the same `LayerPlan.transform`.

    Args:
        rebuilder: a `Rebuilder` with removals queued (and no additions).

    Returns:
        `[(variable, {axis: bool array})]`, one entry per weight with a
        dropped entry: along each listed axis, which positions are kept
        (an entry is kept when it is kept along every axis).

    Raises:
        ValueError: when units were queued for addition.
    """
    if rebuilder.adds_units:
        raise ValueError("`kept_entries` describes removals only; units were queued to add.")
    _, plans = rebuilder.layer_plans()
    entries = []
    for layer in leaf_layers(rebuilder.model):
        plan = plans.get(id(layer))
        if plan is None:
            continue
        for position, variable in enumerate(layer.weights):
            kept = plan.kept_positions(position, tuple(variable.shape))
            if any(not k.all() for k in kept.values()):
                entries.append((variable, kept))
    return entries


def inexact_roots(rebuilder):
    """`{root: reason}` of the units of `rebuilder.model` no mask can remove exactly.

    A layer that normalizes over its channels (`LayerNormalization`,
    `GroupNormalization`: handlers with `exact_growth = False`) computes
    its statistics from every channel it reads, a zeroed one included, so a
    unit that reaches it is removed exactly only by rebuilding the model.
    """
    layout, _ = rebuilder.layer_plans()
    roots = {}
    for key, layer in layout.layers.items():
        if registry.get_handler(layer).exact_growth:
            continue
        for channels in layout.inputs.get(key) or []:
            known = Channels(channels.ids[channels.ids >= 0])
            for root in rebuilder.graph.roots(known):
                roots.setdefault(int(root), (
                    f"layer '{layer.name}' ({type(layer).__name__}) normalizes over "
                    "these channels together"))
    return roots


_ATTRIBUTE = "_keras_darn_unit_masks"


def masks_of(model):
    """The `UnitMasks` of `model`, attached to it on first use.

    The masks belong to the model, so that `keras_darn.shrink(model)` finds
    the masked units, and a second `fit` (or a second callback) sees what
    the first masked.
    """
    masks = getattr(model, _ATTRIBUTE, None)
    if masks is None:
        masks = UnitMasks(model)
        # Not tracked by Keras: it holds no state a weights file must save.
        object.__setattr__(model, _ATTRIBUTE, masks)
    return masks


def masked_plan(model):
    """`{layer_name: [indices]}` of the units masked through `masks_of(model)`."""
    masks = getattr(model, _ATTRIBUTE, None)
    return dict(masks.plan) if masks is not None else {}


class UnitMasks:
    """Masks of a model's units, applied to every weight a unit owns.

    Args:
        model: a built functional or Sequential `keras.Model`; its weights
            are masked in place (constraints are attached to its variables).

    Example:

    ```python
    masks = UnitMasks(model)
    masks.install()                      # before the model is trained
    masks.set({"conv": [0, 3]})          # those units of conv's group are 0
    model.fit(x, y)                      # and stay 0
    small = darn.remove_units(model, {"conv": [0, 3]})  # same outputs
    ```
    """

    def __init__(self, model):
        self.model = model
        self._masks = {}  # id(variable) -> (variable, {axis: mask variable})
        self._inexact = None
        self.plan = {}

    def install(self):
        """Attaches a mask constraint to every trainable weight with unit axes.

        Call it before the training step is traced (before `fit`, or let the
        callback call it in `on_train_begin`); installing twice is a no-op.
        """
        if self._masks:
            return
        scope = getattr(self.model, "distribute_strategy", None)
        with scope.scope() if scope is not None else contextlib.nullcontext():
            for layer in leaf_layers(self.model):
                if not getattr(layer, "weights", None):
                    continue
                for variable, axes in registry.get_handler(layer).variable_axes(layer):
                    if not variable.trainable or id(variable) in self._masks:
                        continue
                    rank = len(variable.shape)
                    masks = {
                        axis % rank: keras.Variable(
                            np.ones(variable.shape[axis], dtype="float32"), trainable=False,
                            name=f"{variable.name}_unit_mask_{axis % rank}")
                        for axis in axes
                    }
                    self._masks[id(variable)] = (variable, masks)
                    variable.constraint = MaskConstraint(
                        sorted(masks.items()), variable.constraint)

    def set(self, plan):
        """Masks exactly the units of `plan` (`{layer_name: [indices]}`), every other unit live.

        Zeroes the weight entries the masked units own, and sets the
        constraints that keep them zero. Units of a group named through any
        member are masked in every member.
        """
        self.install()
        plan = {name: list(indices) for name, indices in (plan or {}).items() if len(indices)}
        kept = {}
        if plan:
            rebuilder = Rebuilder(self.model).remove(plan)
            kept = {id(v): (v, axes) for v, axes in kept_entries(rebuilder)}
        for key, (variable, masks) in self._masks.items():
            axes = kept.get(key, (None, {}))[1]
            for axis, mask in masks.items():
                mask.assign(axes[axis].astype("float32") if axis in axes
                            else np.ones(mask.shape, "float32"))
        for variable, axes in kept.values():
            if variable.name in _KEPT_STATISTICS:
                continue
            value = keras.ops.convert_to_numpy(variable)
            for axis, keep in axes.items():
                shape = [1] * value.ndim
                shape[axis] = -1
                value = value * keep.reshape(shape).astype(value.dtype)
            variable.assign(value)
        self.plan = plan

    def add(self, plan):
        """Masks the units of `plan` too (`{layer_name: [indices]}`), keeping those masked."""
        merged = {name: set(indices) for name, indices in self.plan.items()}
        for name, indices in plan.items():
            merged.setdefault(name, set()).update(int(i) for i in indices)
        self.set({name: sorted(indices) for name, indices in merged.items()})

    def inexact_reason(self, layer_name, indices=None):
        """Why units of `layer_name` cannot be masked exactly, or `None`."""
        if self._inexact is None:
            self._rebuilder = Rebuilder(self.model)
            self._inexact = inexact_roots(self._rebuilder)
        for root in self._rebuilder.roots_of(layer_name, indices):
            reason = self._inexact.get(int(root))
            if reason is not None:
                return reason
        return None


def live_units(model, groups, member_layer):
    """`{group key: bool array}`: the units not masked off.

    Masked units are those of the model's unit masks
    (`keras_darn.rebuild.unit_masks`, set during `fit`) and those switched
    off in a layer with a unit mask of its own (`get_unit_mask`).

    Args:
        model: the model.
        groups: its `UnitGroup`s.
        member_layer: `member_layer(name)`, the member layer object of a name.
    """
    masked = masked_plan(model)
    live = {}
    for group in groups:
        alive = np.ones(group.size, dtype=bool)
        for name in group.layers:
            if name in masked:
                alive[np.isin(group.indices(name), masked[name])] = False
            layer = member_layer(name)
            if hasattr(layer, "get_unit_mask"):
                alive &= layer.get_unit_mask()[group.indices(name)] > 0
        live[group.key] = alive
    return live

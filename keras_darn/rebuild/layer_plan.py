"""Per-layer plans: new config, new weights and their optimizer-slot maps."""

import warnings

import keras
import numpy as np

from keras_darn.graph import handlers as handlers_lib
from keras_darn.graph import registry
from keras_darn.rebuild import weight_transfer
from keras_darn.rebuild.plain_layers import plain_equivalent


class LayerPlan:
    """How one layer's weights and config change."""

    def __init__(self, layer, inputs, outputs, input_constants, growth, rng):
        self.layer = layer
        self.handler = registry.get_handler(layer)
        self.inputs = inputs
        self.outputs = outputs
        self.input_constants = input_constants
        self.growth = growth
        self.rng = rng

    def width(self):
        return None if self.outputs is None else len(self.outputs)

    def axis_channels(self, kind):
        if kind == handlers_lib.OUT:
            return self.outputs
        if kind == handlers_lib.IN_X_M and self.inputs is not None:
            multiplier = getattr(self.layer, "depth_multiplier", 1)
            return self.inputs.repeat(multiplier) if multiplier > 1 else self.inputs
        return self.inputs

    def transform(self, name, array, fill=None):
        axes = self.handler.weight_axes(self.layer).get(name, {})
        kinds = set(axes.values())
        for axis, kind in sorted(axes.items(), key=lambda item: item[1] != handlers_lib.OUT):
            channels = self.axis_channels(kind)
            if channels is None:
                continue
            if kind == handlers_lib.OUT:
                role = "incoming" if len(kinds) > 1 else "vector"
            else:
                role = "outgoing" if handlers_lib.OUT in kinds else "channel"
            array = weight_transfer.resize_axis(
                array, axis, channels, role, name, self.growth, self.rng, fill
            )
        return array

    def absorbed_constants(self, weights):
        """Bias change from removed input channels that held a constant."""
        fold = getattr(self.handler, "fold_weight", None)
        if not fold or self.inputs is None or self.input_constants is None:
            return None
        removed = np.setdiff1d(np.arange(len(self.input_constants)), self.inputs.origin)
        values = self.input_constants[removed] if len(removed) else np.zeros(0)
        live = np.isfinite(values) & (values != 0)
        if not live.any():
            return None
        kernel = weights[fold]
        if "kernel_mask" in weights:
            kernel = kernel * weights["kernel_mask"]
        rows = np.moveaxis(kernel, -2, 0)[removed[live]]
        rows = rows.reshape(len(rows), -1, kernel.shape[-1]).sum(axis=1)
        return (values[live][:, None] * rows).sum(axis=0)


def clone_resized(layer, plan, keep_masks):
    """A fresh layer like `layer`, at its planned width."""
    cls, config = type(layer), layer.get_config()
    if not keep_masks and not _keeps_masked_units(layer, plan):
        plain = plain_equivalent(layer)
        if plain is not None:
            cls, config = plain
    if plan is not None and plan.outputs is not None:
        config[plan.handler.width_arg] = plan.width()
    if plan is not None and plan.inputs is not None:
        config = plan.handler.adapt_config(layer, config, len(plan.inputs))
    if plan is not None and config.get("use_bias") is False:
        weights = {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}
        if plan.absorbed_constants(weights) is not None:
            config["use_bias"] = True
    return cls.from_config(config)


def _keeps_masked_units(layer, plan):
    """Whether masked-off units survive the rebuild (so the mask must stay)."""
    mask = next((w for w in layer.weights if w.name == "unit_mask"), None)
    if mask is None:
        return False
    value = keras.ops.convert_to_numpy(mask)
    if plan is not None:
        value = plan.transform("unit_mask", value)
    if value.all():
        return False
    warnings.warn(
        f"Layer '{layer.name}' keeps {int((value == 0).sum())} masked-off unit(s) that "
        "cannot be removed exactly (their constant output is not absorbed by every "
        "consumer), so it keeps its mask.",
        stacklevel=4,
    )
    return True


def copy_weights(layer, clone, plan):
    """Assigns the clone's weights; returns `(old, new, transform)` triples."""
    old = {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}
    sources = {w.name: w for w in layer.weights}
    clone_names = {w.name for w in clone.weights}
    absorbed = plan.absorbed_constants(old) if plan is not None else None
    mapping = []
    for variable in clone.weights:
        name = variable.name
        if name in old:
            value = _bake_masks(name, old, clone_names)
            if plan is not None:
                value = plan.transform(name, value)
        elif name == "bias" and absorbed is not None:
            value = np.zeros(variable.shape, dtype=variable.dtype)
        else:
            continue
        if name == "bias" and absorbed is not None:
            value = value + _resize_out(plan, absorbed).astype(value.dtype)
        variable.assign(value)
        if name in sources:
            mapping.append((sources[name], variable, _Transform(plan, name)))
    return mapping


def _bake_masks(name, old, clone_names):
    """Folds masks into kernel and bias when the clone has no masks."""
    value = old[name]
    if "kernel_mask" in old and "kernel_mask" not in clone_names and name == "kernel":
        value = value * old["kernel_mask"]
    if "unit_mask" in old and "unit_mask" not in clone_names and name in ("kernel", "bias"):
        value = value * old["unit_mask"]
    return value


class _Transform:
    """Maps an old weight (or optimizer slot) array to the new layout."""

    def __init__(self, plan, name):
        self.plan = plan
        self.name = name

    def __call__(self, array, fill=None):
        if self.plan is None:
            return array
        return self.plan.transform(self.name, array, fill)


def _resize_out(plan, vector):
    if plan.outputs is None:
        return vector
    return weight_transfer.resize_axis(vector, 0, plan.outputs, "vector", "bias", {}, plan.rng, fill="zeros")

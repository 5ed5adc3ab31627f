"""Per-layer plans: new config, new weights and their optimizer-slot maps.

Weights travel by structure: the variables of a layer are matched to the
new layer's by their order in `layer.weights` (the same class built from a
config makes the same variables in the same order, sublayers included), and
each is resized by the axis map its handler gives for that variable
(`LayerHandler.variable_axes`). Names are only read to fold masks into the
plain layer a masked layer becomes on export, where the two classes differ.
"""

import warnings

import keras
import numpy as np

from keras_darn.graph import registry
from keras_darn.graph.channels import Channels
from keras_darn.graph.unit_axes import OWN
from keras_darn.graph.unit_axes import as_unit_axis
from keras_darn.graph.unit_axes import axis_role
from keras_darn.graph.unit_axes import parts_of
from keras_darn.rebuild import weight_transfer

_MASKS = ("unit_mask", "kernel_mask")


class LayerPlan:
    """How one layer's weights and config change.

    Args:
        layer: the original layer.
        inputs: list of `Channels`, the new layout of each input tensor
            (None when unknown).
        outputs: `Channels` of the layer's own units in the new model, or
            None for a layer without units of its own.
        parts: `{part key: Channels}` of the layer's parts' units.
        input_constants: constants of the first input's channels (for
            `shrink`), or None.
        growth: `{new unit id: (init, noise)}`.
        rng: a `numpy.random.Generator`.
    """

    def __init__(self, layer, inputs, outputs, input_constants, growth, rng, parts=None):
        self.layer = layer
        self.handler = registry.get_handler(layer)
        self.input_list = list(inputs or [])
        self.inputs = self.input_list[0] if self.input_list else None
        self.outputs = outputs
        self.parts = dict(parts or {})
        self.input_constants = input_constants
        self.growth = growth
        self.rng = rng
        # Op nodes (`x * 2.0`) have no `weights`.
        weights = getattr(layer, "weights", ())
        axes = {id(v): a for v, a in self.handler.variable_axes(layer)} if weights else {}
        self.axes = [axes.get(id(w), {}) for w in weights]

    # ---- The view handlers read (see LayerHandler.planned_config) --------
    def channels(self, space):
        """New `Channels` of a unit space ("out", "in", "in:<k>", "part:<name>")."""
        if space == OWN:
            return self.outputs
        if space == "in":
            return self.inputs
        if space.startswith("in:"):
            k = int(space[3:])
            return self.input_list[k] if k < len(self.input_list) else None
        if space.startswith("part:"):
            return self.parts.get(space[5:])
        return None

    def width(self, space=OWN):
        """New width of a unit space, or None where the plan does not know it."""
        channels = self.channels(space)
        return None if channels is None else len(channels)

    # ---- Weights --------------------------------------------------------
    def transform(self, position, array, fill=None):
        """Resizes the value of `layer.weights[position]` (or one of its slots)."""
        axes = {a: as_unit_axis(k, self.layer) for a, k in self.axes[position].items()}
        kinds = list(axes.values())

        def role(kind):
            return axis_role(kind, kinds)

        order = sorted(axes.items(), key=lambda item: role(item[1]) not in ("incoming", "vector"))
        name = self.layer.weights[position].name
        for axis, kind in order:
            channels = self.channels(kind.space)
            if channels is None:
                continue
            if kind.repeat > 1:
                channels = channels.repeat(kind.repeat)
            if kind.blocks > 1:
                old = array.shape[axis] // kind.blocks
                channels = Channels.concatenate([channels] * kind.blocks, [old] * kind.blocks)
            array = weight_transfer.resize_axis(
                array, axis, channels, role(kind), name, self.growth, self.rng, fill
            )
        return array

    def kept_positions(self, position, shape):
        """`{axis: bool array}`: which positions of `layer.weights[position]` survive.

        Found by resizing an array of position codes with `transform`, the
        very slicing the weights go through, so the two cannot disagree.
        """
        kept = {}
        unit_axes = sorted({a % len(shape) for a in self.axes[position]})
        # Only the unit axes are sliced: the others can have length 1.
        code_shape = [n if a in unit_axes else 1 for a, n in enumerate(shape)]
        for axis in unit_axes:
            view = [-1 if a == axis else 1 for a in range(len(shape))]
            codes = np.broadcast_to(
                np.arange(shape[axis], dtype=np.int64).reshape(view), code_shape)
            moved = np.moveaxis(self.transform(position, codes), axis, 0)
            survivors = moved.reshape(len(moved), -1)[:, 0] if moved.size else []
            keep = np.zeros(shape[axis], dtype=bool)
            keep[np.asarray(survivors, dtype=np.int64)] = True
            kept[axis] = keep
        return kept

    def absorbed_constants(self, weights):
        """Bias change from removed input channels that held a constant.

        `None` where there is none, or where it is zero everywhere (the
        rows reading those channels are zero, as after unit masks): a layer
        without a bias then keeps none.
        """
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
        change = (values[live][:, None] * rows).sum(axis=0)
        return change if np.any(change) else None


def make_plan(layer, layout, new_spaces, constants, growth, rng):
    """The `LayerPlan` of one layer from the layout trace of a rebuild."""
    parts = {
        key: new_spaces[id(part)]
        for key, part in parts_of(layer).items()
        if id(part) in new_spaces
    }
    return LayerPlan(
        layer,
        inputs=layout.inputs.get(id(layer)),
        outputs=new_spaces.get(id(layer)),
        input_constants=constants.get(id(layer)),
        growth=growth,
        rng=rng,
        parts=parts,
    )


def clone_resized(layer, plan, keep_masks):
    """A fresh layer like `layer`, at its planned width."""
    # Op nodes and Lambda layers are carried by their handler, without a
    # round trip through their config (a Lambda's would need unsafe
    # deserialization; see `keras_darn.graph.op_nodes` and `LambdaHandler`).
    carry = getattr(registry.get_handler(layer), "carry", None)
    carried = None if carry is None else carry(layer, None if plan is None else plan.inputs)
    if carried is not None:
        return carried
    cls, config = type(layer), layer.get_config()
    if not keep_masks and not _keeps_masked_units(layer, plan):
        # A masked layer registered with a plain form (`register_layer(...,
        # plain_layer=...)`) is built as that plain Keras layer.
        plain_layer = registry.describe(layer).plain_layer
        if plain_layer is not None:
            cls, config = plain_layer(layer)
    if plan is not None:
        config = plan.handler.planned_config(layer, config, plan)
        # A handler may rebuild the layer as a class of its choice (see
        # `_built_alike`), e.g. keras-hub's blocks with an explicit head size.
        planned_class = getattr(plan.handler, "planned_class", None)
        if planned_class is not None:
            cls = planned_class(layer, cls, config)
    if plan is not None and config.get("use_bias") is False:
        if plan.absorbed_constants(_own_values(layer)) is not None:
            config["use_bias"] = True
    return cls.from_config(config)


def _own_values(layer):
    return {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}


def _keeps_masked_units(layer, plan):
    """Whether masked-off units survive the rebuild (so the mask must stay)."""
    position = next((i for i, w in enumerate(layer.weights) if w.name == "unit_mask"), None)
    if position is None:
        return False
    value = keras.ops.convert_to_numpy(layer.weights[position])
    if plan is not None:
        value = plan.transform(position, value)
    if value.all():
        return False
    warnings.warn(
        f"Layer '{layer.name}' keeps {int((value == 0).sum())} masked-off unit(s) that "
        "cannot be removed exactly (their constant output is not absorbed by every "
        "consumer), so it keeps its mask.",
        stacklevel=4,
    )
    return True


def variable_pairs(layer, clone):
    """`[(position in layer.weights, new variable)]`, matched by structure.

    The same class gives the same variables in the same order (so does a
    class the layer's handler picks with `planned_class`); a masked layer
    exported as its plain class (or a layer that gains a bias) is matched by
    its own weights' names, which are unique in such layers.

    Raises:
        ValueError: where neither rule matches the variables unambiguously.
    """
    old, new = layer.weights, clone.weights
    if _built_alike(layer, clone) and len(old) == len(new):
        return list(enumerate(new))
    old_names = [w.name for w in old]
    new_names = [w.name for w in new]
    if len(set(old_names)) != len(old_names) or len(set(new_names)) != len(new_names):
        raise ValueError(
            f"Cannot match the weights of layer '{layer.name}' ({type(layer).__name__}, "
            f"{len(old)} weights) to its rebuilt form ({type(clone).__name__}, {len(new)} "
            "weights): they differ in number and their names repeat."
        )
    return [(old_names.index(v.name), v) for v in new if v.name in old_names]


def _built_alike(layer, clone):
    """Whether `clone` makes the same variables as `layer`, in the same order:
    the same class, or a class its handler's `planned_class` picks (a handler
    that defines it promises that)."""
    if type(layer) is type(clone):
        return True
    return getattr(registry.get_handler(layer), "planned_class", None) is not None


def copy_weights(layer, clone, plan):
    """Assigns the clone's weights; returns `(old, new, transform)` triples."""
    old_values = [keras.ops.convert_to_numpy(w) for w in layer.weights]
    pairs = variable_pairs(layer, clone)
    absorbed = None
    if plan is not None and getattr(plan.handler, "fold_weight", None):
        absorbed = plan.absorbed_constants(_own_values(layer))
    by_name = {w.name: v for w, v in zip(layer.weights, old_values)}
    clone_names = {v.name for v in clone.weights}
    values = [None] * len(old_values)
    for position, _ in pairs:
        value = _bake_masks(layer.weights[position].name, by_name, old_values[position], clone_names)
        values[position] = plan.transform(position, value) if plan is not None else value
    if plan is not None:
        values = plan.handler.finish_weights(layer, values, plan)
    mapping = []
    matched = set()
    for position, variable in pairs:
        value = values[position]
        if variable.name == "bias" and absorbed is not None:
            value = value + _resize_out(plan, absorbed).astype(value.dtype)
        variable.assign(value)
        matched.add(id(variable))
        mapping.append((layer.weights[position], variable, _Transform(plan, position)))
    if absorbed is not None:
        for variable in clone.weights:
            if id(variable) not in matched and variable.name == "bias":
                variable.assign(_resize_out(plan, absorbed).astype(variable.dtype))
    return mapping


def _bake_masks(name, old, value, clone_names):
    """Folds masks into kernel and bias when the clone has no masks."""
    if "kernel_mask" in old and "kernel_mask" not in clone_names and name == "kernel":
        value = value * old["kernel_mask"]
    if "unit_mask" in old and "unit_mask" not in clone_names and name in ("kernel", "bias"):
        value = value * old["unit_mask"]
    return value


class _Transform:
    """Maps an old weight (or optimizer slot) array to the new layout."""

    def __init__(self, plan, position):
        self.plan = plan
        self.position = position

    def __call__(self, array, fill=None):
        if self.plan is None:
            return array
        return self.plan.transform(self.position, array, fill)


def _resize_out(plan, vector):
    if plan.outputs is None:
        return vector
    return weight_transfer.resize_axis(vector, 0, plan.outputs, "vector", "bias", {}, plan.rng, fill="zeros")

"""The one-call forms of the Rebuilder: remove, add, shrink, insert."""

import sys

import keras
import numpy as np

from keras_darn.graph import registry
from keras_darn.graph.nodes import is_graph_model
from keras_darn.graph.nodes import leaf_layers
from keras_darn.graph.unit_graph import functional_of
from keras_darn.rebuild.rebuilder import Rebuilder
from keras_darn.rebuild.training_state import compile_like
from keras_darn.rebuild.unit_masks import masked_plan


def remove_units(model, plan, compile=True):
    """Returns a new model without the given units (and those coupled).

    Args:
        model: a functional or Sequential Keras model; it is not modified.
        plan: `{layer_name: [unit indices]}`.
        compile: when `model` is compiled, compile the new model the same
            way and carry the optimizer state over. Defaults to `True`.

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: unknown layer names (close names are suggested), fixed
            units, indices out of range or repeated, or a plan that would
            leave a layer without units.

    Example:

    ```python
    smaller = darn.remove_units(model, {"dense": [0, 5, 7]})
    ```
    """
    rebuilder = Rebuilder(model).remove(plan)
    return _finish(rebuilder, rebuilder.build(), compile)


def add_units(model, plan, init="zeros_out", sources=None, noise=0.0, seed=None, compile=True):
    """Returns a new model with more units in the given layers.

    With `init="zeros_out"` (new units' outgoing weights are zero) or
    `init="net2net"` with `noise=0` (copies of existing units that share their
    outgoing weights), the new model computes the same outputs.

    Args:
        model: a functional or Sequential Keras model; it is not modified.
        plan: `{layer_name: number of new units}`.
        init: "zeros_out", "net2net" or "random". Defaults to "zeros_out".
        sources: `{layer_name: [indices]}` of the units "net2net" copies;
            random when omitted. Defaults to `None`.
        noise: relative noise on Net2WiderNet copies. Defaults to `0.0`.
        seed: seed of the random draws. Defaults to `None`.
        compile: compile like `model` and carry optimizer state (new
            units' slots start at zero). Defaults to `True`.

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: unknown layer names, fixed units, bad counts or
            sources; a layer that makes or feeds a grouped convolution
            grows by a multiple of its `groups` (one new channel at the end
            of every group), and another count is refused.

    Example:

    ```python
    wider = darn.add_units(model, {"conv2d": 16}, init="net2net")
    ```
    """
    rebuilder = Rebuilder(model, seed=seed).add(plan, init=init, sources=sources, noise=noise)
    return _finish(rebuilder, rebuilder.build(), compile)


def shrink(model, keep_masks=False, compile=True):
    """Removes masked-off and provably dead units; outputs stay the same.

    Units masked during `fit` (their weights zeroed on every member of their
    group, see `keras_darn.rebuild.unit_masks`) are removed. Units switched
    off by a layer's unit mask (and units whose incoming weights are all
    zero) hold a constant; every such unit is removed when
    each layer that consumes it can take the constant into its bias
    exactly. Masked layers come out as the plain Keras layer they register
    (`keras_darn.graph.register_layer(..., plain_layer=...)`) unless
    `keep_masks=True`.

    Args:
        model: a functional or Sequential Keras model; it is not modified.
        keep_masks: keep prunable layers and their masks. Defaults to `False`.
        compile: compile like `model` and carry optimizer state. Defaults
            to `True`.

    Returns:
        A new, smaller `keras.Model` computing the same function.

    Example:

    ```python
    model.get_layer("dense").set_unit_mask(mask)
    small = darn.shrink(model)  # plain Dense layers, masked units gone
    ```
    """
    rebuilder = Rebuilder(model)
    plan = masked_plan(model)
    if plan:
        rebuilder.remove(plan)
    rebuilder.remove_dead()
    return _finish(rebuilder, rebuilder.build(keep_masks=keep_masks), compile)


def unfold_blocks(model):
    """`model` with the keras_darn blocks a rebuild may write replaced by plain Keras layers.

    The Rebuilder keeps a keras-hub `TransformerEncoder` or
    `TransformerDecoder` whose head count changed as keras_darn's
    `HeadSizedTransformerEncoder` / `HeadSizedTransformerDecoder` (the
    keras-hub blocks derive their head size from their width). Here each one
    called on the top-level graph is written out as the Keras layers it is
    made of (`MultiHeadAttention`, `LayerNormalization`, `Dropout`, `Dense`,
    `Add`), with its weights: the model computes the same outputs and
    loads without keras_darn. The methods' `Result.model` is this model.

    Args:
        model: a functional or Sequential Keras model; it is not modified.

    Returns:
        `model` itself when it holds no such block, else a new functional
        model that reuses `model`'s other layers, compiled like `model` if
        that is compiled.

    Example:

    ```python
    smaller = darn.rebuild.unfold_blocks(darn.remove_units(model, {"dense": [0]}))
    ```
    """
    blocks = sys.modules.get("keras_darn.graph.keras_hub_blocks")  # imported with such a block
    plain = model if blocks is None else blocks.unfold_head_sized_blocks(model)
    if plain is not model:
        compile_like(plain, model)
    return plain


def insert_layer(model, after, layer, identity=False, compile=True):
    """Returns a new model with `layer` applied to the output of `after`.

    Layers whose input width changes because of the insertion start from
    fresh weights (a warning names them); every other weight is copied.

    Args:
        model: a functional or Sequential Keras model; it is not modified.
        after: name of the layer whose output feeds the new layer.
        layer: a new, unbuilt Keras layer.
        identity: initialise `layer` so the model computes the same
            function: its first units copy the input channels, any further
            units get random incoming and zero outgoing weights (the layers
            reading it keep their weights, with zero rows for the extra
            units). Possible for `Dense` and `Conv2D` ('same' padding, odd
            kernel, stride 1) with at least as many units as their input has
            channels and a linear or ReLU activation (ReLU is exact after a
            non-negative output, e.g. a ReLU). Defaults to `False`.
        compile: compile like `model`. Defaults to `True`.

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: unknown `after`, a `layer` already in use,
            `identity=True` where the layer cannot pass its input through,
            or an insertion that changes the input shape of a `Lambda`
            (Lambda layers are carried as they are, never deserialized).

    Example:

    ```python
    deeper = darn.insert_layer(model, after="dense",
                               layer=keras.layers.Dense(40, activation="relu"))
    ```
    """
    if not isinstance(layer, keras.layers.Layer):
        raise ValueError(f"Expected `layer` to be a Keras layer. Received: layer={layer!r}")
    if layer.built:
        raise ValueError(
            f"Expected a new, unbuilt `layer`; layer '{layer.name}' is already built."
        )
    names = [l.name for l in model.layers]
    if after not in names:
        import difflib

        close = difflib.get_close_matches(str(after), names, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(f"No layer named '{after}' in model '{model.name}'.{hint}")
    anchor = model.get_layer(after)
    clones = {}

    def clone_layer(old):
        # Lambda layers and op nodes are carried, never deserialized, in
        # nested models too.
        if is_graph_model(old):
            clone = keras.models.clone_model(old, clone_function=clone_layer)
        else:
            clone = registry.fresh_copy(old)
        clones[id(old)] = clone
        return clone

    if isinstance(model, keras.Sequential):
        functional_of(model)
        position = names.index(after) + 1
        new_layers = [clone_layer(l) for l in model.layers]
        new_layers.insert(position, layer)
        new_model = keras.Sequential(
            [keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype)] + new_layers,
            name=model.name,
        )
    else:

        def call_layer(clone, *args, **kwargs):
            outputs = clone(*args, **kwargs)
            return layer(outputs) if clone is clones.get(id(anchor)) else outputs

        new_model = keras.models.clone_model(
            model, clone_function=clone_layer, call_function=call_layer
        )
    _check_lambda_inputs(model, clones)
    if identity:
        _check_identity(layer, _width(anchor))
    reinitialised = []
    variable_map = []
    for old in model.layers:
        clone = clones.get(id(old))
        if clone is None:
            continue
        old_weights = old.get_weights()
        if [w.shape for w in old_weights] == [tuple(w.shape) for w in clone.weights]:
            clone.set_weights(old_weights)
            variable_map.extend(
                (a, b, _unchanged) for a, b in zip(old.weights, clone.weights)
            )
        elif identity and _widened_inputs(old_weights, clone):
            # The new layer passes the old channels first: the old rows read them.
            clone.set_weights(
                [_pad_rows(w, v) for w, v in zip(old_weights, clone.weights)]
            )
        else:
            reinitialised.append(old.name)
    if reinitialised:
        import warnings

        warnings.warn(
            f"insert_layer: the input width of {reinitialised} changed, so they start "
            "from fresh weights.",
            stacklevel=2,
        )
    if identity:
        _set_identity(layer)
    if compile:
        compile_like(new_model, model, variable_map=variable_map)
    return new_model


def _check_lambda_inputs(model, clones):
    """A Lambda is carried as it is, so its input must keep its shape."""
    for old in leaf_layers(model):
        clone = clones.get(id(old))
        if not isinstance(old, keras.layers.Lambda) or clone is None:
            continue
        before, after = tuple(old.input.shape), tuple(clone.input.shape)
        if before != after:
            raise ValueError(
                f"insert_layer changes the input of Lambda layer '{old.name}' from shape "
                f"{before} to {after}; keras_darn carries a Lambda as it is and cannot know "
                "how it uses its channels. Insert a layer that keeps the width, or replace "
                "the Lambda with a built-in or registered layer."
            )


def _unchanged(array, fill=None):
    return array


def _width(layer):
    shape = layer.output.shape
    return int(shape[-1])


def _widened_inputs(old_weights, clone):
    """Whether the clone's weights only grew along the input axis (-2)."""
    if len(old_weights) != len(clone.weights):
        return False
    for old, new in zip(old_weights, clone.weights):
        new = tuple(new.shape)
        if old.shape == new:
            continue
        if len(old.shape) < 2 or old.shape[:-2] + old.shape[-1:] != new[:-2] + new[-1:]:
            return False
        if new[-2] < old.shape[-2]:
            return False
    return True


def _pad_rows(array, variable):
    """Old rows first; new rows 0 (1 for a connection mask, so they can learn)."""
    shape = tuple(variable.shape)
    if array.shape == shape:
        return array
    fill = 1.0 if variable.name == "kernel_mask" else 0.0
    padded = np.full(shape, fill, dtype=array.dtype)
    padded[..., : array.shape[-2], :] = array
    return padded


def _check_identity(layer, width):
    if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
        raise ValueError(
            f"`identity=True` needs a Dense or Conv2D layer. Received: {type(layer).__name__}"
        )
    units = layer.units if isinstance(layer, keras.layers.Dense) else layer.filters
    activation = getattr(layer.activation, "__name__", "")
    if units < width or activation not in ("linear", "relu"):
        raise ValueError(
            f"`identity=True` needs at least as many units as input channels ({width}) and a "
            f"linear or relu activation. Received: units={units}, activation={activation!r}"
        )
    if isinstance(layer, keras.layers.Conv2D) and (
        layer.padding != "same"
        or any(k % 2 == 0 for k in layer.kernel_size)
        or any(s != 1 for s in layer.strides)
        or getattr(layer, "groups", 1) != 1
    ):
        raise ValueError(
            "`identity=True` needs a Conv2D with padding='same', odd kernel sizes, "
            f"strides 1 and groups 1. Received: padding={layer.padding!r}, "
            f"kernel_size={layer.kernel_size}, strides={layer.strides}"
        )


def _set_identity(layer):
    """First units copy the input channels; extra units keep their random
    incoming weights and have zero outgoing weights (see `_pad_rows`)."""
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    n_in = kernel.shape[-2]
    centre = tuple(s // 2 for s in kernel.shape[:-2])
    kernel[..., :n_in] = 0.0
    kernel[centre + (slice(None), slice(0, n_in))] = np.eye(n_in, dtype=kernel.dtype)
    layer.kernel.assign(kernel)
    if layer.use_bias:
        layer.bias.assign(np.zeros(layer.bias.shape, dtype=kernel.dtype))


def _finish(rebuilder, new_model, compile):
    if compile:
        compile_like(new_model, rebuilder.model, variable_map=rebuilder.variable_map)
    return new_model

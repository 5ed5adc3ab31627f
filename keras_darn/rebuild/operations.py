"""The one-call forms of the Rebuilder: remove, add, shrink, insert."""

import keras
import numpy as np

from keras_darn.graph.unit_graph import functional_of
from keras_darn.rebuild.rebuilder import Rebuilder
from keras_darn.rebuild.training_state import compile_like


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

    Example:

    ```python
    wider = darn.add_units(model, {"conv2d": 16}, init="net2net")
    ```
    """
    rebuilder = Rebuilder(model, seed=seed).add(plan, init=init, sources=sources, noise=noise)
    return _finish(rebuilder, rebuilder.build(), compile)


def shrink(model, keep_masks=False, compile=True):
    """Removes masked-off and provably dead units; outputs stay the same.

    Units switched off by the masks of `PrunableDense`/`PrunableConv2D`
    (and units whose incoming weights are all zero) hold a constant; every
    such unit is removed when each layer that consumes it can take the
    constant into its bias exactly. Our prunable layers come out as plain
    `Dense`/`Conv2D` unless `keep_masks=True`.

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
    rebuilder = Rebuilder(model).remove_dead()
    return _finish(rebuilder, rebuilder.build(keep_masks=keep_masks), compile)


def insert_layer(model, after, layer, identity=False, compile=True):
    """Returns a new model with `layer` applied to the output of `after`.

    Layers whose input width changes because of the insertion start from
    fresh weights (a warning names them); every other weight is copied.

    Args:
        model: a functional or Sequential Keras model; it is not modified.
        after: name of the layer whose output feeds the new layer.
        layer: a new, unbuilt Keras layer.
        identity: initialise `layer` to the identity, so the model computes
            the same function. Possible for `Dense` and `Conv2D` with as many
            units as their input has channels and a linear or ReLU activation
            (ReLU only after a ReLU-like output). Defaults to `False`.
        compile: compile like `model`. Defaults to `True`.

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: unknown `after`, a `layer` already in use, or
            `identity=True` where the layer cannot represent the identity.

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
        clone = old.__class__.from_config(old.get_config())
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
    reinitialised = []
    for old in model.layers:
        clone = clones.get(id(old))
        if clone is None:
            continue
        if [tuple(w.shape) for w in old.weights] == [tuple(w.shape) for w in clone.weights]:
            clone.set_weights(old.get_weights())
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
        compile_like(new_model, model, variable_map=None)
    return new_model


def _set_identity(layer):
    if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
        raise ValueError(
            f"`identity=True` needs a Dense or Conv2D layer. Received: {type(layer).__name__}"
        )
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    n_in, n_out = kernel.shape[-2], kernel.shape[-1]
    activation = getattr(layer.activation, "__name__", "")
    if n_in != n_out or activation not in ("linear", "relu"):
        raise ValueError(
            f"`identity=True` needs as many units as input channels ({n_in}) and a linear "
            f"or relu activation. Received: units={n_out}, activation={activation!r}"
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
    identity = np.zeros_like(kernel)
    centre = tuple(s // 2 for s in kernel.shape[:-2])
    identity[centre + (slice(None), slice(None))] = np.eye(n_in, dtype=kernel.dtype)
    layer.kernel.assign(identity)
    if layer.use_bias:
        layer.bias.assign(np.zeros(n_out, dtype=kernel.dtype))


def _finish(rebuilder, new_model, compile):
    if compile:
        compile_like(new_model, rebuilder.model, variable_map=rebuilder.variable_map)
    return new_model

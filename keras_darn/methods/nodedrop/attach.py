"""NodeDrop at model level: put the regularizers on every eligible layer."""

import warnings

import keras

from keras_darn import layers as darn_layers
from keras_darn.graph import registry
from keras_darn.layers.conversion import clone_with_weights
from keras_darn.methods.nodedrop import condition
from keras_darn.methods.nodedrop import regularizers


def _prunable_class(layer):
    if hasattr(layer, "set_unit_mask"):
        return type(layer)
    if type(layer) is keras.layers.Dense:
        return darn_layers.PrunableDense
    if type(layer) is keras.layers.Conv2D:
        return darn_layers.PrunableConv2D
    return None


def attach_nodedrop(
    model,
    lam=1e-5,
    c=1.0,
    batch_size=None,
    input_range=None,
    prunable=True,
    return_report=False,
):
    """Returns a copy of `model` with NodeDrop regularizers on eligible layers.

    Every Dense/Conv2D unit group that `nodedrop_eligibility` covers gets the
    NodeDrop penalty `lam * (sum(max(w, 0)) + |b + c|)` per unit (as its
    `kernel_regularizer` and `bias_regularizer`, replacing any it had), and
    every BatchNormalization of a NodeDrop-BN group gets
    `lam * (|gamma| * sqrt(batch_size) + |beta + c|)` (as its
    `gamma_regularizer` and `beta_regularizer`). With `prunable=True` the
    layers computing those units become `PrunableDense` / `PrunableConv2D`
    so that the `NodeDrop` callback can switch dead units off. All weights are
    copied; the input model is not modified. The new model is not compiled.
    Layers with weights that NodeDrop does not cover are listed, with the
    reason, in one warning.

    Args:
        model: a built Functional or Sequential `keras.Model`.
        lam: penalty weight lambda, >= 0 (the paper recommends 1e-5 with a
            cross-entropy loss). Defaults to `1e-5`.
        c: positive target distance of the biases below 0. Defaults to
            `1.0`.
        batch_size: training batch size m (per replica); required when the
            model has NodeDrop-BN units. Defaults to `None`.
        input_range: range of the model inputs, e.g. `(0, 1)` for images
            scaled to [0, 1]; see `nodedrop_eligibility`. Defaults to `None`.
        prunable: convert the covered Dense/Conv2D layers to their prunable
            versions. Defaults to `True`.
        return_report: also return the `NodeDropEligibility` of the new
            model. Defaults to `False`.

    Returns:
        The new `keras.Model`, or `(model, report)` with
        `return_report=True`.

    Raises:
        ValueError: if `lam < 0`, `c <= 0`, the model is not a built
            Functional/Sequential model, or it has NodeDrop-BN units and
            `batch_size` is not a positive integer.

    Example:

    >>> model = attach_nodedrop(model, lam=1e-5, input_range=(0, 1))
    >>> model.compile("adam", "sparse_categorical_crossentropy")
    """
    unit_regs = regularizers.nodedrop_regularizers(lam, c)
    eligibility = condition.nodedrop_eligibility(model, input_range)
    covers = [g.nodedrop for g in eligibility.groups]
    bn_covers = [c for c in covers if c.kind == condition.KIND_NODEDROP_BN]
    bn_regs = None
    if bn_covers:
        if batch_size is None:
            raise ValueError(
                "The model has NodeDrop-BN units (BatchNormalization "
                f"'{bn_covers[0].bn_layer.name}' before ReLU), whose penalty "
                "needs the training batch size m. Received: batch_size=None"
            )
        bn_regs = regularizers.nodedrop_bn_regularizers(lam, c, batch_size)
    producers = {id(c.layer): c for c in covers}
    bn_layers = {id(c.bn_layer) for c in bn_covers}
    replaced = []

    def clone_layer(layer):
        if id(layer) not in producers and id(layer) not in bn_layers:
            return registry.fresh_copy(layer)  # a Lambda is carried, never deserialized
        config = layer.get_config()
        cls = type(layer)
        cover = producers.get(id(layer))
        if cover is not None:
            if prunable:
                cls = _prunable_class(layer) or cls
            if cover.kind == condition.KIND_NODEDROP:
                for key in unit_regs:
                    if config.get(key) is not None:
                        replaced.append(f"{layer.name}.{key}")
                config.update(unit_regs)
        elif id(layer) in bn_layers:
            for key in bn_regs:
                if config.get(key) is not None:
                    replaced.append(f"{layer.name}.{key}")
            config.update(bn_regs)
        return cls.from_config(config)

    clone = clone_with_weights(model, clone_layer, keep_input_names=True)
    if replaced:
        warnings.warn(
            f"attach_nodedrop replaced existing regularizers: {replaced}.",
            stacklevel=2,
        )
    _warn_ineligible(eligibility)
    if return_report:
        return clone, condition.nodedrop_eligibility(clone, input_range)
    return clone


def detach_nodedrop(model):
    """Returns a copy of `model` without its NodeDrop penalties.

    Every `NodeDropRegularizer` and `NodeDropBNRegularizer` (as a kernel,
    bias, gamma or beta regularizer) is removed; other regularizers, the
    layer classes, all weights and the unit masks are kept, so units that
    NodeDrop switched off stay off and the copy computes the same outputs.
    Use it to fine-tune without the penalty after NodeDrop has found the
    size, before or after `shrink` (which keeps regularizers). The input
    model is not modified; the copy is not compiled.

    Args:
        model: a built Functional or Sequential `keras.Model`.

    Returns:
        The new `keras.Model`.

    Example:

    >>> model = attach_nodedrop(model, lam=1e-4, input_range=(0, 1))
    >>> model.compile("adam", "sparse_categorical_crossentropy")
    >>> model.fit(x, y, epochs=20, callbacks=[NodeDrop(input_range=(0, 1))])
    >>> small = detach_nodedrop(shrink(model, compile=False))
    >>> small.compile("adam", "sparse_categorical_crossentropy")
    >>> small.fit(x, y, epochs=4)  # fine-tune the found size, penalty off
    """
    nodedrop_types = (regularizers.NodeDropRegularizer, regularizers.NodeDropBNRegularizer)
    keys = ("kernel_regularizer", "bias_regularizer", "gamma_regularizer", "beta_regularizer")

    def clone_layer(layer):
        if not any(isinstance(getattr(layer, key, None), nodedrop_types) for key in keys):
            return registry.fresh_copy(layer)  # a Lambda is carried, never deserialized
        config = layer.get_config()
        for key in keys:
            if isinstance(getattr(layer, key, None), nodedrop_types):
                config[key] = None
        return type(layer).from_config(config)

    return clone_with_weights(model, clone_layer, keep_input_names=True)


def _warn_ineligible(eligibility):
    if not eligibility.groups:
        warnings.warn(
            "NodeDrop found no eligible layer; the model is unchanged apart "
            "from the copy. " + eligibility.summary(),
            stacklevel=3,
        )
        return
    if eligibility.ineligible:
        details = "; ".join(f"'{i.name}': {i.reason}" for i in eligibility.ineligible)
        warnings.warn(
            f"NodeDrop does not cover {len(eligibility.ineligible)} layer(s) "
            f"with weights: {details}",
            stacklevel=3,
        )

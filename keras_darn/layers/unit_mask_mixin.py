"""Per-unit (and optional per-connection) masks shared by the prunable layers."""

import inspect

import numpy as np
from keras import ops

from keras_darn.graph.handlers import IN
from keras_darn.graph.handlers import OUT
from keras_darn.graph.keras_layers import DENSE_AXES
from keras_darn.graph.registry import register_layer

_UNIT_MASK_KEY = "unit_mask"
_KERNEL_MASK_KEY = "kernel_mask"


class _MaskedRegularizer:
    """Applies a weight regularizer to the masked weight.

    Keras regularizes the raw variable; wrapping it keeps the penalty's
    gradient off masked weights, so a masked unit gets no gradient at all.
    """

    def __init__(self, regularizer, mask_fn):
        self.regularizer = regularizer
        self.mask_fn = mask_fn

    def __call__(self, weight):
        return self.regularizer(weight * ops.cast(self.mask_fn(), weight.dtype))


def _validated_mask(mask, expected_shape, arg_name):
    """Returns `mask` as a float32 array, checking its shape and 0/1 values."""
    mask = np.asarray(ops.convert_to_numpy(mask))
    if mask.shape != tuple(expected_shape):
        raise ValueError(
            f"Received an invalid value for `{arg_name}`: expected shape "
            f"{tuple(expected_shape)}. Received: {arg_name} with shape "
            f"{mask.shape}"
        )
    mask = mask.astype("float32")
    bad = ~((mask == 0.0) | (mask == 1.0))
    if bad.any():
        raise ValueError(
            f"Received an invalid value for `{arg_name}`: every entry must be "
            f"0 or 1. Received: {arg_name} containing "
            f"{np.unique(mask[bad])[:5].tolist()}"
        )
    return mask


class UnitMaskMixin:
    """Adds a non-trainable per-unit mask to a Dense-like or conv layer.

    Mixed into `PrunableDense` and `PrunableConv2D` ahead of the Keras base
    class. The host layer calls `_init_masks` in `__init__`, `_build_masks`
    at the end of `build`, and `_masked_kernel` / `_unit_mask_as` in `call`;
    it defines `_units_argument` (`"units"` or `"filters"`).

    Masked weights keep their values; they are multiplied by zero in the
    forward pass, so they receive exactly zero gradient (including from the
    layer's own kernel and bias regularizers). An optimizer that still holds
    momentum for them, or applies decoupled weight decay, can move them;
    that does not change the layer's output.
    """

    _units_argument = "units"

    def _init_masks(self, connection_mask):
        if not isinstance(connection_mask, bool):
            raise ValueError(
                "Received an invalid value for `connection_mask`, expected a "
                f"bool. Received: connection_mask={connection_mask!r}"
            )
        self.connection_mask = connection_mask
        self.unit_mask = None
        self.kernel_mask = None

    @property
    def _num_units(self):
        return getattr(self, self._units_argument)

    def _build_masks(self):
        self.unit_mask = self.add_weight(
            name=_UNIT_MASK_KEY,
            shape=(self._num_units,),
            initializer="ones",
            trainable=False,
            dtype="float32",
        )
        if self.connection_mask:
            self.kernel_mask = self.add_weight(
                name=_KERNEL_MASK_KEY,
                shape=tuple(self._kernel.shape),
                initializer="ones",
                trainable=False,
                dtype="float32",
            )
        if self._kernel.regularizer is not None:
            self._kernel.regularizer = _MaskedRegularizer(
                self._kernel.regularizer, self._kernel_mask_product
            )
        if self.bias is not None and self.bias.regularizer is not None:
            self.bias.regularizer = _MaskedRegularizer(
                self.bias.regularizer, lambda: self.unit_mask
            )

    def _kernel_mask_product(self):
        """The combined 0/1 multiplier of the kernel (float32)."""
        mask = self.unit_mask
        if self.kernel_mask is not None:
            mask = ops.multiply(self.kernel_mask, mask)
        return mask

    def _unit_mask_as(self, dtype):
        return ops.cast(self.unit_mask, dtype)

    def _masked_kernel(self):
        kernel = self.kernel
        return ops.multiply(
            kernel, ops.cast(self._kernel_mask_product(), kernel.dtype)
        )

    def _masked_bias(self):
        return ops.multiply(self.bias, self._unit_mask_as(self.bias.dtype))

    def _require_built(self, method):
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' must be built before calling "
                f"`{method}`: call it on an input or call `build(input_shape)`."
            )

    def set_unit_mask(self, mask):
        """Switches units on (1) or off (0), in place.

        The mask variable is assigned, not replaced, so a callback can call
        this during `fit` (also under a `tf.distribute` strategy) and the next
        training step uses the new mask without retracing.

        Args:
            mask: Array-like of 0/1 values with one entry per unit.

        Raises:
            ValueError: If the layer is not built, or `mask` has the wrong
                shape or holds values other than 0 and 1.
        """
        self._require_built("set_unit_mask")
        self.unit_mask.assign(
            _validated_mask(mask, self.unit_mask.shape, "mask")
        )

    def get_unit_mask(self):
        """Returns the unit mask as a float32 NumPy array of 0s and 1s."""
        self._require_built("get_unit_mask")
        return np.array(ops.convert_to_numpy(self.unit_mask))

    @property
    def active_units(self):
        """Number of units whose mask entry is 1."""
        return int(np.sum(self.get_unit_mask()))

    def _require_kernel_mask(self, method):
        self._require_built(method)
        if self.kernel_mask is None:
            raise ValueError(
                f"Layer '{self.name}' has no kernel mask: create it with "
                f"`connection_mask=True` to use `{method}`. Received: "
                f"connection_mask={self.connection_mask}"
            )

    def set_kernel_mask(self, mask):
        """Switches single connections (kernel entries) on (1) or off (0).

        Args:
            mask: Array-like of 0/1 values with the kernel's shape.

        Raises:
            ValueError: If the layer was created without
                `connection_mask=True`, is not built, or `mask` has the wrong
                shape or holds values other than 0 and 1.
        """
        self._require_kernel_mask("set_kernel_mask")
        self.kernel_mask.assign(
            _validated_mask(mask, self.kernel_mask.shape, "mask")
        )

    def get_kernel_mask(self):
        """Returns the connection mask as a float32 NumPy array.

        Raises:
            ValueError: If the layer was created without
                `connection_mask=True` or is not built.
        """
        self._require_kernel_mask("get_kernel_mask")
        return np.array(ops.convert_to_numpy(self.kernel_mask))

    def quantize(self, mode=None, **kwargs):
        raise ValueError(
            f"Layer '{self.name}' ({type(self).__name__}) cannot be quantized: "
            "its masks apply to a float kernel. Convert the model first with "
            "`keras_darn.shrink(model)` or `keras_darn.layers.from_prunable"
            f"(model)`. Received: mode={mode!r}"
        )

    def save_own_variables(self, store):
        # The base class only writes kernel and bias; the masks are state too.
        super().save_own_variables(store)
        if not self.built:
            return
        store[_UNIT_MASK_KEY] = self.unit_mask
        if self.kernel_mask is not None:
            store[_KERNEL_MASK_KEY] = self.kernel_mask

    def load_own_variables(self, store):
        super().load_own_variables(store)
        if not self.built:
            return
        self.unit_mask.assign(store[_UNIT_MASK_KEY])
        if self.kernel_mask is not None:
            self.kernel_mask.assign(store[_KERNEL_MASK_KEY])

    def get_config(self):
        base_config = super().get_config()
        return {**base_config, "connection_mask": self.connection_mask}


MASK_AXES = {_UNIT_MASK_KEY: {0: OUT}, _KERNEL_MASK_KEY: {-2: IN, -1: OUT}}


def register_masked_layer(layer_class, plain_class, handler_class, width_arg):
    """Describes a masked layer to the core: its masks and the plain layer it becomes.

    Args:
        layer_class: the masked layer class (a subclass of `plain_class`).
        plain_class: the Keras layer it is exported as.
        handler_class: the unit handler class of `plain_class`
            (`ProducerHandler` or `GroupedConvHandler`).
        width_arg: the constructor argument holding the number of units.
    """

    def plain_layer(layer):
        extra = set(inspect.signature(layer_class.__init__).parameters) - set(
            inspect.signature(plain_class.__init__).parameters
        )
        config = {k: v for k, v in layer.get_config().items() if k not in extra}
        return plain_class, config

    register_layer(
        layer_class,
        handler=handler_class(width_arg, {**DENSE_AXES, **MASK_AXES}, fold_weight="kernel"),
        bookkeeping_weights=tuple(MASK_AXES),
        plain_layer=plain_layer,
    )

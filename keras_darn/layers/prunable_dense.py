"""PrunableDense: a Dense layer whose units can be switched off by a mask."""

import keras
from keras import ops

from keras_darn.graph.handlers import ProducerHandler
from keras_darn.layers.unit_mask_mixin import UnitMaskMixin
from keras_darn.layers.unit_mask_mixin import register_masked_layer


@keras.saving.register_keras_serializable(package="keras_darn")
class PrunableDense(UnitMaskMixin, keras.layers.Dense):
    """Densely-connected layer with a non-trainable per-unit mask.

    Computes
    `activation(inputs @ (kernel * unit_mask) + bias * unit_mask) * unit_mask`,
    so a unit whose mask entry is 0 outputs exactly 0 whatever its activation
    and its kernel column and bias get exactly zero gradient. The masks are
    ordinary non-trainable weights: a callback changes them during `fit`
    with `set_unit_mask`, and they are saved with the model. With all-ones
    masks the layer computes the same function as `keras.layers.Dense`.

    Args:
        units: Positive integer, dimensionality of the output space.
        connection_mask: Boolean. If `True`, the layer also holds a
            non-trainable `kernel_mask` of the kernel's shape that switches
            single connections off (`set_kernel_mask`). Defaults to `False`.
        **kwargs: Other `keras.layers.Dense` keyword arguments, with
            Dense's defaults: `activation`, `use_bias`,
            `kernel_initializer`, `bias_initializer`, `kernel_regularizer`
            and `bias_regularizer` (applied to the masked kernel and bias),
            `activity_regularizer`, `kernel_constraint`, `bias_constraint`,
            `lora_rank`, `name`, `dtype`, ...

    Attributes:
        unit_mask: Non-trainable float32 weight of shape `(units,)`, created
            in `build`.
        kernel_mask: Non-trainable float32 weight of the kernel's shape when
            `connection_mask=True`, otherwise `None`.

    Raises:
        ValueError: If `units` is not a positive integer or `connection_mask`
            is not a bool.

    Example:

    >>> layer = keras_darn.layers.PrunableDense(4, activation="relu")
    >>> y = layer(np.ones((2, 3)))
    >>> layer.set_unit_mask([1, 0, 1, 1])
    >>> layer(np.ones((2, 3)))[:, 1]
    array([0., 0.], dtype=float32)
    >>> layer.active_units
    3
    """

    _units_argument = "units"

    def __init__(self, units, connection_mask=False, **kwargs):
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(
                "Received an invalid value for `units`, expected a positive "
                f"integer. Received: units={units!r}"
            )
        super().__init__(units, **kwargs)
        self._init_masks(connection_mask)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_masks()

    def call(self, inputs, training=None):
        outputs = ops.matmul(inputs, self._masked_kernel())
        if self.bias is not None:
            outputs = ops.add(outputs, self._masked_bias())
        if self.activation is not None:
            outputs = self.activation(outputs)
        return ops.multiply(outputs, self._unit_mask_as(outputs.dtype))


register_masked_layer(PrunableDense, keras.layers.Dense, ProducerHandler, "units")

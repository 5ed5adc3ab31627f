"""PrunableConv2D: a Conv2D layer whose filters can be switched off by a mask."""

import keras
from keras import ops

from keras_darn.graph.handlers import GroupedConvHandler
from keras_darn.layers.unit_mask_mixin import UnitMaskMixin
from keras_darn.layers.unit_mask_mixin import register_masked_layer


@keras.saving.register_keras_serializable(package="keras_darn")
class PrunableConv2D(UnitMaskMixin, keras.layers.Conv2D):
    """2D convolution with a non-trainable per-filter mask.

    Computes
    `activation(conv(inputs, kernel * unit_mask) + bias * unit_mask) * unit_mask`
    with the mask broadcast over the output-channel axis, so a masked filter
    gives an all-zero output channel whatever its activation, and its kernel
    slice and bias get exactly zero gradient. With all-ones masks the layer
    computes the same function as `keras.layers.Conv2D`. Both
    `"channels_last"` and `"channels_first"` data formats are supported; a
    `"channels_first"` layer transposes its input to channels_last, where
    TensorFlow's CPU convolution can run it, and its output back.

    Args:
        filters: Positive integer, the number of output channels.
        kernel_size: Integer or tuple of 2 integers, the convolution window.
        connection_mask: Boolean. If `True`, the layer also holds a
            non-trainable `kernel_mask` of the kernel's shape that switches
            single weights off (`set_kernel_mask`). Defaults to `False`.
        **kwargs: Other `keras.layers.Conv2D` keyword arguments, with
            Conv2D's defaults: `strides`, `padding`, `data_format`
            (`"channels_last"` and `"channels_first"` both work),
            `dilation_rate`, `groups`, `activation`, `use_bias`,
            `kernel_initializer`, `bias_initializer`, `kernel_regularizer`
            and `bias_regularizer` (applied to the masked kernel and bias),
            `activity_regularizer`, `kernel_constraint`, `bias_constraint`,
            `name`, `dtype`, ...

    Attributes:
        unit_mask: Non-trainable float32 weight of shape `(filters,)`, created
            in `build`.
        kernel_mask: Non-trainable float32 weight of the kernel's shape when
            `connection_mask=True`, otherwise `None`.

    Raises:
        ValueError: If `filters` is not a positive integer or
            `connection_mask` is not a bool.

    Example:

    >>> layer = keras_darn.layers.PrunableConv2D(8, 3, activation="relu")
    >>> y = layer(np.ones((1, 5, 5, 3)))
    >>> layer.set_unit_mask([1, 1, 0, 1, 1, 1, 1, 1])
    >>> float(np.abs(layer(np.ones((1, 5, 5, 3)))[..., 2]).max())
    0.0
    """

    _units_argument = "filters"

    def __init__(self, filters, kernel_size, connection_mask=False, **kwargs):
        if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
            raise ValueError(
                "Received an invalid value for `filters`, expected a positive "
                f"integer. Received: filters={filters!r}"
            )
        super().__init__(filters, kernel_size, **kwargs)
        self._init_masks(connection_mask)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_masks()

    def call(self, inputs):
        # TensorFlow's CPU convolution only takes NHWC, and Keras' own
        # channels_first Conv2D fails there: a channels_first layer computes
        # in channels_last order (the kernel layout is the same for both) and
        # transposes its input in and its output back.
        channels_first = self.data_format == "channels_first"
        if channels_first:
            inputs = ops.transpose(inputs, (0, 2, 3, 1))
        outputs = ops.conv(
            inputs,
            self._masked_kernel(),
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format="channels_last",
        )
        if self.use_bias:
            outputs = ops.add(outputs, self._masked_bias())
        if self.activation is not None:
            outputs = self.activation(outputs)
        outputs = ops.multiply(outputs, self._unit_mask_as(outputs.dtype))
        if channels_first:
            outputs = ops.transpose(outputs, (0, 3, 1, 2))
        return outputs


register_masked_layer(PrunableConv2D, keras.layers.Conv2D, GroupedConvHandler, "filters")

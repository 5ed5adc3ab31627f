"""SoftClampedReLU, the NodeDrop activation (Jensen, Harer & Chin)."""

import math

import keras
from keras import ops

from keras_darn.graph.handlers import PassThroughHandler
from keras_darn.graph.output_bounds import always_zeroes
from keras_darn.graph.output_bounds import fixed_bound
from keras_darn.graph.output_bounds import register_activation_bound
from keras_darn.graph.output_bounds import register_zeroing_activation
from keras_darn.graph.registry import register_layer
from keras_darn.graph.flop_counters import per_output_element
from keras_darn.graph.flop_counters import register_activation_flops


def _validate_beta(beta):
    """Returns `beta` as a float, or raises if it is not a positive number."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float)):
        raise ValueError(
            "Received an invalid value for `beta`, expected a positive "
            f"number. Received: beta={beta!r}"
        )
    if not math.isfinite(beta) or beta <= 0:
        raise ValueError(
            "Received an invalid value for `beta`, expected a positive "
            f"finite number. Received: beta={beta}"
        )
    return float(beta)


@keras.saving.register_keras_serializable(package="keras_darn")
def soft_clamped_relu(x, beta=10.0):
    """Soft clamped ReLU: `max(0, 1 - log(1 + exp(beta * (1 - x))) / beta)`.

    The activation is exactly 0 for `x <= 0` and stays in `[0, 1]`: it is a
    ReLU whose upper region bends smoothly towards 1 (an inverted softplus).
    Both properties are what the NodeDrop condition needs to hold layer after
    layer. In exact arithmetic the output is below 1; in float32 it rounds to
    1.0 once `beta * (x - 1)` exceeds about 17.

    The two softplus terms are evaluated on clipped inputs so that neither the
    value nor the gradient overflows, for any finite `x`.

    Args:
        x: Input tensor.
        beta: Positive float, the sharpness of the upper bend. Larger values
            approach `min(1, max(0, x))`. Defaults to `10.0`.

    Returns:
        A tensor of the same shape and dtype as `x`.

    Raises:
        ValueError: If `beta` is not a positive finite number.

    Example:

    >>> x = keras.ops.convert_to_tensor([-1.0, 0.0, 0.5, 1.0, 3.0])
    >>> keras_darn.layers.soft_clamped_relu(x)
    array([0.        , 0.        , 0.49932846, 0.93068528, 1.        ])
    >>> keras.layers.Dense(8, activation=keras_darn.layers.soft_clamped_relu)
    """
    beta = _validate_beta(beta)
    x = ops.convert_to_tensor(x)
    # 1 - softplus(beta * (1 - x)) / beta  ==  x - softplus(beta * (x - 1)) / beta.
    # The first form is accurate above 1, the second below 1 (no cancellation
    # of large terms). Each form only ever sees softplus of a non-positive
    # argument, so no branch overflows and `where` passes no NaN gradient.
    upper_x = ops.maximum(x, 1.0)
    upper = 1.0 - ops.softplus(beta * (1.0 - upper_x)) / beta
    lower_x = ops.minimum(x, 1.0)
    lower = lower_x - ops.softplus(beta * (lower_x - 1.0)) / beta
    value = ops.where(x > 1.0, upper, lower)
    # Written as a select rather than max(0, value) alone so that every
    # x <= 0 gives exactly +0.0.
    return ops.where(x > 0.0, ops.maximum(value, 0.0), ops.zeros_like(x))


@keras.saving.register_keras_serializable(package="keras_darn")
class SoftClampedReLU(keras.layers.Layer):
    """Soft clamped ReLU activation layer, from NodeDrop.

    Computes `max(0, 1 - log(1 + exp(beta * (1 - x))) / beta)` elementwise:
    exactly 0 for `x <= 0`, close to `x` on `(0, 1)`, and bending smoothly
    towards 1 above. Outputs lie in `[0, 1]`, so a following layer's inputs
    are bounded, which is what the NodeDrop dead-unit condition requires.

    Args:
        beta: Positive float, the sharpness of the upper bend. Defaults to
            `10.0` (the value used in the paper).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Raises:
        ValueError: If `beta` is not a positive finite number.

    Example:

    >>> layer = keras_darn.layers.SoftClampedReLU(beta=10.0)
    >>> layer(np.array([-2.0, 0.0, 0.5, 4.0]))
    array([0.        , 0.        , 0.49932846, 1.        ])
    """

    def __init__(self, beta=10.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = _validate_beta(beta)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return soft_clamped_relu(inputs, beta=self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        return {**base_config, "beta": self.beta}


FLOPS_PER_ELEMENT = 8
register_activation_flops("soft_clamped_relu", FLOPS_PER_ELEMENT)
register_activation_bound("soft_clamped_relu", 1.0)
register_zeroing_activation(soft_clamped_relu)
register_layer(
    SoftClampedReLU, handler=PassThroughHandler(), flops=per_output_element(FLOPS_PER_ELEMENT),
    output_bound=fixed_bound(1.0), zeroes_nonpositive=always_zeroes,
)

"""ClampedReLU: `min(1, max(0, x))`."""

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


@keras.saving.register_keras_serializable(package="keras_darn")
def clamped_relu(x):
    """Clamped ReLU: `min(1, max(0, x))`.

    Exactly 0 for `x <= 0` and exactly 1 for `x >= 1`. NodeDrop notes that its
    two flat regions can leave units stuck at 0 or 1; `soft_clamped_relu`
    avoids the upper one.

    Args:
        x: Input tensor.

    Returns:
        A tensor of the same shape and dtype as `x`, with values in `[0, 1]`.

    Example:

    >>> keras_darn.layers.clamped_relu(np.array([-1.0, 0.25, 2.0]))
    array([0.  , 0.25, 1.  ])
    """
    return ops.clip(x, 0.0, 1.0)


@keras.saving.register_keras_serializable(package="keras_darn")
class ClampedReLU(keras.layers.Layer):
    """Clamped ReLU activation layer: `min(1, max(0, x))`.

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> layer = keras_darn.layers.ClampedReLU()
    >>> layer(np.array([-1.0, 0.25, 2.0]))
    array([0.  , 0.25, 1.  ])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return clamped_relu(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


FLOPS_PER_ELEMENT = 1
register_activation_flops("clamped_relu", FLOPS_PER_ELEMENT)
register_activation_bound("clamped_relu", 1.0)
register_zeroing_activation(clamped_relu)
register_layer(
    ClampedReLU, handler=PassThroughHandler(), flops=per_output_element(FLOPS_PER_ELEMENT),
    output_bound=fixed_bound(1.0), zeroes_nonpositive=always_zeroes,
)

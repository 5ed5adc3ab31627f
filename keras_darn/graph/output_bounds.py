"""What each layer type outputs when its inputs lie in [0, s]: an upper bound, or none.

A layer type's rule (`register_layer(..., output_bound=rule)`) is called as
`rule(layer, known)`, `known` holding the bound of each input (`None` where
an input is not known to lie in [0, s]), and returns `s_out` when the output
lies in [0, s_out], else `None`. Shape-only, pooling and merge layers pass the
bound on, dropout scales it by `1 / (1 - rate)` (training scales kept values
so), `Add` sums and `Multiply` multiplies the bounds, and a layer whose last
step is a bounded activation (sigmoid, softmax, relu6, the package's clamped
ReLUs) is bounded whatever its inputs. Methods whose conditions hold for
units with bounded inputs read these rules.

`zeroes_nonpositive(activation)` tells whether an activation function, or a
layer or op node (its type's `register_layer(..., zeroes_nonpositive=rule)`),
outputs exactly 0 for every v <= 0, as ReLU does: a unit whose
pre-activation never exceeds 0 then outputs 0 for every input.
"""

import keras
import numpy as np

from keras_darn.graph import registry

# Upper bounds of activation functions whose outputs lie in [0, bound], by name.
ACTIVATION_BOUNDS = {"sigmoid": 1.0, "hard_sigmoid": 1.0, "softmax": 1.0, "relu6": 6.0}

# Activation functions that are exactly 0 for every v <= 0 (the functions
# themselves: another function of the same name may not be).
ZEROING_ACTIVATIONS = [keras.activations.relu, keras.activations.relu6]


def register_activation_bound(name, bound):
    """Makes an activation function's output range [0, `bound`] known by its name."""
    ACTIVATION_BOUNDS[name] = float(bound)


def register_zeroing_activation(function):
    """Makes an activation function known to be exactly 0 for every v <= 0."""
    if not any(function is known for known in ZEROING_ACTIVATIONS):
        ZEROING_ACTIVATIONS.append(function)


def zeroes_nonpositive(activation):
    """Whether `activation` is exactly 0 for every v <= 0, element by element.

    Args:
        activation: an activation function (see
            `register_zeroing_activation`), or a layer or op node (its type's
            `register_layer(..., zeroes_nonpositive=rule)`).
    """
    if isinstance(activation, keras.Operation):
        rule = registry.describe(activation).zeroes_nonpositive
        return rule is not None and bool(rule(activation))
    return any(activation is function for function in ZEROING_ACTIVATIONS)


def always_zeroes(layer):
    """A `zeroes_nonpositive` rule for layers that are 0 for every v <= 0 whatever their settings."""
    return True


def _relu_zeroes(layer):
    return layer.negative_slope == 0 and layer.threshold >= 0


def _activation_zeroes(layer):
    return zeroes_nonpositive(layer.activation)


def output_bound(layer, known):
    """`s_out` such that `layer`'s output lies in [0, s_out], or `None` if unknown.

    Args:
        layer: a layer (or op node) of a functional graph.
        known: for each of its inputs, `s` when the input lies in [0, s],
            else `None`.
    """
    rule = registry.describe(layer).output_bound
    return rule(layer, list(known)) if rule is not None else None


def looks_through(layer):
    """Whether `layer` only moves, pools or drops its input's values (its input's origin is its own)."""
    return registry.describe(layer).output_bound in (passes_bound, dropout_bound)


def is_linear(activation):
    """Whether `activation` is the identity (`None` or `linear`)."""
    return activation is None or activation is keras.activations.linear


def activation_bound(activation):
    """The bound of an activation function (or activation layer) whatever its input, or `None`."""
    if isinstance(activation, keras.layers.Layer):
        return output_bound(activation, [None])
    return ACTIVATION_BOUNDS.get(getattr(activation, "__name__", None))


def _all_known(known):
    return bool(known) and all(bound is not None for bound in known)


def passes_bound(layer, known):
    """Shape-only, pooling and value-selecting layers: the largest input bound."""
    return max(known) if _all_known(known) else None


def dropout_bound(layer, known):
    """Dropout scales kept values by `1 / (1 - rate)` in training."""
    return max(known) / (1.0 - layer.rate) if _all_known(known) else None


def sum_bound(layer, known):
    return float(sum(known)) if _all_known(known) else None


def product_bound(layer, known):
    return float(np.prod(known)) if _all_known(known) else None


def rescaling_bound(layer, known):
    if not _all_known(known):
        return None
    scale, offset = np.asarray(layer.scale), np.asarray(layer.offset)
    if scale.size == 1 and offset.size == 1 and scale >= 0 and offset >= 0:
        return float(scale * max(known) + offset)
    return None


def relu_bound(layer, known):
    if layer.negative_slope != 0:
        return None
    if layer.max_value is not None:
        return float(layer.max_value)
    return max(known) if _all_known(known) else None


def activation_last_bound(layer, known):
    """Layers whose output is `activation(...)`: the activation's bound; an
    `Activation` layer that is linear or a ReLU passes its input's on."""
    bound = activation_bound(layer.activation)
    if bound is not None:
        return bound
    if isinstance(layer, keras.layers.Activation) and _all_known(known):
        activation = layer.activation
        if is_linear(activation) or activation is keras.activations.relu:
            return max(known)
    return None


def fixed_bound(bound):
    """A rule for layers whose output lies in [0, `bound`] whatever their input."""
    return lambda layer, known: float(bound)


def _classes(names):
    return [getattr(keras.layers, name) for name in names.split() if hasattr(keras.layers, name)]


def _register():
    rules = [
        (passes_bound, "MaxPooling1D MaxPooling2D MaxPooling3D AveragePooling1D AveragePooling2D "
                       "AveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D "
                       "GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D Flatten "
                       "Reshape Permute RepeatVector Cropping1D Cropping2D Cropping3D ZeroPadding1D "
                       "ZeroPadding2D ZeroPadding3D UpSampling1D UpSampling2D UpSampling3D "
                       "Concatenate Maximum Minimum Average Identity ActivityRegularization Masking"),
        (dropout_bound, "Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D"),
        (sum_bound, "Add"),
        (product_bound, "Multiply"),
        (rescaling_bound, "Rescaling"),
        (relu_bound, "ReLU"),
        (activation_last_bound, "Activation Dense EinsumDense Conv1D Conv2D Conv3D Conv1DTranspose "
                                "Conv2DTranspose Conv3DTranspose DepthwiseConv1D DepthwiseConv2D "
                                "SeparableConv1D SeparableConv2D"),
    ]
    for rule, names in rules:
        for layer_class in _classes(names):
            registry.register_layer(layer_class, output_bound=rule)
    registry.register_layer(keras.layers.ReLU, zeroes_nonpositive=_relu_zeroes)
    registry.register_layer(keras.layers.Activation, zeroes_nonpositive=_activation_zeroes)


_register()

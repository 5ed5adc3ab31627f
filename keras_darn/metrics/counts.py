"""Parameter and FLOP counts of a model.

Parameters (`count_params`, `params_by_layer`) leave out keras_darn's
bookkeeping weights. `keras.Model.count_params()` sums every weight of a
model, trainable or not. Layers can carry non-trainable bookkeeping weights,
registered as such with `keras_darn.graph.register_layer(...,
bookkeeping_weights=...)`: masks that record which units and connections are
switched off, or statistics a pruning callback accumulates. These are
bookkeeping, not parameters: they play no part in (or only zero out) the
function the model computes and disappear when `shrink` turns the model into
a plain Keras model, so counting them would make a masked model look larger
than the plain model it stands for. Everything else (kernels, biases,
BatchNormalization moving statistics, ...) is counted the way Keras counts
it.

FLOPs (`count_flops`, `flops_by_layer`) are those of one forward pass, in
inference mode. Conventions (every count is per example, i.e. without the
batch dimension):

- A multiply-add counts as 2 FLOPs; adding a bias counts 1 per output
  element. Every other elementwise arithmetic operation, comparison or clamp,
  and elementary function (exp, log, tanh, erf) counts 1.
- `Dense` (also on inputs of rank > 2, per position): 2 * in_features * units
  per position, plus the bias.
- `Conv1D`/`Conv2D`/`Conv3D`: 2 * prod(kernel_size) * in_channels / groups
  per output element, plus the bias. `DepthwiseConv1D`/`DepthwiseConv2D`:
  2 * prod(kernel_size) per output element, plus the bias.
  `SeparableConv1D`/`SeparableConv2D`: the depthwise part
  (2 * prod(kernel_size) per depthwise output element) plus the pointwise
  part (2 * in_channels * depth_multiplier per output element), plus the
  bias. `Conv*DTranspose`: 2 * prod(kernel_size) * out_channels per input
  element (every input element is scattered over a kernel window), plus the
  bias.
- An activation fused into a layer (`activation=` argument) is counted on top,
  per output element, with the same per-element cost as the activation
  layer (see `flop_counters.ACTIVATION_FLOPS`): linear 0, relu/relu6/clamps
  1, leaky relu 2, tanh/exponential 1, softplus/softsign 3, sigmoid/elu 4,
  silu/swish, gelu (erf form), mish, selu, softmax 5; activations of
  other packages add their own with `register_activation_flops`.
- Layer types registered with a FLOP counter
  (`keras_darn.graph.register_layer(..., flops=...)`) count what their
  counter says; keras_darn's own layers are registered next to their code.
- `MultiHeadAttention`, `GroupQueryAttention`, `SimpleRNN`, `LSTM`, `GRU`
  and `Bidirectional`: projections, attention scores, gates and state
  updates, see `keras_darn.graph.sequence_flops`.
- `BatchNormalization`: 2 per element (inference: folded scale and shift).
  `LayerNormalization` and `GroupNormalization`: 5 per element for the
  statistics and the normalisation (accumulate the mean, subtract it,
  square, accumulate the variance, multiply by the reciprocal standard
  deviation), plus 1 for `scale` and 1 for `center` (7 with the defaults);
  with `rms_scaling`, 4 per element. `UnitNormalization`: 3 per element.
  `Rescaling` and `Normalization`: 2 per element.
- Max and average pooling: the window size, prod(pool_size), per output
  element. Global pooling: 1 per input element.
- `Add`, `Subtract`, `Multiply`, `Maximum`, `Minimum`: n_inputs - 1 per
  output element. `Average`: n_inputs per output element (n - 1 additions and
  one scaling). `Concatenate`: 0. Elementwise `keras.ops` on symbolic
  tensors (`x + y`, `keras.ops.multiply`, ...): 1 per output element;
  activation ops (`keras.ops.relu`, ...) as their activation function;
  reductions (`keras.ops.mean`, `sum`, `max`, ...) 1 per input element, as
  global pooling; reshapes, transposes and casts 0.
- Layers that only move or drop data at inference cost 0: `Flatten`,
  `Reshape`, `Permute`, `RepeatVector`, padding, cropping, nearest-neighbour
  upsampling, `Embedding`, dropout and noise layers, `Identity`, `Masking`,
  `ActivityRegularization`. Bilinear-style upsampling: 2 * 2**spatial_dims
  per output element.
- keras_darn's masks (`unit_mask`, `kernel_mask`) are bookkeeping and cost
  nothing; a masked layer costs what the plain layer costs. Use
  `active_only=True` to count the model with masked-off units removed.
- A layer type with no counter warns once per call, naming the type, and
  counts 0. Add a counter with `keras_darn.graph.register_layer(..., flops=...)`.

Shapes come from the functional graph: every call of a layer is counted (a
layer called twice costs twice), nested models are entered with the shapes
they are actually called with, Sequential models use their graph.
"""

import math

import keras

from keras_darn.graph import flop_counters
from keras_darn.graph import registry
from keras_darn.graph import shape_walk as _graph_walk
from keras_darn.graph.nodes import is_graph_model
from keras_darn.graph.nodes import leaf_layers
from keras_darn.rebuild import shrink


def _parameter_size(variables, seen):
    """Elements of `variables` not in `seen` (ids; bookkeeping ids start there)."""
    total = 0
    for variable in variables:
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        total += math.prod(variable.shape)
    return total


def _check_model(model):
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "Expected a Keras model or layer. "
            f"Received: model={model!r} of type {type(model).__name__}"
        )


def count_params(model, active_only=False):
    """Counts the parameters of a model, leaving out keras_darn's masks.

    Trainable and non-trainable weights are counted the way
    `keras.Model.count_params()` counts them (so BatchNormalization moving
    statistics are included), except that the weights named in
    layers register as bookkeeping (masks, accumulated statistics; see
    `keras_darn.graph.register_layer`) are skipped: `keras_darn.shrink`
    removes them. A variable shared by
    several layers is counted once. Nested models are included.

    Args:
        model: A built `keras.Model` (or layer).
        active_only: If `True`, count only the parameters that survive when
            masked-off units are removed, i.e.
            `count_params(keras_darn.rebuild.shrink(model))`. Defaults to
            `False`.

    Returns:
        The number of parameters, an `int`.

    Raises:
        ValueError: If `model` is not a Keras model or layer, or is not
            built.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    count_params(model)  # 4 * 3 + 3 = 15
    ```
    """
    _check_model(model)
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built, so it has no weights to "
            "count. Build it first (give it a `keras.Input`, call it on "
            "data, or call `model.build(input_shape)`)."
        )
    if active_only:
        return count_params(shrink(model))
    return int(_parameter_size(model.weights, _bookkeeping(model)))


def params_by_layer(model):
    """Counts the parameters of each layer of a model, masks left out.

    Layers of nested models are recursed into and named by their path,
    `"<nested model name>/<layer name>"`. Every layer appears once (a
    layer called several times is counted once), including layers without
    parameters (count 0). The values add up to `count_params(model)`.

    Args:
        model: A built `keras.Model`.

    Returns:
        A `dict` mapping layer name (or path) to its parameter count, in the
        order of `model.layers`.

    Raises:
        ValueError: If `model` is not a Keras model or layer, or is not
            built.

    Example:

    ```python
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="hidden")]
    )
    params_by_layer(model)  # {"hidden": 15}
    ```
    """
    _check_model(model)
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built. Build it first (give it a "
            "`keras.Input`, call it on data, or call "
            "`model.build(input_shape)`)."
        )
    counts = {}
    _collect_layer_params(model, "", counts, set(), _bookkeeping(model))
    return counts


def _collect_layer_params(model, prefix, counts, seen_layers, seen_variables):
    for layer in model.layers:
        if id(layer) in seen_layers:
            continue
        seen_layers.add(id(layer))
        if isinstance(layer, keras.layers.InputLayer):
            continue
        name = prefix + layer.name
        if isinstance(layer, keras.Model):
            _collect_layer_params(
                layer, name + "/", counts, seen_layers, seen_variables
            )
            continue
        counts[name] = int(_parameter_size(layer.weights, seen_variables))


def _bookkeeping(model):
    layers = leaf_layers(model) if is_graph_model(model) else [model]
    return registry.bookkeeping_weight_ids(layers)


def flops_by_layer(model, input_shape=None):
    """Counts the FLOPs of each layer in one forward pass, per example.

    See the module docstring for the counting conventions. A layer called
    several times appears once with the sum over its calls. Layers of nested
    models are named by their path, `"<nested model name>/<layer name>"`.

    Args:
        model: A functional or Sequential `keras.Model` with known input
            shapes.
        input_shape: Shape of one example (no batch dimension) to count with,
            or a list of shapes for several inputs. Needed when the model's
            inputs have unknown non-batch dimensions. Defaults to `None`
            (the model's own input shapes).

    Returns:
        A `dict` mapping layer name (or path) to its FLOPs, in call order.

    Raises:
        ValueError: If `model` is a subclassed model or an unbuilt
            Sequential model, or a layer's output has unknown non-batch
            dimensions.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(3, activation="relu", name="hidden"),
    ])
    flops_by_layer(model)  # {"hidden": 2 * 4 * 3 + 3 + 3} == {"hidden": 30}
    ```
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Expected a keras.Model. Received: model={model!r} of type "
            f"{type(model).__name__}"
        )
    counts = {}

    def visit(operation, name, input_shapes, output_shapes):
        try:
            flops = flop_counters.layer_flops(
                operation, input_shapes, output_shapes
            )
        except flop_counters.UnknownDimension as error:
            raise ValueError(
                f"Cannot count the FLOPs of layer '{name}': shape "
                f"{error.args[0]} has unknown dimensions besides the batch "
                "dimension. Pass `input_shape=` with the size of one example."
            ) from None
        counts[name] = counts.get(name, 0) + flops

    with flop_counters.warn_once_per_type():
        inputs = _graph_walk.input_specs(model, input_shape)
        _graph_walk.walk(model, inputs, visit)
    return counts


def count_flops(model, active_only=False, input_shape=None):
    """Counts the FLOPs of one forward pass of a model, per example.

    Inference mode: dropout costs nothing, BatchNormalization is a folded
    scale and shift. See the module docstring for the counting conventions.

    Args:
        model: A functional or Sequential `keras.Model` with known input
            shapes.
        active_only: If `True`, count the model with masked-off units
            removed, i.e. `count_flops(keras_darn.rebuild.shrink(model))`.
            Defaults to `False`.
        input_shape: Shape of one example (no batch dimension), or a list of
            shapes for several inputs. Defaults to `None` (the model's own
            input shapes).

    Returns:
        The number of FLOPs, an `int`.

    Raises:
        ValueError: If `model` is a subclassed model or an unbuilt
            Sequential model, or a layer's output has unknown non-batch
            dimensions.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    count_flops(model)  # 2 * 4 * 3 multiply-adds + 3 bias adds == 27
    ```
    """
    if active_only:
        return count_flops(shrink(model), input_shape=input_shape)
    return int(sum(flops_by_layer(model, input_shape=input_shape).values()))

"""Small models covering the graph patterns the Rebuilder must handle."""

import keras
import numpy as np
from support.layer_lockstep import growth_diff_by_layer  # noqa: F401  (the growth tests' check)
from support.layer_lockstep import relative_diff
from support.layer_lockstep import removal_diff_by_layer

from keras_darn.rebuild import Rebuilder
from keras_darn.rebuild.unit_masks import masked_plan

L = keras.layers


def mlp(prunable=False):
    dense = _dense(prunable)
    inputs = keras.Input((12,))
    x = dense(16, activation="relu", name="fc1")(inputs)
    x = L.Dropout(0.1)(x)
    x = dense(10, activation="tanh", name="fc2")(x)
    return keras.Model(inputs, L.Dense(3, name="logits")(x), name="mlp")


def conv_bn_relu_flatten(prunable=False):
    conv, dense = _conv(prunable), _dense(prunable)
    inputs = keras.Input((10, 10, 3))
    x = conv(8, 3, padding="same", name="conv1")(inputs)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU()(x)
    x = L.MaxPooling2D(2)(x)
    x = conv(6, 3, padding="valid", name="conv2")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.Activation("relu")(x)
    x = L.Flatten()(x)
    x = dense(12, activation="relu", name="fc")(x)
    return keras.Model(inputs, L.Dense(4, name="logits")(x), name="cnn")


def resnet_block(prunable=False):
    conv = _conv(prunable)
    inputs = keras.Input((8, 8, 3))
    stem = conv(8, 3, padding="same", name="stem")(inputs)
    x = L.BatchNormalization(name="bn_a")(stem)
    x = L.ReLU()(x)
    x = conv(6, 3, padding="same", name="inner")(x)
    x = L.BatchNormalization(name="bn_b")(x)
    x = L.ReLU()(x)
    x = conv(8, 3, padding="same", name="expand")(x)
    x = L.Add(name="add")([stem, x])
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(4, name="logits")(x), name="resnet_block")


def densenet_block(prunable=False):
    conv = _conv(prunable)
    inputs = keras.Input((8, 8, 3))
    x0 = conv(4, 3, padding="same", name="d0")(inputs)
    x1 = conv(5, 3, padding="same", name="d1")(L.ReLU()(L.BatchNormalization()(x0)))
    c1 = L.Concatenate(name="cat1")([x0, x1])
    x2 = conv(3, 1, name="d2")(L.ReLU()(L.BatchNormalization()(c1)))
    c2 = L.Concatenate(name="cat2")([c1, x2])
    x = L.AveragePooling2D(2)(c2)
    x = L.Flatten()(x)
    return keras.Model(inputs, L.Dense(4, name="logits")(x), name="densenet_block")


def mobilenet_block(prunable=False):
    conv, dense = _conv(prunable), _dense(prunable)
    inputs = keras.Input((8, 8, 3))
    x = conv(8, 1, name="expand")(inputs)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    s = L.GlobalAveragePooling2D()(x)
    s = dense(4, activation="relu", name="se_reduce")(s)
    s = dense(8, activation="sigmoid", name="se_expand")(s)
    s = L.Reshape((1, 1, 8))(s)
    x = L.Multiply(name="se_gate")([x, s])
    x = L.SeparableConv2D(6, 3, padding="same", name="sep")(x)
    x = L.GlobalMaxPooling2D()(x)
    return keras.Model(inputs, L.Dense(4, name="logits")(x), name="mobilenet_block")


def nested(prunable=False):
    dense = _dense(prunable)
    inner_in = keras.Input((10,))
    inner = keras.Model(inner_in, dense(7, activation="relu", name="inner_fc")(inner_in), name="inner")
    inputs = keras.Input((6,))
    x = dense(10, activation="relu", name="outer_fc")(inputs)
    x = inner(x)
    return keras.Model(inputs, L.Dense(2, name="logits")(x), name="nested")


ALL = {
    "mlp": mlp,
    "cnn": conv_bn_relu_flatten,
    "resnet_block": resnet_block,
    "densenet_block": densenet_block,
    "mobilenet_block": mobilenet_block,
    "nested": nested,
}


def randomize_normalization(model, seed=0):
    """Gives BatchNormalization layers non-trivial statistics."""
    rng = np.random.default_rng(seed)
    for layer in _layers(model):
        if isinstance(layer, L.BatchNormalization):
            # (gamma and beta are absent with scale=False / center=False.)
            draws = {
                "gamma": lambda n: rng.uniform(0.5, 1.5, n),
                "beta": lambda n: rng.normal(0, 0.3, n),
                "moving_mean": lambda n: rng.normal(0, 0.3, n),
                "moving_variance": lambda n: rng.uniform(0.5, 1.5, n),
            }
            layer.set_weights([draws[w.name](w.shape[0]) for w in layer.weights])
        elif isinstance(layer, (L.Dense, L.Conv2D)) and layer.use_bias:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape))
    return model


def switch_off(model, fraction, seed=0):
    """Makes `fraction` of every resizable group's units exactly dead.

    Prunable layers get their unit masked; plain layers get the unit's
    incoming weights and bias zeroed. BatchNormalization channels fed by a
    switched-off unit get gamma = beta = 0, so the unit stays 0 after them.

    Returns:
        `{layer_name: number of units switched off}`.
    """
    from keras_darn.graph import UnitGraph
    from keras_darn.graph import unit_groups

    graph = UnitGraph(model)
    rng = np.random.default_rng(seed)
    dead_roots, counts = set(), {}
    for group in unit_groups(model, resizable_only=True):
        off = rng.choice(group.size, max(1, int(fraction * group.size)), replace=False)
        for layer_name in group.layers:
            layer = graph.layers[layer_name]
            positions = group.indices(layer_name)[off]
            counts[layer_name] = len(positions)
            dead_roots.update(graph.roots(graph.spaces[id(layer)])[positions].tolist())
            if hasattr(layer, "set_unit_mask"):
                mask = layer.get_unit_mask()
                mask[positions] = 0
                layer.set_unit_mask(mask)
            else:
                for weight in layer.weights:
                    if weight.name in ("kernel", "pointwise_kernel", "bias"):
                        value = weight.numpy()
                        value[..., positions] = 0
                        weight.assign(value)
    for layer in _layers(model):
        if isinstance(layer, L.BatchNormalization):
            dead = np.isin(graph.roots(graph.inputs[id(layer)]), list(dead_roots))
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([np.where(dead, 0, gamma), np.where(dead, 0, beta), mean, var])
    return counts


def expected_params(model, removed):
    """Parameters of the architecture rebuilt from its config with smaller widths.

    Independent of the Rebuilder: only the config's `units`/`filters` change
    (`removed` maps layer names to the number of units removed); `Reshape`
    targets infer their channel count (-1), and the nested model of `nested`
    gets its input width from `outer_fc`.
    """
    import keras_darn as darn

    def shrink_config(cfg):
        for layer_cfg in cfg["layers"]:
            layer_cfg.pop("build_config", None)
            inner = layer_cfg["config"]
            if "layers" in inner:
                shrink_config(inner)
                for nested_layer in inner["layers"]:
                    if nested_layer["class_name"] == "InputLayer":
                        shape = list(nested_layer["config"]["batch_shape"])
                        shape[-1] -= removed.get("outer_fc", 0)
                        nested_layer["config"]["batch_shape"] = tuple(shape)
            count = removed.get(inner.get("name"))
            if count:
                key = "units" if "units" in inner else "filters"
                inner[key] -= count
            if layer_cfg["class_name"] == "Reshape":
                inner["target_shape"] = tuple(inner["target_shape"][:-1]) + (-1,)

    config = model.get_config()
    shrink_config(config)
    return darn.count_params(keras.Model.from_config(config))


def sample_input(model, batch=4, seed=0):
    shape = (batch,) + tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def _dense(prunable):
    if prunable:
        from keras_darn.layers import PrunableDense

        return PrunableDense
    return L.Dense


def _conv(prunable):
    if prunable:
        from keras_darn.layers import PrunableConv2D

        return PrunableConv2D
    return L.Conv2D


# ---- keras.applications (weights=None, small inputs) ----------------------

APPLICATIONS = [
    "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge",
    "DenseNet121", "DenseNet169", "DenseNet201",
    "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3",
    "EfficientNetB4", "EfficientNetB5", "EfficientNetB6", "EfficientNetB7",
    "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
    "EfficientNetV2S", "EfficientNetV2M", "EfficientNetV2L",
    "InceptionResNetV2", "InceptionV3",
    "MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large",
    "NASNetMobile", "NASNetLarge",
    "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2",
    "VGG16", "VGG19", "Xception",
]
# The smallest inputs some architectures accept; 32 x 32 for the others.
_INPUT_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}

# Reasons that say a group is fixed because a layer or op is not supported
# (as opposed to model inputs and outputs, which are fixed by design).
UNSUPPORTED_MARKERS = ("has no unit handler", "Lambda layer", "keeps fixed")


def application(name, floatx="float32", seed=0):
    """A `keras.applications` model (weights=None, 10 classes, logits) with
    random normalization statistics, scales and biases, built in `floatx`.
    The same `seed` gives the same weights in every run."""
    keras.utils.set_random_seed(seed)
    previous, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    # Both: the global dtype policy, once created, no longer follows floatx.
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(floatx)
    try:
        size = _INPUT_SIZE.get(name, 32)
        model = getattr(keras.applications, name)(
            weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None
        )
    finally:
        keras.config.set_floatx(previous)
        keras.config.set_dtype_policy(previous_policy)
    randomize_normalization(model, seed)
    rng = np.random.default_rng(seed + 1)
    for layer in _layers(model):
        if isinstance(layer, L.LayerNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n)])
        elif type(layer).__name__ == "LayerScale":
            # Keras initialises it to 1e-6, which would hide the residual branch.
            layer.set_weights([rng.uniform(0.5, 1.5, layer.gamma.shape)])
    return model


def unsupported_groups(groups):
    """The groups fixed for lack of support, with their reasons."""
    return [g for g in groups if not g.resizable and any(m in g.reason for m in UNSUPPORTED_MARKERS)]


def unit_width(model, layer_name):
    """Number of units of a layer (or layer part) as the unit graph sees it."""
    from keras_darn.graph import UnitGraph

    graph = UnitGraph(model)
    return len(graph.spaces[id(graph.layers[layer_name])])


def masked_vs_finished(name, masked, finished, x, tolerance=1e-4):
    """How far the finished model of in-fit pruning is from the masked one.

    `(float32 difference, float64 difference or None, float64 difference
    layer by layer or None)`, each relative to the largest output. Where the
    float32 difference is above `tolerance` (a deep untrained net with random
    normalization statistics can amplify rounding until its logits differ by
    their own size), the same removal is redone in float64: the
    architecture `name` built in float64 with the masked model's weights,
    and the finished model rebuilt from it the way `keras_darn.shrink` does
    (the masked units, then the dead ones); it is compared end to end and
    node by node (`layer_lockstep.removal_diff_by_layer`: every node fed the
    masked model's inputs, so rounding is not carried from layer to layer,
    where EfficientNetV2L amplifies it end to end by 1e14 even in float64).
    """
    diff32 = relative_diff(finished(x, training=False).numpy(), masked(x, training=False).numpy())
    if diff32 <= tolerance:
        return diff32, None, None
    masked64 = application(name, floatx="float64")
    masked64.set_weights(masked.get_weights())
    rebuilder = Rebuilder(masked64)
    plan = masked_plan(masked)
    removed = set(rebuilder.dead_roots())
    for layer_name, indices in plan.items():
        removed.update(int(r) for r in rebuilder.roots_of(layer_name, indices))
    if plan:
        rebuilder.remove(plan)
    finished64 = rebuilder.remove_dead().build()
    assert [w.shape for w in finished64.weights] == [w.shape for w in finished.weights]
    x64 = x.astype("float64")
    diff64 = relative_diff(finished64(x64, training=False).numpy(),
                           masked64(x64, training=False).numpy())
    by_layer, _, _ = removal_diff_by_layer(masked64, finished64, x64, removed)
    return diff32, diff64, by_layer


def rounding_floor(model, x, seed=0):
    """How far rounding alone moves `model`'s output on `x`.

    Every kernel (weights of two or more axes) is multiplied by `1 + u`, `u`
    drawn uniformly within one unit in the last place of the model's float
    type, and the relative difference of the output is returned; the weights
    are then put back bit for bit. A function-preserving rebuild changes the
    output by rounding of the same order (a different summation order), so a
    deep untrained net that amplifies rounding has a high floor, and a real
    error stands far above it.
    """
    before = model(x, training=False).numpy()
    saved = model.get_weights()
    rng = np.random.default_rng(seed)
    perturbed = []
    for value in saved:
        if value.ndim > 1 and np.issubdtype(value.dtype, np.floating):
            ulp = np.finfo(value.dtype).eps
            value = value * (1 + ulp * rng.uniform(-1, 1, value.shape)).astype(value.dtype)
        perturbed.append(value)
    model.set_weights(perturbed)
    try:
        return relative_diff(model(x, training=False).numpy(), before)
    finally:
        model.set_weights(saved)


def inexact_growth_groups(model, groups):
    """The groups whose units reach a layer where added units change the
    function (`LayerNormalization` over channels: new channels shift its
    statistics), so zeros_out growth there is not exact by design."""
    from keras_darn.graph import UnitGraph
    from keras_darn.graph import registry

    graph = UnitGraph(model)
    inexact_roots = set()
    for key, channels in graph.inputs.items():
        layer = next((l for l in graph.layers.values() if id(l) == key), None)
        if layer is not None and not getattr(registry.get_handler(layer), "exact_growth", True):
            inexact_roots.update(int(r) for r in graph.roots(channels))
    found = []
    for group in groups:
        first = group.layers[0]
        space = graph.spaces[id(graph.layers[first])]
        roots = graph.roots(space)[group.indices(first)]
        if inexact_roots.intersection(int(r) for r in roots):
            found.append(group)
    return found

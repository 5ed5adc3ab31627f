"""Property-based: random small graphs of supported layers keep the function."""

import keras
import numpy as np
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from support import model_zoo

import keras_darn as darn
from keras_darn.graph import unit_groups

L = keras.layers
BLOCKS = ("conv_bn", "residual", "concat", "depthwise", "squeeze_excite", "pool")


def _build(blocks, widths, head, prunable):
    conv = darn.layers.PrunableConv2D if prunable else L.Conv2D
    dense = darn.layers.PrunableDense if prunable else L.Dense
    inputs = keras.Input((8, 8, 2))
    x = conv(widths[0], 3, padding="same")(inputs)
    for block, width in zip(blocks, widths[1:]):
        channels = x.shape[-1]
        if block == "conv_bn":
            x = L.ReLU()(L.BatchNormalization()(conv(width, 3, padding="same")(x)))
        elif block == "residual":
            y = L.ReLU()(L.BatchNormalization()(conv(width, 3, padding="same")(x)))
            x = L.Add()([x, conv(channels, 1)(y)])
        elif block == "concat":
            x = L.Concatenate()([x, conv(width, 1, activation="relu")(x)])
        elif block == "depthwise":
            x = L.ReLU(6.0)(L.DepthwiseConv2D(3, padding="same")(x))
        elif block == "squeeze_excite":
            s = dense(max(1, channels // 2), activation="relu")(L.GlobalAveragePooling2D()(x))
            s = L.Reshape((1, 1, channels))(dense(channels, activation="sigmoid")(s))
            x = L.Multiply()([x, s])
        elif block == "pool" and x.shape[1] >= 2:
            x = L.MaxPooling2D(2)(x)
    x = L.Flatten()(x) if head == "flatten" else L.GlobalAveragePooling2D()(x)
    x = dense(6, activation="tanh")(x)
    return keras.Model(inputs, L.Dense(3)(x))


graphs = st.tuples(
    st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=4),
    st.lists(st.integers(2, 6), min_size=5, max_size=5),
    st.sampled_from(["flatten", "global"]),
)


def _relative_diff(actual, expected):
    return float(np.abs(actual - expected).max()) / max(float(np.abs(expected).max()), 1e-3)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(graphs, st.sampled_from(["zeros_out", "net2net"]))
def test_growth_and_removal_on_random_graphs(graph, init):
    blocks, widths, head = graph
    model = model_zoo.randomize_normalization(_build(blocks, widths, head, prunable=False))
    x = model_zoo.sample_input(model, batch=2)
    before = model(x, training=False).numpy()
    plan = {g.layers[0]: 2 for g in unit_groups(model, resizable_only=True)}
    grown = darn.add_units(model, plan, init=init, seed=0)
    assert _relative_diff(grown(x, training=False).numpy(), before) <= 1e-5
    if init == "zeros_out":
        removal = {}
        for name in plan:
            config = grown.get_layer(name).get_config()
            width = config.get("filters") or config.get("units")
            removal[name] = [width - 2, width - 1]
        restored = darn.remove_units(grown, removal)
        for original, back in zip(model.get_weights(), restored.get_weights()):
            np.testing.assert_array_equal(original, back)
    pruned = darn.remove_units(
        model,
        {g.layers[0]: g.indices(g.layers[0])[: max(1, g.size // 3)].tolist()
         for g in unit_groups(model, resizable_only=True) if g.size > 1},
    )
    assert pruned(x).shape == before.shape


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(graphs)
def test_shrink_on_random_graphs(graph):
    blocks, widths, head = graph
    model = model_zoo.randomize_normalization(_build(blocks, widths, head, prunable=True))
    x = model_zoo.sample_input(model, batch=2)
    model_zoo.switch_off(model, 0.3)
    before = model(x, training=False).numpy()
    small = darn.shrink(model)
    assert _relative_diff(small(x, training=False).numpy(), before) <= 1e-5
    assert darn.count_params(small) < darn.count_params(model)

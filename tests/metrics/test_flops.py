"""FLOP counts checked against hand counts (arithmetic written out)."""

import warnings

import keras
import pytest

import keras_darn as darn
from keras_darn import layers as darn_layers
from keras_darn.metrics import count_flops
from keras_darn.metrics import flops_by_layer


def _single(input_shape, layer):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize(
    "input_shape, layer, expected",
    [
        # 5 inputs x 3 units multiply-adds, 3 bias adds, 3 relus.
        ((5,), keras.layers.Dense(3, activation="relu"), 2 * 5 * 3 + 3 + 3),
        ((5,), keras.layers.Dense(3, use_bias=False), 2 * 5 * 3),
        # Rank-3 input: the Dense runs at each of the 4 positions.
        ((4, 5), keras.layers.Dense(3), 4 * (2 * 5 * 3 + 3)),
        # Sigmoid costs 4 per element.
        ((5,), keras.layers.Dense(3, activation="sigmoid"), 30 + 3 + 4 * 3),
        # Conv1D valid: length 10 - 3 + 1 = 8, 8 * 4 = 32 outputs, each
        # 3 (kernel) * 2 (in channels) multiply-adds, plus bias.
        ((10, 2), keras.layers.Conv1D(4, 3), 32 * 2 * 3 * 2 + 32),
        # Conv1D same, stride 2: length ceil(10 / 2) = 5, 5 * 4 = 20 outputs.
        (
            (10, 2),
            keras.layers.Conv1D(4, 3, strides=2, padding="same"),
            20 * 2 * 3 * 2 + 20,
        ),
        # Conv2D same: 8 * 8 * 4 = 256 outputs, each 3 * 3 * 3 multiply-adds.
        ((8, 8, 3), keras.layers.Conv2D(4, 3, padding="same"), 256 * 54 + 256),
        # Conv2D valid, stride 2: (8 - 3) // 2 + 1 = 3, so 3 * 3 * 4 = 36.
        ((8, 8, 3), keras.layers.Conv2D(4, 3, strides=2), 36 * 54 + 36),
        # Conv2D with 2 groups: each output sees 4 / 2 = 2 input channels;
        # 6 * 6 * 6 = 216 outputs, each 3 * 3 * 2 = 18 multiply-adds.
        (
            (6, 6, 4),
            keras.layers.Conv2D(6, 3, groups=2, padding="same"),
            216 * 2 * 18 + 216,
        ),
        # Conv2D with fused relu: 6 * 6 * 2 = 72 outputs.
        (
            (8, 8, 3),
            keras.layers.Conv2D(2, 3, activation="relu"),
            72 * 54 + 72 + 72,
        ),
        # Depthwise, multiplier 2: 8 * 8 * (3 * 2) = 384 outputs, each
        # 3 * 3 multiply-adds.
        (
            (8, 8, 3),
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
            384 * 2 * 9 + 384,
        ),
        # Separable valid: 6 * 6 positions. Depthwise: 6 * 6 * 3 * 9 = 972
        # multiply-adds; pointwise: 6 * 6 * 5 outputs * 3 = 540; bias 180.
        (
            (8, 8, 3),
            keras.layers.SeparableConv2D(5, 3),
            2 * (972 + 540) + 180,
        ),
        # Transposed, stride 2, same: every one of the 4 * 4 * 2 = 32 inputs
        # is scattered with 3 * 3 * 3 = 27 multiply-adds; 8 * 8 * 3 = 192
        # outputs get a bias.
        (
            (4, 4, 2),
            keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
            2 * 32 * 27 + 192,
        ),
        # Inference BatchNormalization: scale and shift, 8 * 8 * 4 = 256.
        ((8, 8, 4), keras.layers.BatchNormalization(), 2 * 256),
        # LayerNormalization: 5 (statistics and normalise) + scale + shift.
        ((5,), keras.layers.LayerNormalization(), 7 * 5),
        # GroupNormalization as LayerNormalization; RMSNormalization: square,
        # sum, scale by the root mean square, its own scale.
        ((6, 4), keras.layers.GroupNormalization(2), 7 * 24),
        ((6, 4), keras.layers.RMSNormalization(), 4 * 24),
        ((6, 4), keras.layers.UnitNormalization(), 3 * 24),
        # Conv3D valid: 2 * 2 * 2 * 3 = 24 outputs, each 2 * 27 * 2 + bias.
        ((4, 4, 4, 2), keras.layers.Conv3D(3, 3), 24 * 2 * 27 * 2 + 24),
        # MaxPooling 2x2: 4 * 4 * 3 = 48 outputs, window of 4.
        ((8, 8, 3), keras.layers.MaxPooling2D(2), 48 * 4),
        # AveragePooling 3x3 stride 1 valid: 6 * 6 * 3 = 108 outputs.
        (
            (8, 8, 3),
            keras.layers.AveragePooling2D(3, strides=1),
            108 * 9,
        ),
        # Global pooling: one per input element, 8 * 8 * 3.
        ((8, 8, 3), keras.layers.GlobalAveragePooling2D(), 192),
        ((8, 8, 3), keras.layers.GlobalMaxPooling2D(), 192),
        ((10,), keras.layers.ReLU(), 10),
        ((10,), keras.layers.Activation("sigmoid"), 4 * 10),
        ((10,), keras.layers.Activation("softmax"), 5 * 10),
        ((10,), keras.layers.Activation("linear"), 0),
        ((4, 4, 2), keras.layers.Flatten(), 0),
        ((10,), keras.layers.Dropout(0.5), 0),
    ],
)
def test_single_layer_hand_counts(input_shape, layer, expected):
    model = _single(input_shape, layer)
    assert flops_by_layer(model) == {layer.name: expected}
    assert count_flops(model) == expected


def test_merge_layers():
    a, b, c = (keras.Input((4, 4, 2)) for _ in range(3))
    added = keras.layers.Add(name="add3")([a, b, c])
    averaged = keras.layers.Average(name="avg2")([a, b])
    joined = keras.layers.Concatenate(name="concat")([added, averaged])
    model = keras.Model([a, b, c], joined)
    counts = flops_by_layer(model)
    # 4 * 4 * 2 = 32 outputs; 3 inputs need 2 additions per output.
    assert counts["add3"] == 2 * 32
    # Average of 2: one addition and one scaling per output.
    assert counts["avg2"] == 2 * 32
    assert counts["concat"] == 0
    assert count_flops(model) == 64 + 64


def test_symbolic_ops_are_counted():
    inputs = keras.Input((6,))
    outputs = keras.ops.relu(inputs + inputs)
    model = keras.Model(inputs, outputs)
    # One addition and one relu per element.
    assert count_flops(model) == 6 + 6


def test_nested_and_shared_layers():
    inner = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, name="inner_dense")],
        name="inner",
    )
    shared = keras.layers.Dense(4, name="shared")
    inputs = keras.Input((5,))
    x = inner(inputs)  # 2 * 5 * 4 + 4 = 44
    x = shared(x)  # 2 * 4 * 4 + 4 = 36
    x = shared(x)  # called again: another 36
    outputs = keras.layers.Dense(2, name="head")(x)  # 2 * 4 * 2 + 2 = 18
    model = keras.Model(inputs, outputs)
    assert flops_by_layer(model) == {
        "inner/inner_dense": 44,
        "shared": 72,
        "head": 18,
    }
    assert count_flops(model) == 44 + 72 + 18


def test_nested_model_gets_the_shapes_it_is_called_with():
    inner = keras.Sequential(
        [keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3, name="c")],
        name="fully_conv",
    )
    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, inner(inputs))
    # Output 4 * 4 * 2 = 32, each 3 * 3 * 3 multiply-adds, plus bias.
    assert count_flops(model) == 32 * 54 + 32
    # The inner model alone has unknown spatial size.
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(inner)
    assert count_flops(inner, input_shape=(6, 6, 3)) == 32 * 54 + 32


def test_sequential_model():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, padding="same", name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, name="out"),
        ]
    )
    # conv: 8 * 8 * 2 = 128 outputs of 9 multiply-adds, plus bias.
    conv = 128 * 18 + 128
    assert flops_by_layer(model) == {
        "conv": conv,
        "bn": 2 * 128,
        "relu": 128,
        "flat": 0,
        "out": 2 * 128 * 3 + 3,
    }


def test_unknown_layer_warns_once_and_counts_zero():
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    doubler = Doubler()
    inputs = keras.Input((3,))
    outputs = doubler(doubler(inputs))
    model = keras.Model(inputs, outputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert count_flops(model) == 0
    messages = [str(w.message) for w in caught if "Doubler" in str(w.message)]
    assert len(messages) == 1, messages


def test_register_flops_for_a_custom_layer():
    class Scale(keras.layers.Layer):
        def call(self, x):
            return 3.0 * x

    def scale_flops(layer, input_shapes, output_shapes):
        assert input_shapes == [(None, 7)]
        return 7

    darn.graph.register_layer(Scale, flops=scale_flops)
    assert count_flops(_single((7,), Scale())) == 7
    with pytest.raises(ValueError, match="flops"):
        darn.graph.register_layer(Scale, flops=3)


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(keras.ops.ones((1, 3)))
    with pytest.raises(ValueError, match="subclassed"):
        count_flops(net)


def test_prunable_layers_and_darn_activations():
    inputs = keras.Input((6, 6, 2))
    x = darn_layers.PrunableConv2D(3, 3, name="pconv")(inputs)
    x = darn_layers.SoftClampedReLU(name="screlu")(x)
    x = keras.layers.Flatten()(x)
    x = darn_layers.PrunableDense(4, connection_mask=True, name="pdense")(x)
    outputs = darn_layers.ClampedReLU(name="crelu")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("pdense").set_unit_mask([1, 0, 1, 0])
    counts = flops_by_layer(model)
    # Masks are bookkeeping: a masked layer costs what a plain one costs.
    # pconv: 4 * 4 * 3 = 48 outputs of 3 * 3 * 2 multiply-adds, plus bias.
    assert counts["pconv"] == 48 * 36 + 48
    assert counts["screlu"] == 8 * 48
    assert counts["pdense"] == 2 * 48 * 4 + 4
    assert counts["crelu"] == 4


def test_active_only_counts_the_shrunk_model():
    inputs = keras.Input((5,))
    hidden = darn_layers.PrunableDense(4, activation="relu", name="hidden")
    outputs = keras.layers.Dense(2, name="head")(hidden(inputs))
    model = keras.Model(inputs, outputs)
    hidden.set_unit_mask([1, 0, 1, 0])
    # Full: hidden 2 * 5 * 4 + 4 + 4 = 48, head 2 * 4 * 2 + 2 = 18.
    assert count_flops(model) == 48 + 18
    # Two units left: hidden 2 * 5 * 2 + 2 + 2 = 24, head 2 * 2 * 2 + 2 = 10.
    assert count_flops(model, active_only=True) == 24 + 10


@pytest.mark.parametrize("tied", [True, False])
def test_standout_dense(tied):
    from keras_darn.layers.standout_dense import StandoutDense

    layer = StandoutDense(3, activation="relu", tied=tied, name="standout")
    model = _single((5,), layer)
    # Dense part: 2 * 5 * 3 + 3 bias + 3 relu = 36. Retention per unit:
    # scale, offset, sigmoid (4), multiply = 7, i.e. 21; untied adds its own
    # product 2 * 5 * 3 = 30.
    expected = 36 + 21 + (0 if tied else 30)
    assert count_flops(model) == expected

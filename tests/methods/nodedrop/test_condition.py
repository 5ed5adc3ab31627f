"""The NodeDrop condition: eligibility, dead units, inference measurement."""

import math

import keras
import numpy as np
import pytest

from keras_darn import layers as darn_layers
from keras_darn.methods.nodedrop import condition


def _kill(kernel, bias, unit, margin=-0.01):
    """Sets `unit`'s bias so that sum(max(w, 0)) + b == margin."""
    positive = np.maximum(kernel.reshape(-1, kernel.shape[-1])[:, unit], 0).sum()
    bias[unit] = -positive + margin


def _unit_interval_batches(rng, shape, n=64):
    x = rng.uniform(size=(n, *shape)).astype("float32")
    x[0] = 1.0  # the worst case for sum(max(w, 0)) + b
    x[1] = 0.0
    x[2] = rng.integers(0, 2, size=shape)  # corners of the cube
    return x


@pytest.mark.parametrize(
    "activation", ["relu", darn_layers.soft_clamped_relu, darn_layers.clamped_relu]
)
def test_dense_unit_meeting_condition_outputs_zero(activation):
    rng = np.random.default_rng(1)
    inputs = keras.Input((12,))
    outputs = keras.layers.Dense(5, activation=activation, name="d")(inputs)
    model = keras.Model(inputs, outputs)
    kernel = rng.normal(size=(12, 5)).astype("float32")
    bias = rng.normal(size=5).astype("float32") + 2.0
    _kill(kernel, bias, 1)
    _kill(kernel, bias, 3, margin=-1.0)
    model.layers[1].set_weights([kernel, bias])
    dead = condition.nodedrop_dead_units(model, input_range=(0, 1))
    np.testing.assert_array_equal(dead["d"], [False, True, False, True, False])
    out = keras.ops.convert_to_numpy(model(_unit_interval_batches(rng, (12,))))
    assert np.all(out[:, [1, 3]] == 0.0)
    assert np.any(out[:, [0, 2, 4]] != 0.0)


def test_conv_filter_meeting_condition_outputs_zero_for_any_input():
    rng = np.random.default_rng(2)
    inputs = keras.Input((7, 7, 3))
    hidden = darn_layers.SoftClampedReLU()(keras.layers.Conv2D(4, 3)(inputs))
    outputs = keras.layers.Conv2D(
        6, 3, padding="same", activation=darn_layers.soft_clamped_relu, name="c"
    )(hidden)
    model = keras.Model(inputs, outputs)
    conv = model.get_layer("c")
    kernel = rng.normal(size=(3, 3, 4, 6)).astype("float32")
    bias = rng.normal(size=6).astype("float32")
    _kill(kernel, bias, 0)
    _kill(kernel, bias, 5, margin=-1e-3)
    conv.set_weights([kernel, bias])
    # The inputs of "c" come from SoftClampedReLU, so no input_range is needed.
    dead = condition.nodedrop_dead_units(model)
    np.testing.assert_array_equal(np.flatnonzero(dead["c"]), [0, 5])
    probe = keras.Model(hidden, outputs)  # feed the worst-case [0, 1] inputs
    out = keras.ops.convert_to_numpy(probe(_unit_interval_batches(rng, (5, 5, 4))))
    assert np.all(out[..., [0, 5]] == 0.0)
    assert np.any(out[..., 1:5] != 0.0)


def test_margins_and_weaker_condition():
    kernel = np.array([[1.0, 1.0], [-3.0, -3.0]], "float32")
    bias = np.array([-2.0, -0.5], "float32")
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="relu", name="d")(inputs))
    model.layers[1].set_weights([kernel, bias])
    layer = model.layers[1]
    np.testing.assert_allclose(condition.unit_margins(layer), [-1.0, 0.5])
    np.testing.assert_allclose(condition.unit_margins(layer, weaker=True), [2.0, 3.5])
    np.testing.assert_array_equal(
        condition.nodedrop_dead_units(model, input_range=(0, 1))["d"], [True, False]
    )
    # sum(|w|) + b <= 0 is weaker: it finds no dead unit here.
    weaker = condition.nodedrop_dead_units(model, input_range=(0, 1), weaker=True)
    assert not weaker["d"].any()


def test_rounding_slack_keeps_borderline_units_alive():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="relu", name="d")(inputs))
    kernel = np.full((3, 2), 1.0e3, "float32")
    # Unit 0 sits 1e-9 below the boundary (lost in float32 rounding of a dot
    # product of size 3e3), unit 1 clearly below it.
    model.layers[1].set_weights([kernel, np.array([-3e3 - 1e-9, -3e3 - 1.0], "float32")])
    dead = condition.nodedrop_dead_units(model, input_range=(0, 1))["d"]
    np.testing.assert_array_equal(dead, [False, True])


def test_dropout_scales_the_input_bound():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Activation("sigmoid")(inputs))
    outputs = keras.layers.Dense(1, activation="relu", name="d")(hidden)
    model = keras.Model(inputs, outputs)
    (group,) = condition.nodedrop_eligibility(model).groups
    assert group.nodedrop.input_bound == 2.0  # kept values are scaled by 1 / (1 - 0.5)
    model.layers[-1].set_weights([np.ones((4, 1), "float32"), np.array([-6.0], "float32")])
    # 4 * 1 - 6 <= 0 in [0, 1], but 2 * 4 - 6 > 0: not provably dead in training.
    assert not condition.nodedrop_dead_units(model)["d"].any()
    assert condition.unit_margins(model.layers[-1], input_bound=2.0)[0] == 2.0


def _reasons(model, **kwargs):
    eligibility = condition.nodedrop_eligibility(model, **kwargs)
    return {g.key: g.nodedrop.kind for g in eligibility.groups}, {
        i.name: i.reason for i in eligibility.ineligible
    }


def test_eligibility_reports_reasons():
    inputs = keras.Input((6, 6, 1), name="image")
    a = keras.layers.Conv2D(3, 3, activation=darn_layers.soft_clamped_relu, name="first")(inputs)
    b = keras.layers.Conv2D(3, 1, activation="tanh", name="tanh_conv")(a)
    c = keras.layers.Conv2D(3, 1, name="linear_conv")(a)
    residual = keras.layers.Add()([c, keras.layers.ReLU()(c)])
    d = keras.layers.Conv2D(3, 1, activation="relu", name="after_relu")(
        keras.layers.ReLU()(b)
    )
    e = keras.layers.LayerNormalization(name="ln")(d)
    merged = keras.layers.Concatenate()([residual, e])
    flat = keras.layers.Flatten()(merged)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(flat)
    model = keras.Model(inputs, outputs)

    groups, reasons = _reasons(model, input_range=(0, 1))
    assert groups == {"first": "nodedrop"}
    assert "'tanh' is not 0" in reasons["tanh_conv"]
    assert "goes to 2 layers" in reasons["linear_conv"]
    assert "not known to lie in [0, 1]" in reasons["after_relu"]
    assert "'tanh_conv'" in reasons["after_relu"] or "re_lu" in reasons["after_relu"]
    assert "LayerNormalization" in reasons["ln"]
    assert "'softmax' is not 0" in reasons["out"]
    # Without a declared input range the first layer is not covered either.
    groups, reasons = _reasons(model)
    assert "first" not in groups and "input_range=(0, 1)" in reasons["first"]
    # Inputs in [0, 255]: the condition scales to 255 * sum(max(w, 0)) + b.
    eligibility = condition.nodedrop_eligibility(model, input_range={"image": (0, 255)})
    assert eligibility.groups[0].nodedrop.input_bound == 255.0
    # Inputs that may be negative are not covered.
    groups, _ = _reasons(model, input_range=(-1, 1))
    assert "first" not in groups


def test_linear_layer_followed_by_activation_layer_and_bn_relu():
    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="pooled")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Activation(darn_layers.soft_clamped_relu)(x)
    x = keras.layers.Conv2D(4, 1, name="bn_conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    outputs = keras.layers.Dense(3, name="out")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    groups, reasons = _reasons(model, input_range=(0, 255))
    assert groups == {"pooled": "nodedrop", "bn_conv": "nodedrop_bn"}
    assert set(reasons) == {"out"}
    with pytest.raises(ValueError, match="batch_size=None"):
        condition.nodedrop_dead_units(model, input_range=(0, 255))


def test_bn_relu_condition_holds_on_training_batches():
    m = 16
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, name="d")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    outputs = keras.layers.ReLU()(x)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    gamma = np.array([0.5, -0.25, 0.1, 1.0], "float32")
    beta = -np.abs(gamma) * math.sqrt(m) + np.array([-1e-3, -0.5, 0.05, 3.0], "float32")
    bn.gamma.assign(gamma)
    bn.beta.assign(beta)
    dead = condition.nodedrop_dead_units(model, batch_size=m)["d"]
    np.testing.assert_array_equal(dead, [True, True, False, False])
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.standard_cauchy(size=(m, 3)).astype("float32")  # heavy tails
        x[0] *= 1e3  # one extreme example: |x_hat| comes close to sqrt(m)
        out = keras.ops.convert_to_numpy(model(x, training=True))
        assert np.all(out[:, :2] == 0.0)


def test_measure_dropped_unit_outputs_sees_bn_inference_outputs():
    m = 8
    inputs = keras.Input((2,))
    x = keras.layers.Dense(2, name="d")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    outputs = keras.layers.ReLU()(x)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    bn.gamma.assign([1.0, 1.0])
    bn.beta.assign([-math.sqrt(m) - 0.1, 0.0])
    # Moving statistics far from the data: at inference the "dead" unit fires.
    bn.moving_mean.assign([-100.0, 0.0])
    data = np.ones((4, 2), "float32")
    dead = condition.nodedrop_dead_units(model, batch_size=m)
    np.testing.assert_array_equal(dead["d"], [True, False])
    measured = condition.measure_dropped_unit_outputs(model, data, batch_size=m)
    assert measured["d"][0] > 90.0 and np.isnan(measured["d"][1])
    # Moving mean 0 makes the unit's inference output relu(beta) = 0, as
    # NodeDrop's callback does when it drops the unit.
    model.get_layer("d").set_weights([np.zeros((2, 2), "float32"), np.zeros(2, "float32")])
    bn.moving_mean.assign([0.0, 0.0])
    assert condition.measure_dropped_unit_outputs(model, data, units=dead)["d"][0] == 0.0


def test_sequential_and_invalid_models():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, activation="sigmoid"),
         keras.layers.Dense(2, activation="relu", name="d")]
    )
    assert [g.key for g in condition.nodedrop_eligibility(model).groups] == ["d"]
    with pytest.raises(ValueError, match="keras.Input"):
        condition.nodedrop_eligibility(keras.Sequential([keras.layers.Dense(2)]))

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="Subclassed"):
        condition.nodedrop_eligibility(Subclassed())
    with pytest.raises(ValueError, match="input_range="):
        condition.nodedrop_eligibility(model, input_range=(1, 0))
    with pytest.raises(ValueError, match="no model input"):
        condition.nodedrop_eligibility(model, input_range={"nope": (0, 1)})


def test_nested_models_and_shared_layers_are_reported_once():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="inner")
    inputs = keras.Input((3,))
    shared = keras.layers.Dense(3, activation="relu", name="shared")
    x = shared(shared(keras.layers.Activation("sigmoid")(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="relu", name="top")(inner(x)))
    eligibility = condition.nodedrop_eligibility(model)
    names = [i.name for i in eligibility.ineligible]
    assert sorted(names) == ["inner", "shared", "top"]
    reasons = {i.name: i.reason for i in eligibility.ineligible}
    assert "nested model" in reasons["inner"]
    assert "shared layer (called 2 times)" in reasons["shared"]
    assert "'inner' (Sequential)" in reasons["top"]

"""Keras 3 op nodes (`x * 2.0`, `keras.ops.relu(x)`, ...) in functional graphs."""

import keras
import numpy as np
import pytest

import keras_darn as darn
from keras_darn.methods.nodedrop import attach_nodedrop
from keras_darn.methods.nodedrop import nodedrop_eligibility

L = keras.layers
ops = keras.ops


def _hard_swish_model():
    """Conv -> x * relu6(x + 3) / 6 (as op nodes) -> conv, plus an op residual."""
    inputs = keras.Input((6, 6, 3))
    a = L.Conv2D(8, 3, padding="same", name="a")(inputs)
    x = a * ops.relu6(a + 3.0) * (1.0 / 6.0)
    b = L.Conv2D(8, 3, padding="same", name="b")(x)
    x = ops.add(a, b)
    x = ops.mean(x, axis=(1, 2))
    return keras.Model(inputs, L.Dense(3, name="out")(x), name="op_model")


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _input(model, batch=3):
    shape = (batch,) + tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(1).normal(size=shape).astype("float32")


def _group_of(model, layer_name):
    return next(g for g in darn.unit_groups(model) if layer_name in g.layers)


def _model(body, shape=(6, 6, 3)):
    inputs = keras.Input(shape)
    a = L.Conv2D(8, 1, name="a")(inputs)
    x = body(a, inputs)
    x = L.Flatten()(x) if len(x.shape) > 2 else x
    return keras.Model(inputs, L.Dense(2, name="out")(x))


@pytest.mark.parametrize(
    "body",
    [
        lambda a, _: a * 2.0,
        lambda a, _: 3.0 - a,
        lambda a, _: ops.relu(a),
        lambda a, _: ops.hard_silu(a),
        lambda a, _: ops.clip(a, 0.0, 6.0),
        lambda a, _: ops.mean(a, axis=(1, 2)),
        lambda a, _: ops.max(a, axis=1, keepdims=True),
        lambda a, _: ops.reshape(a, (-1, 36, 8)),
        lambda a, _: ops.expand_dims(a, 1),
        lambda a, _: ops.transpose(a, (0, 2, 1, 3)),
        lambda a, _: ops.softmax(a, axis=1),
        lambda a, _: ops.concatenate([a, a * 0.5], axis=-1),
    ],
    ids=[
        "scalar_mul", "scalar_rsub", "relu", "hard_silu", "clip", "mean", "max_keepdims",
        "reshape", "expand_dims", "transpose", "softmax_spatial", "concatenate",
    ],
)
def test_units_pass_through_op_nodes(body):
    group = _group_of(_model(body), "a")
    assert group.resizable, group.reason


@pytest.mark.parametrize(
    "body, op",
    [
        (lambda a, _: ops.mean(a, axis=-1), "keras.ops.mean"),
        (lambda a, _: ops.softmax(a), "keras.ops.softmax"),
        (lambda a, _: ops.cumsum(a, axis=-1), "keras.ops.cumsum"),
        (lambda a, _: ops.reshape(a, (-1, 6, 48)), "keras.ops.reshape"),
        (lambda a, _: ops.matmul(a, ops.ones((8, 8))), "keras.ops.matmul"),
        (lambda a, _: a * np.arange(8, dtype="float32"), "keras.ops.multiply"),
    ],
    ids=["mean_channels", "softmax_channels", "cumsum", "reshape_mixing", "matmul", "per_channel_constant"],
)
def test_mixing_op_nodes_fix_units_with_a_reason_naming_the_op(body, op):
    group = _group_of(_model(body), "a")
    assert not group.resizable
    assert op in group.reason, group.reason


def test_two_tensor_op_couples_like_add():
    def body(a, inputs):
        b = L.Conv2D(8, 1, name="b")(inputs)
        return ops.multiply(a, b) + a

    group = _group_of(_model(body), "a")
    assert group.resizable and set(group.layers) == {"a", "b"}


def test_removal_through_op_nodes_equals_zeroed_outgoing_weights():
    model = _randomize(_hard_swish_model())
    x = _input(model)
    removed = [1, 5]
    smaller = darn.remove_units(model, {"a": removed})
    assert smaller.get_layer("a").filters == 6 and smaller.get_layer("b").filters == 6

    # Independently: the same model with the removed channels cut off where
    # they are read (b's input rows and the classifier's rows) and their
    # residual contribution zeroed (a's and b's columns) computes the same.
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    for name in ("a", "b"):
        kernel, bias = reference.get_layer(name).get_weights()
        kernel[..., removed] = 0.0
        bias[removed] = 0.0
        reference.get_layer(name).set_weights([kernel, bias])
    kernel, bias = reference.get_layer("out").get_weights()
    kernel[removed] = 0.0
    reference.get_layer("out").set_weights([kernel, bias])
    np.testing.assert_allclose(smaller(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-5)


def test_zeros_out_growth_through_op_nodes_is_exact_and_undo_is_bit_exact():
    model = _randomize(_hard_swish_model())
    x = _input(model)
    grown = darn.add_units(model, {"a": 4}, init="zeros_out", seed=0)
    assert grown.get_layer("b").filters == 12
    np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    back = darn.remove_units(grown, {"a": [8, 9, 10, 11]})
    for before, after in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_shrink_count_params_and_flops_through_hard_swish():
    model = _randomize(_hard_swish_model())
    x = _input(model)
    # Unit 2 of the coupled group (a, b) becomes exactly dead: 0 * relu6(0 + 3) / 6 = 0.
    for name in ("a", "b"):
        kernel, bias = model.get_layer(name).get_weights()
        kernel[..., 2] = 0.0
        bias[2] = 0.0
        model.get_layer(name).set_weights([kernel, bias])
    small = darn.shrink(model)
    assert small.get_layer("a").filters == 7
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    assert darn.count_params(model, active_only=True) == darn.count_params(small)
    assert darn.count_params(small) < darn.count_params(model)
    assert darn.count_flops(small) < darn.count_flops(model)


def test_op_model_rebuild_saves_and_loads(tmp_path):
    model = _randomize(_hard_swish_model())
    x = _input(model)
    smaller = darn.remove_units(model, {"a": [0]})
    path = str(tmp_path / "smaller.keras")
    smaller.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), smaller(x).numpy(), rtol=1e-6, atol=1e-6)


def test_reshape_op_target_follows_the_new_width():
    inputs = keras.Input((8,))
    a = L.Dense(6, name="a")(inputs)
    x = ops.reshape(a, (-1, 1, 6))
    x = ops.squeeze(x, axis=1)
    model = _randomize(keras.Model(inputs, L.Dense(2, name="out")(x)))
    smaller = darn.remove_units(model, {"a": [0, 4]})
    assert smaller.get_layer("a").units == 4
    assert smaller(np.ones((2, 8), "float32")).shape == (2, 2)


def test_nodedrop_eligibility_and_attach_with_op_nodes():
    inputs = keras.Input((6, 6, 3))
    x = L.Conv2D(8, 3, name="a")(inputs)
    x = ops.relu(x)
    x = x * 0.5
    x = L.Conv2D(4, 3, activation="relu", name="b")(x)
    model = keras.Model(inputs, L.Dense(2, name="out")(ops.mean(x, axis=(1, 2))))
    report = nodedrop_eligibility(model, input_range=(0, 1))
    assert [g.key for g in report.groups] == ["a"]
    assert report.groups[0].nodedrop.activation_layer.name == "relu"
    with pytest.warns(UserWarning, match="does not cover"):
        attached = attach_nodedrop(model, input_range=(0, 1))
    x = np.random.default_rng(0).uniform(size=(2, 6, 6, 3)).astype("float32")
    np.testing.assert_allclose(attached(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    assert darn.count_params(attached, active_only=True) == darn.count_params(model)

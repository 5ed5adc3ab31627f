"""attach_nodedrop: a regularized, prunable copy of a model; detach_nodedrop undoes the penalty."""

import warnings

import keras
import numpy as np
import pytest

from keras_darn import layers as darn_layers
from keras_darn.methods.nodedrop.attach import attach_nodedrop
from keras_darn.methods.nodedrop.attach import detach_nodedrop
from keras_darn.methods.nodedrop.regularizers import NodeDropBNRegularizer
from keras_darn.methods.nodedrop.regularizers import NodeDropRegularizer


def _cnn():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation=darn_layers.soft_clamped_relu, name="c1")(inputs)
    x = keras.layers.Conv2D(4, 3, name="c2", kernel_regularizer="l2")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(6, activation="relu", name="d1")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs)


def _penalty(model):
    return sum(float(keras.ops.convert_to_numpy(x)) for x in model.losses)


def test_attach_copies_weights_and_leaves_input_untouched():
    model = _cnn()
    x = np.random.default_rng(0).uniform(size=(5, 8, 8, 1)).astype("float32")
    before = keras.ops.convert_to_numpy(model(x))
    with pytest.warns(UserWarning) as record:
        new, report = attach_nodedrop(
            model, lam=1e-3, batch_size=32, input_range=(0, 1), return_report=True
        )
    messages = " ".join(str(w.message) for w in record)
    # d1 reads ReLU outputs (unbounded), out is softmax: both named with reasons.
    assert "'d1': inputs are not known to lie in [0, 1]" in messages
    assert "'out': activation 'softmax'" in messages
    assert new is not model
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(new(x)), before)
    # The original model is unchanged: plain layers, no new regularizers.
    assert type(model.get_layer("c1")) is keras.layers.Conv2D
    assert model.get_layer("c1").kernel_regularizer is None
    assert model.get_layer("bn").gamma_regularizer is None
    # The copy: prunable producers, NodeDrop penalties where eligible.
    assert isinstance(new.get_layer("c1"), darn_layers.PrunableConv2D)
    assert isinstance(new.get_layer("c2"), darn_layers.PrunableConv2D)
    assert isinstance(new.get_layer("c1").kernel_regularizer, NodeDropRegularizer)
    # NodeDrop-BN: the conv keeps its own regularizer, the BN gets the penalty.
    assert type(new.get_layer("c2").kernel_regularizer).__name__ == "L2"
    assert isinstance(new.get_layer("bn").gamma_regularizer, NodeDropBNRegularizer)
    assert new.get_layer("bn").gamma_regularizer.batch_size == 32
    assert type(new.get_layer("d1")) is keras.layers.Dense
    assert {g.key for g in report.groups} == {"c1", "c2"}
    assert {i.name for i in report.ineligible} == {"d1", "out"}


def test_attached_penalty_equals_hand_computation():
    model = _cnn()
    lam, c, m = 1e-2, 0.5, 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new = attach_nodedrop(model, lam=lam, c=c, batch_size=m, input_range=(0, 1))
    kernel, bias = model.get_layer("c1").get_weights()
    gamma, beta = model.get_layer("bn").get_weights()[:2]
    c2_kernel = model.get_layer("c2").get_weights()[0]
    expected = lam * (
        np.maximum(kernel, 0).sum() + np.abs(bias + c).sum()
        + np.abs(gamma).sum() * np.sqrt(m) + np.abs(beta + c).sum()
    ) + 0.01 * np.square(c2_kernel).sum()  # c2 keeps its L2 (default 0.01)
    assert _penalty(new) == pytest.approx(expected, rel=1e-5)


def test_attach_requires_batch_size_for_bn_and_validates_arguments():
    model = _cnn()
    with pytest.raises(ValueError, match="batch_size=None"):
        attach_nodedrop(model, input_range=(0, 1))
    with pytest.raises(ValueError, match="lam=-1"):
        attach_nodedrop(model, lam=-1, batch_size=8)
    with pytest.raises(ValueError, match="c=0"):
        attach_nodedrop(model, c=0, batch_size=8)


def test_attach_warns_when_nothing_is_eligible_and_about_replaced_regularizers():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, activation="tanh")(inputs)
    with pytest.warns(UserWarning, match="no eligible layer"):
        attach_nodedrop(keras.Model(inputs, outputs))
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, activation="relu", bias_regularizer="l1")(inputs)
    with pytest.warns(UserWarning, match=r"replaced existing regularizers.*bias_regularizer"):
        attach_nodedrop(keras.Model(inputs, outputs), input_range=(0, 1))


def test_attached_sequential_model_saves_and_loads(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation=darn_layers.soft_clamped_relu),
            keras.layers.Dense(4, activation=darn_layers.soft_clamped_relu),
            keras.layers.Dense(2),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new = attach_nodedrop(model, lam=1e-4, input_range=(0, 1), prunable=False)
    assert type(new.layers[0]) is keras.layers.Dense  # prunable=False
    path = str(tmp_path / "nodedrop.keras")
    new.save(path)
    restored = keras.saving.load_model(path)
    x = np.random.default_rng(1).uniform(size=(3, 6)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(new(x))
    )
    assert _penalty(restored) == pytest.approx(_penalty(new))


def test_detach_removes_only_the_nodedrop_penalties_and_keeps_masks(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attached = attach_nodedrop(_cnn(), lam=1e-2, batch_size=16, input_range=(0, 1))
    attached.get_layer("c1").set_unit_mask([1, 0, 1, 0])  # as the NodeDrop callback does
    x = np.random.default_rng(1).uniform(size=(5, 8, 8, 1)).astype("float32")
    before = keras.ops.convert_to_numpy(attached(x))

    detached = detach_nodedrop(attached)

    np.testing.assert_array_equal(keras.ops.convert_to_numpy(detached(x)), before)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(detached.get_layer("c1").unit_mask), [1, 0, 1, 0]
    )
    assert isinstance(detached.get_layer("c1"), darn_layers.PrunableConv2D)
    assert detached.get_layer("c1").kernel_regularizer is None
    assert detached.get_layer("c1").bias_regularizer is None
    assert detached.get_layer("bn").gamma_regularizer is None
    assert detached.get_layer("bn").beta_regularizer is None
    # Only c2's own L2 is left.
    c2_kernel = attached.get_layer("c2").get_weights()[0]
    assert _penalty(detached) == pytest.approx(0.01 * np.square(c2_kernel).sum(), rel=1e-5)
    # The input model keeps its penalties.
    assert isinstance(attached.get_layer("c1").kernel_regularizer, NodeDropRegularizer)
    assert _penalty(attached) > _penalty(detached)
    # Nothing comes back on save/load.
    detached.save(tmp_path / "detached.keras")
    loaded = keras.saving.load_model(tmp_path / "detached.keras")
    assert _penalty(loaded) == pytest.approx(_penalty(detached), rel=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), before)

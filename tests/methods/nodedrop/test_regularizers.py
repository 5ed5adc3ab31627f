"""NodeDrop regularizer values, validation and serialization."""

import math

import keras
import numpy as np
import pytest

from keras_darn.methods.nodedrop import regularizers
from keras_darn.methods.nodedrop.regularizers import NodeDropBNRegularizer
from keras_darn.methods.nodedrop.regularizers import NodeDropRegularizer


def _value(regularizer, array):
    return float(keras.ops.convert_to_numpy(regularizer(keras.ops.convert_to_tensor(array))))


def test_dense_penalty_matches_hand_computation():
    kernel = np.array([[0.5, -1.0], [2.0, 0.25], [-0.5, -0.75]], "float32")
    bias = np.array([-0.25, 1.5], "float32")
    lam, c = 0.1, 1.0
    # Unit 0: max(w,0) sum = 0.5 + 2.0 = 2.5, |b + c| = 0.75.
    # Unit 1: max(w,0) sum = 0.25, |b + c| = 2.5.
    expected = lam * ((2.5 + 0.75) + (0.25 + 2.5))
    reg = NodeDropRegularizer(lam=lam, c=c)
    assert _value(reg, kernel) + _value(reg, bias) == pytest.approx(expected, rel=1e-6)
    assert _value(reg, kernel) == pytest.approx(lam * 2.75, rel=1e-6)
    assert _value(reg, bias) == pytest.approx(lam * 3.25, rel=1e-6)


def test_conv_filter_sum_runs_over_whole_kernel():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 4)).astype("float32")
    bias = rng.normal(size=(4,)).astype("float32")
    lam, c = 1e-2, 0.5
    per_filter = [
        np.maximum(kernel[..., f], 0).sum() + abs(bias[f] + c) for f in range(4)
    ]
    layer = keras.layers.Conv2D(4, 3, **regularizers.nodedrop_regularizers(lam, c))
    layer.build((None, 5, 5, 2))
    layer.set_weights([kernel, bias])
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in layer.losses)
    assert total == pytest.approx(lam * sum(per_filter), rel=1e-5)


def test_bn_penalty_matches_hand_computation():
    gamma = np.array([0.5, -2.0, 0.0], "float32")
    beta = np.array([-1.0, 0.5, -3.0], "float32")
    lam, c, m = 1e-3, 1.0, 64
    expected = lam * sum(abs(g) * 8.0 + abs(b + c) for g, b in zip(gamma, beta))
    bn = keras.layers.BatchNormalization(
        **regularizers.nodedrop_bn_regularizers(lam, c, batch_size=m)
    )
    bn.build((None, 3))
    bn.gamma.assign(gamma)
    bn.beta.assign(beta)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in bn.losses)
    assert total == pytest.approx(expected, rel=1e-6)
    gamma_reg = NodeDropBNRegularizer(lam, c, target="gamma", batch_size=m)
    assert _value(gamma_reg, gamma) == pytest.approx(lam * math.sqrt(m) * 2.5)


def test_auto_target_and_explicit_targets_agree():
    kernel = np.array([[1.0, -2.0]], "float32")
    auto = NodeDropRegularizer(0.5, 2.0)
    assert _value(auto, kernel) == _value(NodeDropRegularizer(0.5, 2.0, "kernel"), kernel)
    bias = np.array([-3.0, 1.0], "float32")
    assert _value(auto, bias) == pytest.approx(0.5 * (1.0 + 3.0))
    assert _value(NodeDropRegularizer(0.5, 2.0, "bias"), bias) == _value(auto, bias)


def test_defaults_are_the_papers_and_lambda_zero_gives_zero():
    reg = NodeDropRegularizer()
    assert (reg.lam, reg.c) == (1e-5, 1.0)
    reg = NodeDropRegularizer(lam=0.0)
    assert _value(reg, np.ones((3, 2), "float32")) == 0.0
    assert _value(reg, np.ones((2,), "float32")) == 0.0


def test_invalid_arguments_raise_naming_them():
    for lam in (-1e-5, float("nan"), "big", True):
        with pytest.raises(ValueError, match="lam="):
            NodeDropRegularizer(lam=lam)
        with pytest.raises(ValueError, match="lam="):
            NodeDropBNRegularizer(lam=lam, target="beta")
    for c in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match=r"`c`.*c="):
            NodeDropRegularizer(c=c)
        with pytest.raises(ValueError, match="c="):
            regularizers.nodedrop_bn_regularizers(c=c, batch_size=8)
    with pytest.raises(ValueError, match="target="):
        NodeDropRegularizer(target="gamma")
    with pytest.raises(ValueError, match="target="):
        NodeDropBNRegularizer()
    with pytest.raises(ValueError, match="batch_size=None"):
        NodeDropBNRegularizer(target="gamma")
    with pytest.raises(ValueError, match="batch_size=0"):
        regularizers.nodedrop_bn_regularizers(batch_size=0)
    with pytest.raises(ValueError, match="scalar"):
        NodeDropRegularizer()(keras.ops.convert_to_tensor(1.0))


def test_serialization_round_trip():
    for regularizer in (
        NodeDropRegularizer(2e-5, 0.5, "bias"),
        NodeDropBNRegularizer(3e-5, 2.0, target="gamma", batch_size=32),
        NodeDropBNRegularizer(3e-5, 2.0, target="beta"),
    ):
        config = keras.regularizers.serialize(regularizer)
        assert config["registered_name"].startswith("keras_darn>")
        restored = keras.regularizers.deserialize(config)
        assert type(restored) is type(regularizer)
        assert restored.get_config() == regularizer.get_config()


def test_saved_model_file_round_trip(tmp_path):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(
        3, activation="relu", **regularizers.nodedrop_regularizers(1e-3)
    )(inputs)
    hidden = keras.layers.BatchNormalization(
        **regularizers.nodedrop_bn_regularizers(1e-3, batch_size=16)
    )(hidden)
    model = keras.Model(inputs, hidden)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.layers[1].kernel_regularizer.get_config() == {
        "lam": 1e-3, "c": 1.0, "target": "kernel"
    }
    assert restored.layers[2].gamma_regularizer.batch_size == 16
    losses = lambda m: sum(float(keras.ops.convert_to_numpy(x)) for x in m.losses)  # noqa: E731
    assert losses(restored) == pytest.approx(losses(model))

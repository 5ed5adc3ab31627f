"""The effective-rank trigger and the activations it reads."""

import keras
import numpy as np
import pytest

from keras_darn.graph.activations import layer_width
from keras_darn.methods.growth import triggers as gt


def _rank_three(rows=200, width=8, seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(rows, 3))
    return basis @ rng.normal(size=(3, width))


def test_effective_rank_counts_independent_directions():
    assert gt.effective_rank(_rank_three()) == 3
    full = np.random.default_rng(1).normal(size=(200, 8))
    assert gt.effective_rank(full) == 8
    # Dead and duplicated units do not add to the rank.
    with_copies = np.concatenate([full[:, :5], full[:, :2], np.zeros((200, 1))], axis=1)
    assert gt.effective_rank(with_copies) == 5
    assert gt.effective_rank(np.ones((10, 4))) == 0


def test_effective_rank_trigger_fires_only_near_full_rank():
    trigger = gt.EffectiveRankTrigger(saturation=0.9)
    full = np.random.default_rng(1).normal(size=(200, 8))
    assert trigger(full)
    assert trigger.units_to_add(full) == 8 - 7
    assert not trigger(_rank_three())
    assert trigger.units_to_add(_rank_three()) == 0
    assert gt.EffectiveRankTrigger.from_config(trigger.get_config()).saturation == 0.9


def test_errors():
    with pytest.raises(ValueError, match="saturation"):
        gt.EffectiveRankTrigger(saturation=1.5)
    with pytest.raises(ValueError, match="shape"):
        gt.effective_rank(np.ones(5))


def test_collect_activations_reads_after_the_activation_chain():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5, activation="tanh", name="fc")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    data = np.random.default_rng(0).normal(size=(7, 6, 6, 2)).astype("float32")
    acts = gt.collect_activations(model, data, ["conv", "fc"], batch_size=3)
    # Every spatial position of every example is a row.
    assert acts["conv"].shape == (7 * 4 * 4, 3)
    assert acts["conv"].min() >= 0.0  # after the ReLU
    relu_out = keras.Model(inputs, model.get_layer("relu").output)(data, training=False)
    np.testing.assert_allclose(
        acts["conv"], np.asarray(relu_out).reshape(-1, 3), rtol=1e-5, atol=1e-6
    )
    assert np.abs(acts["fc"]).max() <= 1.0  # tanh
    small = gt.collect_activations(model, data, ["conv"], max_rows=10)
    assert small["conv"].shape == (10, 3)
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        gt.collect_activations(model, data, ["nope"])
    with pytest.raises(ValueError, match="units` or `filters"):
        layer_width(model, "bn")

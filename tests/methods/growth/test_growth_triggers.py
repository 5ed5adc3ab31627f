"""Activation statistics, DARN's growth rules and the effective-rank trigger."""

import keras
import numpy as np
import pytest

from keras_darn.graph.activations import layer_width
from keras_darn.methods.growth import triggers as gt


def _rank_three(rows=200, width=8, seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(rows, 3))
    return basis @ rng.normal(size=(3, width))


def test_statistics_match_numpy():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(50, 4)) * np.array([1.0, 2.0, 0.5, 0.0])
    np.testing.assert_allclose(gt.unit_variance(acts), acts.var(axis=0))
    np.testing.assert_allclose(gt.unit_l1(acts), np.abs(acts).mean(axis=0))
    corr = gt.activation_correlation(acts)
    np.testing.assert_allclose(corr[:3, :3], np.corrcoef(acts[:, :3].T), atol=1e-12)
    # A constant unit correlates with nothing, itself included.
    np.testing.assert_array_equal(corr[3], np.zeros(4))


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


def test_split_rules_pick_the_highest_units():
    acts = np.random.default_rng(2).normal(size=(300, 5)) * np.array([1.0, 5.0, 0.1, 3.0, 2.0])
    assert gt.HighVariance()(acts, 2) == [(1,), (3,)]
    # More new units than units: the best units are split again.
    assert gt.HighVariance()(acts, 7) == [(1,), (3,), (4,), (0,), (2,), (1,), (3,)]
    shifted = np.abs(acts) + np.array([0.0, 0.0, 10.0, 0.0, 0.0])
    assert gt.HighL1()(shifted, 1) == [(2,)]
    assert gt.HighVariance()(acts, 0) == []


def test_low_correlation_pairs():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 400))
    acts = np.stack([a, a + 0.01 * b, 0.5 * a, b, np.zeros(400)], axis=1)
    pairs = gt.LowCorrelation()(acts, 3)
    # Unit 3 is independent of the copies of `a`; the dead unit 4 is never used.
    assert all(3 in pair and 4 not in pair for pair in pairs)
    assert gt.LowCorrelation.arity == 2


def test_get_and_errors():
    assert isinstance(gt.get("variance"), gt.HighVariance)
    assert isinstance(gt.get("correlation"), gt.LowCorrelation)
    assert gt.get(None) is None
    with pytest.raises(ValueError, match="criterion"):
        gt.get("entropy")
    with pytest.raises(ValueError, match="saturation"):
        gt.EffectiveRankTrigger(saturation=1.5)
    with pytest.raises(ValueError, match="shape"):
        gt.unit_variance(np.ones(5))
    with pytest.raises(ValueError, match="count"):
        gt.HighVariance()(np.ones((4, 2)), -1)


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

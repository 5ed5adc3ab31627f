"""Criteria against values computed by hand (NumPy) on tiny networks."""

import keras
import numpy as np
import pytest

from keras_darn.criteria import base
from keras_darn.criteria.activation_statistics import ActivationL1
from keras_darn.criteria.activation_statistics import ActivationVariance
from keras_darn.criteria.activation_statistics import activation_statistics
from keras_darn.criteria.brute_force import BruteForce
from keras_darn.criteria.correlation import ActivationCorrelation
from keras_darn.criteria.correlation import correlated_pairs
from keras_darn.criteria.correlation import redundancy_scores
from keras_darn.criteria.probes import ProbedModel
from keras_darn.criteria.random_score import RandomScore
from keras_darn.criteria.taylor import TaylorFirstOrder
from keras_darn.criteria.taylor import TaylorSecondOrder
from keras_darn.criteria.weight_l1 import WeightL1

L = keras.layers


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


@pytest.fixture
def sigmoid_net():
    """The paper's network shape in miniature: 1 hidden sigmoid layer, MSE."""
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            L.Dense(6, activation="sigmoid", name="hidden"),
            L.Dense(3, activation="sigmoid", name="out"),
        ]
    )
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 1.5, w.shape) for w in layer.get_weights()])
    model.compile("sgd", "mse")
    x = rng.random((40, 4)).astype("float32")
    y = np.eye(3)[rng.integers(0, 3, 40)].astype("float32")
    return model, x, y


def _numpy_forward(model, x):
    w1, b1 = model.get_layer("hidden").get_weights()
    w2, b2 = model.get_layer("out").get_weights()
    hidden = _sigmoid(x @ w1 + b1)
    return hidden, w2, b2


def test_brute_force_matches_zeroing_each_unit_in_numpy(sigmoid_net):
    model, x, y = sigmoid_net
    hidden, w2, b2 = _numpy_forward(model, x)

    def mean_loss(h):
        return np.mean(np.mean((_sigmoid(h @ w2 + b2) - y) ** 2, axis=1))

    base_loss = mean_loss(hidden)
    expected = []
    for k in range(6):
        h = hidden.copy()
        h[:, k] = 0
        expected.append(mean_loss(h) - base_loss)
    scores = BruteForce()(model, x, y)
    np.testing.assert_allclose(scores["hidden"], expected, rtol=1e-4, atol=1e-6)


def test_taylor_matches_paper_backpropagation_equations(sigmoid_net):
    """Equations 5-10 of the paper, evaluated by hand for the hidden layer."""
    model, x, y = sigmoid_net
    hidden, w2, b2 = _numpy_forward(model, x)
    out = _sigmoid(hidden @ w2 + b2)
    classes = y.shape[1]
    de_dout = 2.0 * (out - y) / classes  # E = mean over outputs of (o - t)^2
    d2e_dout2 = 2.0 / classes
    sigma1 = out * (1 - out)
    sigma2 = sigma1 * (1 - 2 * out)
    de_dx = de_dout * sigma1
    d2e_dx2 = d2e_dout2 * sigma1**2 + de_dout * sigma2  # eq. 10
    de_do = de_dx @ w2.T  # eq. 6
    d2e_do2 = d2e_dx2 @ (w2.T**2)  # eqs. 8-9
    first = np.mean(-hidden * de_do, axis=0)  # eq. 5
    second = first + np.mean(0.5 * hidden**2 * d2e_do2, axis=0)  # eq. 7

    np.testing.assert_allclose(
        TaylorFirstOrder()(model, x, y)["hidden"], first, rtol=1e-4, atol=1e-7
    )
    np.testing.assert_allclose(
        TaylorSecondOrder()(model, x, y)["hidden"], second, rtol=1e-4, atol=1e-7
    )


def test_activation_statistics_match_numpy(sigmoid_net):
    model, x, _ = sigmoid_net
    hidden, _, _ = _numpy_forward(model, x)
    np.testing.assert_allclose(
        ActivationVariance(batch_size=7)(model, x)["hidden"], hidden.var(0), rtol=1e-4
    )
    np.testing.assert_allclose(
        ActivationL1()(model, x)["hidden"], np.abs(hidden).mean(0), rtol=1e-5
    )
    criterion = ActivationCorrelation(batch_size=16)
    scores = criterion(model, x)["hidden"]
    corr = np.corrcoef(hidden.T)
    np.testing.assert_allclose(criterion.last_correlation["hidden"], corr, atol=1e-4)
    off = np.abs(corr - np.eye(6))
    np.testing.assert_allclose(scores, 1 - off.max(1), atol=1e-4)


def test_weight_l1_and_random():
    model = keras.Sequential([keras.Input((3,)), L.Dense(4, name="a"), L.Dense(2)])
    kernel = model.get_layer("a").get_weights()[0]
    np.testing.assert_allclose(WeightL1()(model)["a"], np.abs(kernel).sum(0), rtol=1e-6)
    first = RandomScore(seed=3)(model)["a"]
    again = RandomScore(seed=3)(model)["a"]
    np.testing.assert_array_equal(first, again)
    assert first.shape == (4,) and np.all((first >= 0) & (first < 1))


def test_conv_statistics_per_channel_after_bn_relu_pool():
    rng = np.random.default_rng(1)
    inputs = keras.Input((6, 6, 2))
    h = L.Conv2D(3, 3, padding="same", name="conv")(inputs)
    h = L.BatchNormalization(name="bn")(h)
    h = L.ReLU()(h)
    pooled = L.MaxPooling2D(2, name="pool")(h)
    out = L.Dense(2)(L.Flatten()(pooled))
    model = keras.Model(inputs, out)
    bn = model.get_layer("bn")
    bn.set_weights([rng.normal(1, 0.3, 3), rng.normal(0, 0.5, 3), rng.normal(0, 0.1, 3),
                    rng.uniform(0.5, 2, 3)])
    x = rng.random((10, 6, 6, 2)).astype("float32")
    probe = keras.Model(inputs, pooled)(x).numpy().reshape(-1, 3)
    stats = activation_statistics(ProbedModel(model), x, covariance=True)["conv"]
    np.testing.assert_allclose(stats["variance"], probe.var(0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(stats["correlation"], np.corrcoef(probe.T), atol=1e-4)
    means = keras.Model(inputs, pooled)(x).numpy().mean(axis=(1, 2))
    spatial = activation_statistics(ProbedModel(model), x, conv_mode="spatial_mean")
    np.testing.assert_allclose(spatial["conv"]["variance"], means.var(0), rtol=1e-4)


def test_removed_units_are_not_scored(sigmoid_net):
    model, x, y = sigmoid_net
    probed = ProbedModel(model)
    probed.remove("hidden", [1, 4])
    for criterion in (BruteForce(), TaylorSecondOrder(), ActivationVariance(), WeightL1()):
        scores = criterion(probed, x, y)["hidden"]
        assert np.isnan(scores[[1, 4]]).all()
        assert np.isfinite(scores[[0, 2, 3, 5]]).all()


def test_correlated_pairs_keeps_one_of_each_pair():
    corr = np.eye(5)
    corr[0, 1] = corr[1, 0] = 0.99
    corr[1, 2] = corr[2, 1] = 0.985
    corr[3, 4] = corr[4, 3] = -0.97
    pairs = correlated_pairs(corr, 0.98)
    assert pairs == [(1, 0, 0.99)]  # unit 2's partner (1) is gone, so 2 stays
    pairs = correlated_pairs(corr, 0.95, keep_scores=np.array([1, 2, 3, 5, 4]))
    assert pairs == [(0, 1, 0.99), (2, 1, 0.985), (4, 3, -0.97)]
    assert correlated_pairs(corr, 0.95, max_remove=1) == [(1, 0, 0.99)]
    scores = redundancy_scores(corr, np.array([True, True, True, False, True]))
    np.testing.assert_allclose(scores[:3], [0.01, 0.01, 0.015])
    assert np.isnan(scores[3]) and scores[4] == 1.0


def test_registry_and_config_round_trip():
    for name in ("brute_force", "taylor1", "taylor2", "variance", "l1", "correlation",
                 "weight_l1", "random"):
        criterion = base.get(name)
        again = base.get(base.serialize(criterion))
        assert type(again) is type(criterion)
        assert again.get_config() == criterion.get_config()
    clipped = TaylorSecondOrder(clip="median", clip_threshold=0.5)
    assert base.get(base.serialize(clipped)).get_config()["clip"] == "median"
    with pytest.raises(ValueError, match="Unknown criterion"):
        base.get("nope")
    with pytest.raises(ValueError, match="clip"):
        TaylorSecondOrder(clip="max")
    with pytest.raises(ValueError, match="metric"):
        BruteForce(metric="f1")


def test_missing_data_and_labels_are_reported(sigmoid_net):
    model, x, _ = sigmoid_net
    with pytest.raises(ValueError, match="pass `x`"):
        ActivationVariance()(model)
    with pytest.raises(ValueError, match="pass `y`"):
        BruteForce()(model, x)
    with pytest.raises(ValueError, match="not a layer with resizable units"):
        ProbedModel(model, layers=["out"])


def test_taylor_second_order_clipping():
    criterion = TaylorSecondOrder(clip="median", clip_threshold=5.0)
    live = np.array([True, True, True, True, False])
    clipped = criterion.clip_outliers(np.array([1.0, 2.0, 100.0, 3.0, 50.0]), live)
    np.testing.assert_allclose(clipped, [1.0, 2.0, 2.5, 3.0, 50.0])
    mean_clip = TaylorSecondOrder(clip="mean", clip_sigma=1.0)
    clipped = mean_clip.clip_outliers(np.array([1.0, 1.0, 1.0, 1.0, 9.0]), np.ones(5, bool))
    np.testing.assert_allclose(clipped, [1.0, 1.0, 1.0, 1.0, 2.6])

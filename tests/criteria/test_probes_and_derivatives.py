"""Batched brute force equals the loop and the Rebuilder; exact 2nd derivative."""

import keras
import numpy as np
import pytest

from keras_darn.criteria.activation_statistics import ActivationVariance
from keras_darn.criteria.brute_force import BruteForce
from keras_darn.criteria.brute_force import brute_force_effects
from keras_darn.criteria.probes import ProbedModel
from keras_darn.criteria.taylor import TaylorSecondOrder
from keras_darn.criteria.taylor import taylor_terms
from keras_darn.rebuild import remove_units

L = keras.layers


def _residual_cnn(smooth=False):
    """Conv/BN/ReLU/pool chain, a residual Add (a coupled group) and a Dense.

    `smooth=True` swaps ReLU and max pooling for tanh and average pooling, so
    that the loss is smooth in the gains and finite differences apply.
    """
    rng = np.random.default_rng(0)
    relu = (lambda: L.Activation("tanh")) if smooth else L.ReLU
    pool = L.AveragePooling2D if smooth else L.MaxPooling2D
    inputs = keras.Input((8, 8, 2))
    stem = L.Conv2D(4, 3, padding="same", name="stem")(inputs)
    h = L.BatchNormalization(name="bn1")(stem)
    h = relu()(h)
    h = L.Conv2D(4, 3, padding="same", name="branch")(h)
    h = L.Add(name="add")([stem, h])
    h = pool(2)(relu()(h))
    h = L.Conv2D(3, 3, name="conv2")(h)
    h = L.BatchNormalization(name="bn2")(h)
    h = relu()(h)
    h = L.Flatten()(h)
    h = L.Dense(5, activation="tanh", name="fc")(h)
    model = keras.Model(inputs, L.Dense(3, activation="softmax", name="out")(h))
    for name in ("bn1", "bn2"):
        layer = model.get_layer(name)
        n = layer.gamma.shape[0]
        layer.set_weights([rng.normal(1, .3, n), rng.normal(0, .5, n), rng.normal(0, .3, n),
                           rng.uniform(.5, 2, n)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = rng.random((30, 8, 8, 2)).astype(keras.config.floatx())
    y = rng.integers(0, 3, 30)
    return model, x, y


def test_batched_brute_force_equals_loop_and_removal():
    model, x, y = _residual_cnn()
    probed = ProbedModel(model)
    assert sorted(g.key for g in probed.groups) == ["conv2", "fc", "stem"]
    assert probed.group("branch").layers == ["stem", "branch"]
    batched = brute_force_effects(probed, x, y, batched=True, max_rows=64, batch_size=7)
    loop = brute_force_effects(probed, x, y, batched=False, batch_size=7)
    for key in batched:
        np.testing.assert_allclose(batched[key]["loss"], loop[key]["loss"], atol=1e-5)
        np.testing.assert_allclose(batched[key]["accuracy"], loop[key]["accuracy"], atol=1e-6)
    # Zeroing a unit at its gate is exactly what removing it does.
    base = model.evaluate(x, y, verbose=0)
    for key, unit in (("stem", 2), ("conv2", 1), ("fc", 4)):
        smaller = remove_units(model, {key: [unit]})
        change = smaller.evaluate(x, y, verbose=0) - base
        np.testing.assert_allclose(batched[key]["loss"][unit], change, rtol=1e-4, atol=1e-5)


def test_brute_force_after_removals_equals_rebuilt_model():
    model, x, y = _residual_cnn()
    probed = ProbedModel(model)
    probed.remove("stem", [0])
    probed.remove("fc", [1, 3])
    loss, _ = probed.evaluate(x, y)
    rebuilt = probed.pruned_model()
    assert rebuilt.get_layer("stem").filters == 3 and rebuilt.get_layer("branch").filters == 3
    assert rebuilt.get_layer("fc").units == 3
    np.testing.assert_allclose(loss, rebuilt.evaluate(x, y, verbose=0), rtol=1e-5)
    scores = BruteForce(max_rows=50)(probed, x, y)
    assert np.isnan(scores["fc"][[1, 3]]).all() and np.isnan(scores["stem"][0])


def _finite_difference_second(probed, x, y, key, unit, h=2.0**-7):
    def loss_at(gain):
        gains = {k: v.copy() for k, v in probed.gains.items()}
        gains[key][unit] = gain
        return probed.evaluate(x, y, gains=gains)[0]

    return (loss_at(1 + h) - 2 * loss_at(1.0) + loss_at(1 - h)) / h**2, (
        loss_at(1 + h) - loss_at(1 - h)
    ) / (2 * h)


@pytest.fixture
def float64():
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx("float32")


@pytest.mark.parametrize("net", ["deep_mlp", "residual_cnn"])
def test_second_derivative_equals_finite_differences(net, float64):
    if net == "deep_mlp":
        rng = np.random.default_rng(2)
        model = keras.Sequential(
            [
                keras.Input((5,)),
                L.Dense(6, activation="sigmoid", name="h1"),
                L.Dense(4, activation="sigmoid", name="h2"),
                L.Dense(3, activation="sigmoid", name="out"),
            ]
        )
        for layer in model.layers:
            layer.set_weights([rng.normal(0, 2, w.shape) for w in layer.get_weights()])
        model.compile("sgd", "mse")
        x = rng.random((25, 5))
        y = np.eye(3)[rng.integers(0, 3, 25)]
        units = [("h1", 0), ("h1", 5), ("h2", 2)]
    else:
        model, x, y = _residual_cnn(smooth=True)
        units = [("stem", 1), ("stem", 3), ("conv2", 0), ("fc", 2)]
    tolerance = 1e-3
    probed = ProbedModel(model)
    terms = taylor_terms(probed, x, y, batch_size=8)
    for key, unit in units:
        second, first = _finite_difference_second(probed, x, y, key, unit)
        np.testing.assert_allclose(terms[key]["first"][unit], first, rtol=tolerance, atol=1e-6)
        np.testing.assert_allclose(terms[key]["second"][unit], second, rtol=tolerance, atol=1e-5)
    if net == "deep_mlp":
        # The first hidden layer needs the off-diagonal terms of the layer
        # above, which the paper's recursion (eqs. 8-10) drops.
        scores = TaylorSecondOrder()(model, x, y)
        np.testing.assert_allclose(
            scores["h1"], -terms["h1"]["first"] + 0.5 * terms["h1"]["second"], rtol=1e-6
        )


@pytest.mark.slow  # three criteria, each run twice; CI runs it (`.ci/run`)
def test_statistics_are_gathered_across_replicas(two_cpu_strategy):
    model, x, y = _residual_cnn()
    with two_cpu_strategy.scope():
        replicated = keras.models.clone_model(model)
        replicated.set_weights(model.get_weights())
        replicated.compile("sgd", "sparse_categorical_crossentropy")
    # 30 examples in global batches of 10 (11, 22 for brute force: uneven splits).
    criteria = {
        "variance": (ActivationVariance(batch_size=10), None),
        "brute": (BruteForce(batch_size=11, max_rows=66), None),
        "taylor": (TaylorSecondOrder(batch_size=10), ["stem"]),  # the coupled group
    }
    for name, (criterion, layers) in criteria.items():
        single = criterion(ProbedModel(model, layers=layers), x, y)
        distributed = criterion(
            ProbedModel(replicated, layers=layers), x, y, strategy=two_cpu_strategy
        )
        assert sorted(single) == sorted(distributed)
        for key in single:
            np.testing.assert_allclose(distributed[key], single[key], rtol=1e-4, atol=1e-6)

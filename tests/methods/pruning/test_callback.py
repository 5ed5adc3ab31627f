"""CriterionPruning: scheduled masking during fit, also under MirroredStrategy."""

import keras
import numpy as np
import pytest

from keras_darn.methods.pruning.callback import CriterionPruning
from keras_darn.criteria.activation_statistics import ActivationVariance
from keras_darn.criteria.probes import ProbedModel
from keras_darn.layers import PrunableDense
from keras_darn.rebuild import shrink
from keras_darn.resizing import Target
from keras_darn.resizing import schedules

L = keras.layers


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


def _model():
    model = keras.Sequential(
        [keras.Input((6,)), PrunableDense(10, activation="relu", name="h1"),
         PrunableDense(8, activation="tanh", name="h2"), L.Dense(2, activation="softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_schedule_fractions():
    linear = schedules.Linear(start=0, end=2)
    assert [0.6 * linear(i) for i in (0, 1, 2)] == pytest.approx([0.2, 0.4, 0.6])
    assert linear(3) is None
    assert 0.8 * schedules.Polynomial(start=0, end=1)(0) == pytest.approx(0.8 * (1 - 0.5**3))
    with pytest.raises(ValueError, match="power"):
        schedules.Polynomial(power=0.5)


def test_masks_lowest_scores_on_schedule_and_shrinks():
    x, y = _data()
    model = _model()
    callback = CriterionPruning("l1", x[:32], target=Target(fraction=0.5),
                                schedule=schedules.Linear(start=0, end=2), global_pruning=False)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[callback])
    by_layer = {}
    for event in callback.events:
        by_layer.setdefault(event["layer"], []).append(event["live_units"])
    assert by_layer == {"h1": [8, 6, 5], "h2": [6, 5, 4]}  # ceil(f * width) off
    assert history.history["live_units"] == [14, 11, 9]
    assert model.get_layer("h1").active_units == 5
    small = shrink(model)
    np.testing.assert_allclose(small.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    assert small.get_layer("h1").units == 5 and small.get_layer("h2").units == 4


def test_under_mirrored_strategy_masks_what_single_device_scores_say(two_cpu_strategy):
    x, y = _data()
    with two_cpu_strategy.scope():
        model = _model()
    callback = CriterionPruning(ActivationVariance(batch_size=10), x[:30],
                                target=Target(fraction=0.4), schedule=schedules.Linear(start=1),
                                global_pruning=False)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    assert [e["step"] for e in callback.events] == [1, 1]
    # The event was the last thing in training: score the unmasked weights
    # on one device and check the same units went.
    single = _model()
    single.set_weights(model.get_weights())
    for name in ("h1", "h2"):
        single.get_layer(name).set_unit_mask(np.ones(single.get_layer(name).units))
    scores = ActivationVariance()(ProbedModel(single), x[:30])
    for event in callback.events:
        count = len(event["units"])
        assert count == int(np.ceil(0.4 * single.get_layer(event["layer"]).units))
        lowest = np.sort(np.argsort(scores[event["layer"]], kind="stable")[:count])
        assert event["units"] == lowest.tolist()


def test_invalid_arguments():
    x, y = _data(16)
    with pytest.raises(ValueError, match="fraction"):
        CriterionPruning("l1", x, target=Target(fraction=1.0))
    with pytest.raises(ValueError, match="end"):
        CriterionPruning("l1", x, schedule=schedules.Linear(start=3, end=1))
    with pytest.raises(ValueError, match="max_accuracy_drop"):
        CriterionPruning("l1", x, target=Target(max_accuracy_drop=0.01))
    with pytest.raises(ValueError, match="pass `y`"):
        CriterionPruning("brute_force", x)
    # A model of only the output layer has no unit group to prune.
    single = keras.Sequential([keras.Input((6,)), L.Dense(2)])
    single.compile("sgd", "mse")
    with pytest.raises(ValueError, match="no resizable unit group"):
        single.fit(x, np.zeros((16, 2)), epochs=1, verbose=0,
                   callbacks=[CriterionPruning("l1", x)])


def test_plain_layers_are_masked_in_place_and_shrink_to_plain_layers():
    x, _ = _data(16)
    plain = keras.Sequential([keras.Input((6,)), L.Dense(4, name="d"), L.Dense(2, name="out")])
    plain.compile("sgd", "mse")
    callback = CriterionPruning("l1", x, target=Target(fraction=0.5))
    plain.fit(x, np.zeros((16, 2)), epochs=2, verbose=0, callbacks=[callback])
    off = callback.events[0]["units"]
    assert len(off) == 2
    # The masked units own their kernel columns, biases and the next kernel's
    # rows, and these stay zero through the second epoch's updates.
    kernel, bias = plain.get_layer("d").get_weights()
    assert not kernel[:, off].any() and not bias[off].any()
    assert not plain.get_layer("out").get_weights()[0][off].any()
    small = shrink(plain)
    assert [type(layer).__name__ for layer in small.layers] == ["Dense", "Dense"]
    assert small.get_layer("d").units == 2
    np.testing.assert_allclose(small.predict(x, verbose=0), plain.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)

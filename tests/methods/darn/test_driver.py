"""DARN Algorithm 1, threshold pruning and folding into correlated partners."""

import keras
import numpy as np
import pytest

from keras_darn.criteria.probes import ProbedModel
from keras_darn.criteria.weight_l1 import WeightL1
from keras_darn.methods.darn.driver import dynamic_neuron_removal
from keras_darn.methods.darn.driver import prune_by_threshold
from keras_darn.methods.darn.driver import select_by_threshold
from keras_darn.resizing.schedules import LogSpaced
from keras_darn.resizing.schedules import Schedule

L = keras.layers


class Values(Schedule):
    """Step i gives `values[i]`: any schedule gives DARN its thresholds."""

    def __init__(self, values):
        self.values = list(values)

    def __call__(self, step):
        return self.values[step] if 0 <= step < len(self.values) else None

    def get_config(self):
        return {"values": self.values}


def old_log_thresholds(first, last, num):
    """The removed `log_thresholds`, as it was, for the comparison below."""
    if first <= 0 or last <= 0 or num < 1:
        raise ValueError("Expected positive `first`, `last` and `num`.")
    return np.geomspace(first, last, int(num)).tolist()


def old_correlation_thresholds(first=0.98, last=0.5, num=8):
    """The removed `correlation_thresholds`, as it was."""
    if not 0 < last <= first < 1:
        raise ValueError("Expected 0 < last <= first < 1.")
    return (1.0 - np.geomspace(1.0 - first, 1.0 - last, int(num))).tolist()


def _mlp(width=8):
    model = keras.Sequential(
        [keras.Input((4,)), L.Dense(width, activation="relu", name="hidden"),
         L.Dense(3, activation="softmax", name="out")]
    )
    kernel, bias = model.get_layer("hidden").get_weights()
    kernel = kernel * np.linspace(0.05, 1.0, width)  # unit k's norm grows with k
    model.get_layer("hidden").set_weights([kernel, bias])
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def test_darn_stops_at_the_sacrifice_bound_and_returns_last_accepted():
    model = _mlp()
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.zeros(16, "int64")
    # initial; t1: after pruning, retrain 1 (accepted: 0.89 >= 0.90 - 0.015);
    # t2: after pruning, retrains 1..3 all below 0.885 -> stop.
    script = iter([0.90, 0.80, 0.89, 0.70, 0.86, 0.87, 0.8849])
    retrained = []

    def retrain(m):
        retrained.append(m)
        return m

    pruned, history = dynamic_neuron_removal(
        model, WeightL1(), Values([0.3, 0.6, 0.9]), x, y, x, y, sacrifice=0.015, max_retrains=3,
        evaluate_fn=lambda m: next(script), retrain_fn=retrain, latency_data=x[:4],
    )
    steps = history["steps"]
    assert history["stopped_at"] == 0.6
    assert [s["threshold"] for s in steps] == [0.0, 0.3, 0.6, 0.6, 0.6]
    assert [s["accepted"] for s in steps] == [True, True, False, False, False]
    assert [s["retrain"] for s in steps] == [0, 1, 1, 2, 3]
    assert len(retrained) == 4
    # The returned model is the one accepted at t = 0.3, not the t = 0.6 one.
    assert pruned is retrained[0]
    assert pruned.get_layer("hidden").units == steps[1]["widths"]["hidden"] < 8
    assert steps[3]["widths"]["hidden"] < steps[1]["widths"]["hidden"]
    assert steps[1]["params"] < steps[0]["params"] and steps[1]["flops"] < steps[0]["flops"]
    assert steps[2]["pruned_accuracy"] == 0.70
    with pytest.raises(StopIteration):
        next(script)  # every scripted evaluation was used, none more


def test_darn_runs_all_thresholds_while_accuracy_holds():
    model = _mlp()
    x = np.random.default_rng(1).normal(size=(16, 4)).astype("float32")
    y = np.zeros(16, "int64")
    pruned, history = dynamic_neuron_removal(
        model, "weight_l1", Values([0.3, 0.5]), x, y, x, y, sacrifice=0.0, max_retrains=1,
        evaluate_fn=lambda m: 0.5, retrain_fn=lambda m: m, latency_data=None,
    )
    assert history["stopped_at"] is None
    assert pruned.get_layer("hidden").units < 8
    assert all(s["accepted"] for s in history["steps"])


def test_relative_threshold_selection_keeps_min_units():
    model = _mlp()
    probed = ProbedModel(model)
    criterion = WeightL1()
    scores = criterion(probed)
    relative = scores["hidden"] / scores["hidden"].max()
    chosen = select_by_threshold(criterion, probed, scores, 0.5)["hidden"]
    assert sorted(u for u, _, _ in chosen) == np.flatnonzero(relative < 0.5).tolist()
    everything = select_by_threshold(criterion, probed, scores, 2.0, min_units=3)["hidden"]
    assert len(everything) == 5


def test_thresholds_are_log_spaced():
    np.testing.assert_allclose(LogSpaced(0.01, 1.0, 3).values(), [0.01, 0.1, 1.0])
    np.testing.assert_allclose(
        LogSpaced(0.99, 0.9, 2, distance_to_one=True).values(), [0.99, 0.9]
    )
    middle = LogSpaced(0.98, 0.5, 3, distance_to_one=True)(1)
    np.testing.assert_allclose(1 - middle, 0.1)
    # Thresholds that fall in aggression are refused (correlation: rising).
    model = _mlp()
    x = np.zeros((4, 4), "float32")
    with pytest.raises(ValueError, match="out of order"):
        dynamic_neuron_removal(
            model, "correlation", LogSpaced(0.5, 0.9, 8, distance_to_one=True),
            x, np.zeros(4, "int64"), x, np.zeros(4, "int64"),
        )
    with pytest.raises(ValueError, match="out of order"):
        dynamic_neuron_removal(
            model, "weight_l1", Values([0.5, 0.3]), x, np.zeros(4, "int64"), x,
            np.zeros(4, "int64"),
        )
    with pytest.raises(ValueError, match="Schedule"):
        dynamic_neuron_removal(model, "weight_l1", [0.3, 0.5], x, None, x, None)


@pytest.mark.parametrize("first, last, num", [(0.01, 1.0, 3), (0.05, 0.6, 6), (0.05, 0.6, 12),
                                              (0.2, 0.2, 1), (0.6, 0.05, 4)])
def test_log_spaced_gives_the_old_log_thresholds(first, last, num):
    assert LogSpaced(first, last, num).values() == old_log_thresholds(first, last, num)
    assert [LogSpaced(first, last, num)(i) for i in range(num + 1)] == (
        old_log_thresholds(first, last, num) + [None]
    )


@pytest.mark.parametrize("first, last, num", [(0.98, 0.5, 8), (0.98, 0.5, 6), (0.98, 0.5, 12),
                                              (0.99, 0.9, 2), (0.98, 0.8, 2), (0.9, 0.9, 1)])
def test_log_spaced_distance_to_one_gives_the_old_correlation_thresholds(first, last, num):
    schedule = LogSpaced(first, last, num, distance_to_one=True)
    assert schedule.values() == old_correlation_thresholds(first, last, num)


def _duplicated_units(kind):
    """Unit 3 computes exactly twice unit 1 (ReLU is positively homogeneous)."""
    rng = np.random.default_rng(2)
    if kind == "dense":
        inputs = keras.Input((5,))
        h = L.Dense(6, activation="relu", name="hidden")(inputs)
        out = L.Dense(3, name="out")(h)
        x = rng.normal(size=(64, 5)).astype("float32")
    else:
        inputs = keras.Input((7, 7, 2))
        h = L.Conv2D(5, 3, activation="relu", name="hidden")(inputs)
        h = L.Conv2D(4, 3, activation="relu", name="reader")(h)
        out = L.Dense(3, name="out")(L.Flatten()(h))
        x = rng.normal(size=(32, 7, 7, 2)).astype("float32")
    model = keras.Model(inputs, out)
    layer = model.get_layer("hidden")
    kernel, bias = layer.get_weights()
    kernel[..., 3] = 2.0 * kernel[..., 1]
    bias[1] = 0.1
    bias[3] = 0.2
    layer.set_weights([kernel, bias])
    model.compile("sgd", "mse")
    return model, x


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_folding_a_duplicated_unit_keeps_the_function(kind):
    model, x = _duplicated_units(kind)
    folded, removed = prune_by_threshold(model, "correlation", 0.9999, x, fold=True,
                                         layers=["hidden"])
    # Of the pair, the unit with the smaller mean activation goes.
    assert removed == {"hidden": [(1, 3, pytest.approx(1.0, abs=1e-5))]}
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-4)
    plain, _ = prune_by_threshold(model, "correlation", 0.9999, x, fold=False,
                                  layers=["hidden"])
    gap = np.abs(plain.predict(x, verbose=0) - model.predict(x, verbose=0)).max()
    assert gap > 1e-2
    assert plain.get_layer("hidden").get_config()[
        "units" if kind == "dense" else "filters"
    ] == (5 if kind == "dense" else 4)


def test_folding_through_flatten_with_the_reader_also_pruned():
    rng = np.random.default_rng(3)
    inputs = keras.Input((6, 6, 1))
    h = L.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    h = L.Flatten()(h)
    h = L.Dense(5, activation="relu", name="fc")(h)
    model = keras.Model(inputs, L.Dense(2, name="out")(h))
    for name in ("conv", "fc"):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        kernel[..., 2] = 3.0 * kernel[..., 0]
        bias[0], bias[2] = 0.05, 0.15
        layer.set_weights([kernel, bias])
    model.compile("sgd", "mse")
    x = rng.normal(size=(40, 6, 6, 1)).astype("float32")
    folded, removed = prune_by_threshold(model, "correlation", 0.9999, x, fold=True)
    assert {k: [u for u, _, _ in v] for k, v in removed.items()} == {"conv": [0], "fc": [0]}
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-4)


def test_fold_needs_the_correlation_criterion():
    model = _mlp()
    with pytest.raises(ValueError, match="correlation"):
        prune_by_threshold(model, "l1", 0.5, np.zeros((4, 4), "float32"), fold=True)

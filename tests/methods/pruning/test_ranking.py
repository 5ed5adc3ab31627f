"""Single Overall Ranking and Iterative Re-ranking."""

import keras
import numpy as np
import pytest

from keras_darn.methods.pruning.ranking import error_surface
from keras_darn.methods.pruning.ranking import iterative_reranking
from keras_darn.methods.pruning.ranking import single_overall_ranking
from keras_darn.criteria.base import Criterion
from keras_darn.criteria.brute_force import BruteForce
from keras_darn.criteria.probes import ProbedModel

L = keras.layers


class _Scripted(Criterion):
    """Scores that change once a unit's partner is gone; records every call."""

    name = "scripted"
    needs_data = False

    def __init__(self):
        super().__init__()
        self.calls = []

    def score(self, probed, x, y, strategy):
        live = probed.live["hidden"].copy()
        self.calls.append(live)
        scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        if not live[0]:
            scores[5] = 0.5  # unit 5 was only useful next to unit 0
        return {"hidden": scores}


def _trained_net():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 6)).astype("float32")
    y = (x[:, :3].sum(1) > 0).astype("int64") + (x[:, 3] > 0.5)
    model = keras.Sequential(
        [keras.Input((6,)), L.Dense(6, activation="sigmoid", name="hidden"),
         L.Dense(3, activation="softmax", name="out")]
    )
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    return model, x, y


def _tiny_net():
    model = keras.Sequential(
        [keras.Input((3,)), L.Dense(6, activation="relu", name="hidden"), L.Dense(2)]
    )
    model.compile("sgd", "mse")
    return model, np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")


def test_iterative_reranking_rescores_after_every_removal():
    model, x, y = _tiny_net()
    single = _Scripted()
    single_history = single_overall_ranking(model, single, x, y, max_units=3,
                                            build_model=False).history
    iterative = _Scripted()
    iterative_history = iterative_reranking(model, iterative, x, y, max_units=3,
                                            build_model=False).history
    assert len(single.calls) == 1
    assert len(iterative.calls) == 3
    # Each call sees the units removed so far.
    assert [int((~live).sum()) for live in iterative.calls] == [0, 1, 2]
    assert [s["unit"] for s in single_history["steps"][1:]] == [0, 1, 2]
    assert [s["unit"] for s in iterative_history["steps"][1:]] == [0, 5, 1]
    assert iterative_history["stopped_by"] == "max_units"
    assert iterative_history["steps"][-1]["units_left"] == {"hidden": 3}


def test_iterative_brute_force_removes_the_least_harmful_unit_each_step():
    model, x, y = _trained_net()
    result = iterative_reranking(model, BruteForce(), x, y, max_fraction=0.5,
                                 eval_data=(x[:50], y[:50]))
    pruned, history = result.model, result.history
    steps = history["steps"]
    assert [(e["layer"], e["units"]) for e in result.events] == [
        ("hidden", [s["unit"]]) for s in steps[1:]]
    assert history["stopped_by"] == "max_fraction" and len(steps) == 4
    probed = ProbedModel(model)
    for step in steps[1:]:
        effects = BruteForce()(probed, x, y)["hidden"]
        assert step["unit"] == int(np.nanargmin(effects))
        expected_loss = probed.evaluate(x, y)[0] + effects[step["unit"]]
        np.testing.assert_allclose(step["loss"], expected_loss, rtol=1e-4)
        probed.remove("hidden", [step["unit"]])
        assert "eval_accuracy" in step
    assert pruned.get_layer("hidden").units == 3
    np.testing.assert_allclose(pruned.evaluate(x, y, verbose=0), steps[-1]["loss"], rtol=1e-4)


def test_accuracy_drop_stops_before_the_bound_is_crossed():
    model, x, y = _trained_net()
    free = single_overall_ranking(model, "random", x, y, build_model=False).history
    assert free["stopped_by"] == "min_units" and free["steps"][-1]["units_left"] == {
        "hidden": 1
    }
    result = iterative_reranking(model, "brute_force", x, y, max_accuracy_drop=0.02)
    pruned, history = result.model, result.history
    start = history["steps"][0]["accuracy"]
    assert history["stopped_by"] in ("max_accuracy_drop", "min_units")
    assert all(s["accuracy"] >= start - 0.02 for s in history["steps"])
    assert pruned.get_layer("hidden").units == 6 - (len(history["steps"]) - 1)


def test_error_surface_passes_through_the_unit_on_and_off():
    model, x, y = _trained_net()
    probed = ProbedModel(model)
    surface = error_surface(probed, "hidden", 2, x, y, [0.0, 1.0, 2.0])
    base_loss, _ = probed.evaluate(x, y)
    off = BruteForce()(probed, x, y)["hidden"][2] + base_loss
    np.testing.assert_allclose(surface["loss"][1], base_loss, rtol=1e-5)
    np.testing.assert_allclose(surface["loss"][0], off, rtol=1e-5)
    history = iterative_reranking(model, "taylor2", x, y, max_units=3,
                                  error_surface_every=2, alphas=np.linspace(0, 2, 5)).history
    recorded = [i for i, s in enumerate(history["steps"]) if "error_surface" in s]
    assert recorded == [1, 3]
    assert len(history["steps"][1]["error_surface"]["loss"]) == 5


def test_invalid_stopping_arguments():
    model, x, y = _tiny_net()
    with pytest.raises(ValueError, match="max_fraction"):
        iterative_reranking(model, "random", x, y, max_fraction=1.5)
    with pytest.raises(ValueError, match="max_units"):
        iterative_reranking(model, "random", x, y, max_units=-1)
    with pytest.raises(ValueError, match="algorithm"):
        from keras_darn.methods.pruning.ranking import prune_by_ranking

        prune_by_ranking(model, "random", x, y, algorithm="greedy")

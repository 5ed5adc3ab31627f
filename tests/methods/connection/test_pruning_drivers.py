"""The static and adaptive prune-retrain drivers on scripted accuracies."""

import keras
import numpy as np
import pytest

from keras_darn.layers import PrunableDense
from keras_darn.methods.connection import adaptive_rate
from keras_darn.methods.connection import evaluation
from keras_darn.methods.connection import pruning as cp


def tiny_model():
    """One masked layer of 10 x 10 = 100 weights with distinct magnitudes."""
    model = keras.Sequential(
        [keras.Input((10,)), PrunableDense(10, use_bias=False, connection_mask=True, name="d")]
    )
    kernel = np.random.permutation(np.arange(1, 101, dtype="float32")).reshape(10, 10) / 100
    model.get_layer("d").kernel.assign(kernel)
    return model


class Script:
    """`evaluate` returning scripted accuracies, and a counting `retrain`."""

    def __init__(self, accuracies):
        self.accuracies = list(accuracies)
        self.retrains = 0
        self.remaining_seen = []

    def evaluate(self, model):
        self.remaining_seen.append(cp.remaining_weights(model))
        assert self.accuracies, "the driver evaluated more often than scripted"
        return self.accuracies.pop(0)

    def retrain(self, model):
        self.retrains += 1


def test_adaptive_rate_follows_algorithm_1():
    model = tiny_model()
    script = Script(
        [
            0.900,  # base accuracy (before pruning)
            # step 1: trials 0.15 and 0.20 within 0.01 of 0.900, 0.25 is not
            0.899, 0.895, 0.880,
            0.895,  # pruned at 0.20
            0.898,  # retrained: >= floor 0.89, accepted
            # step 2: PR restarts at 0.1; the first trial (0.15) already fails
            0.850,
            0.860,  # pruned at 0.10 (the floor of the search)
            0.891,  # retrained: accepted
            # step 3: trial 0.15 fine, 0.20 too far from 0.891
            0.885, 0.870,
            0.880,  # pruned at 0.15
            0.880,  # retrained: below the floor, undone, end
        ]
    )
    result = adaptive_rate.adaptive_pruning(
        model, script.evaluate, script.retrain, max_accuracy_drop=0.01, restart_rate=True
    )
    assert not script.accuracies  # every scripted evaluation was used
    assert [s["rate"] for s in result.history["steps"]] == [0.2, 0.1, 0.15]
    assert [s["accepted"] for s in result.history["steps"]] == [True, True, False]
    assert result.history["steps"][0]["trials"] == [(0.15, 0.899), (0.2, 0.895), (0.25, 0.880)]
    assert result.history["steps"][1]["trials"] == [(0.15, 0.850)]
    assert result.history["steps"][2]["trials"] == [(0.15, 0.885), (0.2, 0.870)]
    # 100 -> 80 (0.2) -> 72 (0.1); the 0.15 step (72 -> 62) was undone.
    assert [s["remaining_weights"] for s in result.history["steps"]] == [80, 72, 62]
    # Trials are undone: every trial was evaluated from the step's start.
    assert script.remaining_seen[:5] == [100, 85, 80, 75, 80]
    assert script.retrains == 3
    assert cp.remaining_weights(model) == 72
    assert result.history["remaining_weights"] == 72
    assert result.history["accuracy"] == 0.891
    assert result.history["accepted_steps"] == 2 and len(result.history["steps"]) == 3
    assert sum(len(s["trials"]) for s in result.history["steps"]) == 6
    assert result.history["base_accuracy"] == 0.9
    assert result.history["accuracy_floor"] == pytest.approx(0.89)
    assert result.history["steps"][0]["accuracy_after_pruning"] == 0.895


def test_adaptive_rate_continues_from_last_rate_by_default():
    model = tiny_model()
    script = Script(
        [
            0.90,
            0.90, 0.90, 0.80, 0.90, 0.90,  # trials 0.15, 0.2, 0.25(fail); prune 0.2; retrain
            0.90, 0.80, 0.90, 0.80,  # trials 0.25, 0.3(fail); prune 0.25; retrain -> rejected
        ]
    )
    result = adaptive_rate.adaptive_pruning(
        model, script.evaluate, script.retrain, max_accuracy_drop=0.05
    )
    assert [s["rate"] for s in result.history["steps"]] == [0.2, 0.25]
    assert [t[0] for t in result.history["steps"][1]["trials"]] == [0.25, 0.3]
    assert [s["accepted"] for s in result.history["steps"]] == [True, False]


def test_trial_drop_measured_from_the_base_accuracy():
    model = tiny_model()
    script = Script(
        [
            0.90,  # base; floor 0.85 (drop 0.05)
            0.88, 0.86, 0.84, 0.86, 0.88,  # trials 0.15, 0.2 ok, 0.25 below the floor; prune 0.2
            # step 2 starts at 0.88: with the "step" reference 0.84 would be a good trial
            # (0.04 below 0.88); from the base it is 0.06 below 0.90, so 0.25 fails.
            0.84, 0.84, 0.86,  # trial 0.25 fails; prune 0.2; retrain
        ]
    )
    result = adaptive_rate.adaptive_pruning(
        model, script.evaluate, script.retrain, max_accuracy_drop=0.05, trial_reference="base",
        max_steps=2,
    )
    assert not script.accuracies
    assert [s["rate"] for s in result.history["steps"]] == [0.2, 0.2]
    assert result.history["steps"][1]["trials"] == [(0.25, 0.84)]
    # The same numbers with the default reference accept 0.25 in step 2.
    script = Script([0.90, 0.88, 0.86, 0.84, 0.86, 0.88, 0.84, 0.80, 0.84, 0.86])
    result = adaptive_rate.adaptive_pruning(
        tiny_model(), script.evaluate, script.retrain, max_accuracy_drop=0.05, max_steps=2,
    )
    assert [s["rate"] for s in result.history["steps"]] == [0.2, 0.25]


def test_lower_rate_on_failure_retries_instead_of_stopping():
    model = tiny_model()
    # Each step: trials (none on a retry), accuracy after pruning, after retraining.
    script = Script(
        [
            0.90,  # base; floor 0.85
            0.90, 0.90, 0.80, 0.88, 0.88,  # trials 0.15, 0.2 ok, 0.25 fails; 0.2: accepted
            0.88, 0.80, 0.84, 0.84,  # trials 0.25 ok, 0.3 fails; 0.25: below the floor
            0.84, 0.86,  # retry at 0.2: accepted
            0.80, 0.82, 0.82,  # trial 0.25 fails; 0.2: below the floor
            0.82, 0.83,  # retry at 0.15: below
            0.83, 0.84,  # retry at 0.1 = initial_rate: below, end
        ]
    )
    result = adaptive_rate.adaptive_pruning(
        model, script.evaluate, script.retrain, max_accuracy_drop=0.05, on_failure="lower_rate",
    )
    assert not script.accuracies
    assert [s["rate"] for s in result.history["steps"]] == [0.2, 0.25, 0.2, 0.2, 0.15, 0.1]
    assert [s["accepted"] for s in result.history["steps"]] == [True, False, True, False, False, False]
    assert [len(s["trials"]) for s in result.history["steps"]] == [3, 2, 0, 1, 0, 0]
    # 100 -> 80 (0.2) -> 64 (0.2 after the undone 0.25 step); the last three steps were undone.
    assert cp.remaining_weights(model) == 64 and result.history["accuracy"] == 0.86
    assert result.history["accepted_steps"] == 2 and len(result.history["steps"]) == 6


def test_adaptive_rate_respects_max_rate_and_base_accuracy():
    model = tiny_model()
    # base_accuracy given: no initial evaluation of the base; the current
    # accuracy (0.95) is still measured for the first trials.
    script = Script([0.95, 0.95, 0.95, 0.95, 0.90])
    result = adaptive_rate.adaptive_pruning(
        model, script.evaluate, script.retrain, max_accuracy_drop=0.02,
        max_rate=0.2, base_accuracy=0.93,
    )
    assert result.history["steps"][0]["rate"] == 0.2  # the search stopped at max_rate
    assert [t[0] for t in result.history["steps"][0]["trials"]] == [0.15, 0.2]
    assert result.history["accepted_steps"] == 0 and result.history["remaining_weights"] == 100
    assert result.history["accuracy"] == 0.95  # measured before pruning, not the given base
    assert cp.remaining_weights(model) == 100  # the rejected step was undone


def test_static_rate_runs_until_the_accuracy_drops():
    model = tiny_model()
    script = Script([0.9, 0.7, 0.9, 0.7, 0.895, 0.7, 0.85])
    result = adaptive_rate.static_pruning(
        model, 0.5, script.evaluate, script.retrain, max_accuracy_drop=0.01
    )
    assert [s["remaining_weights"] for s in result.history["steps"]] == [50, 25, 13]
    assert [s["accepted"] for s in result.history["steps"]] == [True, True, False]
    assert result.history["remaining_weights"] == 25 and cp.remaining_weights(model) == 25
    assert result.history["steps"][0]["trials"] == []
    rows = result.history["steps"]
    assert rows[1]["rate"] == 0.5 and rows[1]["accuracy"] == 0.895


def test_static_rate_failure_restores_the_model():
    model = tiny_model()
    before = model.get_weights()
    script = Script([0.9, 0.5, 0.6])
    result = adaptive_rate.static_pruning(
        model, 0.4, script.evaluate, script.retrain, max_accuracy_drop=0.0046
    )
    assert result.history["accepted_steps"] == 0
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_threshold_mode_rates_are_magnitudes():
    model = tiny_model()
    script = Script([0.9, 0.9, 0.7, 0.9, 0.9, 0.5, 0.9, 0.9])
    result = adaptive_rate.adaptive_pruning(
        model, script.evaluate, script.retrain, max_accuracy_drop=0.05, mode="threshold",
        max_steps=5, restart_rate=True,
    )
    # Weights are 0.01 .. 1.00: |w| < 0.15 removes 14 of them; in step 2 the
    # trial at 0.15 fails, |w| < 0.1 removes nothing more, which ends the run.
    assert not script.accuracies
    assert [s["remaining_weights"] for s in result.history["steps"]] == [86, 86]
    assert [s["rate"] for s in result.history["steps"]] == [0.15, 0.1]
    assert [s["accepted"] for s in result.history["steps"]] == [True, True]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_accuracy_drop": -0.1}, "max_accuracy_drop"),
        ({"max_accuracy_drop": 0.01, "initial_rate": 0.5, "max_rate": 0.3}, "max_rate"),
        ({"max_accuracy_drop": 0.01, "rate_step": 0}, "rate_step"),
        ({"max_accuracy_drop": 0.01, "max_steps": 0}, "max_steps"),
        ({"max_accuracy_drop": 0.01, "mode": "global"}, "mode"),
        ({"max_accuracy_drop": 0.01, "trial_reference": "floor"}, "trial_reference"),
        ({"max_accuracy_drop": 0.01, "on_failure": "retry"}, "on_failure"),
    ],
)
def test_adaptive_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adaptive_rate.adaptive_pruning(tiny_model(), lambda m: 1.0, lambda m: None, **kwargs)


def test_evaluate_and_retrain_must_be_callable():
    with pytest.raises(ValueError, match="evaluate"):
        adaptive_rate.static_pruning(tiny_model(), 0.2, (1, 2), lambda m: None, 0.01)
    with pytest.raises(ValueError, match="retrain"):
        adaptive_rate.static_pruning(tiny_model(), 0.2, lambda m: 1.0, None, 0.01)


def test_accuracy_evaluator_counts_argmax_hits():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.2, 0.1]], "float32")
    evaluate = evaluation.accuracy_evaluator(x, np.array([0, 1, 1, 0]), batch_size=3)
    assert evaluate(model) == 0.75
    one_hot = evaluation.accuracy_evaluator(x, np.eye(2)[[0, 1, 1, 0]])
    assert one_hot(model) == 0.75

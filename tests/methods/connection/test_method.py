"""Connection pruning through the front door: "weight_magnitude" and "adaptive_rate"."""

import keras
import numpy as np
import pytest

from keras_darn import datasets
from keras_darn.layers import PrunableDense
from keras_darn.methods.connection import AdaptiveRate
from keras_darn.methods.connection import WeightMagnitude
from keras_darn.methods.connection import pruning as cp
from keras_darn.resizing import Target
from keras_darn.resizing import prepare
from keras_darn.resizing import resize
from keras_darn.resizing.entry import get_method

(_X, _Y), (_XV, _YV) = datasets.load_digits()
X, Y = datasets.to_float_vectors(_X)[:400], _Y[:400]
X_VAL, Y_VAL = datasets.to_float_vectors(_XV)[:200], _YV[:200]


def _mlp():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(24, activation="relu", name="h0"),
         keras.layers.Dense(16, activation="relu", name="h1"),
         keras.layers.Dense(10, activation="softmax", name="out")]
    )


def _trained_mlp():
    model = _mlp()
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(X, Y, epochs=8, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def trained():
    return _trained_mlp()


def _check_unchanged(model, weights):
    assert [type(layer) for layer in model.layers] == [keras.layers.Dense] * 3
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("name, options", [
    ("weight_magnitude", {"rate": 0.3}),
    ("adaptive_rate", {"initial_rate": 0.2, "rate_step": 0.1}),
])
def test_prunes_a_copy_and_shrinks_it(trained, name, options):
    weights = [w.copy() for w in trained.get_weights()]
    result = resize(trained, name, Target(max_accuracy_drop=0.05), x=X, y=Y,
                    validation_data=(X_VAL, Y_VAL), epochs=1, max_steps=3, **options)
    _check_unchanged(trained, weights)
    assert result.method == name
    assert result.events and all(
        e["action"] == "prune_connections" and "layer" in e and e["accuracy"] >= 0
        for e in result.events
    )
    assert [e["step"] for e in result.events] == list(range(len(result.events)))
    remaining = [e["remaining_weights"] for e in result.events]
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[-1] < cp.remaining_weights(trained)
    small = result.model
    assert all(type(layer) is keras.layers.Dense for layer in small.layers)
    assert cp.remaining_weights(small) <= remaining[-1]
    assert result.after["params"] <= result.before["params"]
    floor = result.history["accuracy_floor"]
    assert all(e["accuracy"] >= floor - 1e-9 for e in result.events)
    assert result.history["base_accuracy"] == pytest.approx(floor + 0.05)
    if name == "weight_magnitude":
        assert all(e["rate"] == 0.3 for e in result.events)
    else:
        assert all(e["rate"] >= 0.2 for e in result.events)


def test_shrink_false_hands_back_the_masked_model(trained):
    result = resize(trained, "weight_magnitude", Target(max_accuracy_drop=1.0), x=X, y=Y,
                    validation_data=(X_VAL, Y_VAL), epochs=0, rate=0.5, max_steps=2,
                    shrink=False)
    masked = result.model
    assert all(isinstance(layer, PrunableDense) for layer in masked.layers)
    assert masked.compiled
    assert cp.remaining_weights(masked) == result.events[-1]["remaining_weights"]
    assert len(result.events) == 2 and len(result.history["steps"]) == 2


def test_exclude_and_a_custom_evaluate(trained):
    calls = []

    def evaluate(model):
        calls.append(model)
        return 0.5

    result = resize(trained, "weight_magnitude", Target(max_accuracy_drop=0.0, exclude=["out"]),
                    x=X, y=Y, epochs=0, rate=0.5, max_steps=1, evaluate=evaluate, shrink=False)
    assert calls and result.events[0]["accuracy"] == 0.5
    assert type(result.model.get_layer("out")) is keras.layers.Dense
    assert cp.remaining_weights(result.model, by_layer=True)["out"] == 16 * 10


@pytest.mark.parametrize("cls, options, message", [
    (WeightMagnitude, {"rate": 0.0}, "rate"),
    (WeightMagnitude, {"rate": 2.0}, "rate"),
    (WeightMagnitude, {"mode": "median"}, "mode"),
    (WeightMagnitude, {"max_steps": 0}, "max_steps"),
    (WeightMagnitude, {"batch_size": 0}, "batch_size"),
    (WeightMagnitude, {"base_accuracy": 1.5}, "base_accuracy"),
    (WeightMagnitude, {"evaluate": 3}, "evaluate"),
    (WeightMagnitude, {"shrink": "yes"}, "shrink"),
    (AdaptiveRate, {"initial_rate": 1.5}, "initial_rate"),
    (AdaptiveRate, {"rate_step": 0}, "rate_step"),
    (AdaptiveRate, {"initial_rate": 0.5, "max_rate": 0.4}, "max_rate"),
    (AdaptiveRate, {"trial_drop": -0.1}, "trial_drop"),
    (AdaptiveRate, {"trial_reference": "epoch"}, "trial_reference"),
    (AdaptiveRate, {"on_failure": "retry"}, "on_failure"),
    (AdaptiveRate, {"restart_rate": 1}, "restart_rate"),
])
def test_options_are_validated(cls, options, message):
    with pytest.raises(ValueError, match=message):
        cls(**options)


@pytest.mark.parametrize("name", ["weight_magnitude", "adaptive_rate"])
def test_refuses_what_it_does_not_support(trained, name):
    with pytest.raises(ValueError, match="needs a target amount"):
        resize(trained, name, x=X, y=Y, validation_data=(X_VAL, Y_VAL))
    with pytest.raises(ValueError, match="does not support"):
        resize(trained, name, Target(fraction=0.5, max_accuracy_drop=0.01), x=X, y=Y,
               validation_data=(X_VAL, Y_VAL))
    with pytest.raises(ValueError, match="between fits"):
        prepare(trained, name)
    target = Target(max_accuracy_drop=0.01)
    with pytest.raises(ValueError, match="validation_data"):
        resize(trained, name, target, x=X, y=Y)
    with pytest.raises(ValueError, match="x= and y="):
        resize(trained, name, target, validation_data=(X_VAL, Y_VAL))
    with pytest.raises(ValueError, match="compile"):
        resize(_mlp(), name, target, x=X, y=Y,
               validation_data=(X_VAL, Y_VAL))


@pytest.mark.parametrize("name, options", [
    ("weight_magnitude", {"rate": 0.5, "mode": "std", "max_steps": 7}),
    ("adaptive_rate", {"initial_rate": 0.0, "rate_step": 0.2, "mode": "threshold",
                       "on_failure": "lower_rate", "restart_rate": True}),
])
def test_get_config_round_trips(name, options):
    method = get_method(name, **options)
    config = method.get_config()
    assert type(method)(**config).get_config() == config
    for key, value in options.items():
        assert config[key] == value
    assert method.resize_requires_amount and method.resize_amounts == ("max_accuracy_drop",)

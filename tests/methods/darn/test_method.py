"""DARN's Algorithm 1 through the front door: `darn.resize(model, "darn", ...)`."""

import keras
import numpy as np
import pytest

from keras_darn.methods.darn import DARN
from keras_darn.resizing import Target
from keras_darn.resizing import prepare
from keras_darn.resizing import resize
from keras_darn.resizing import schedules
from keras_darn.resizing.entry import get_method

RNG = np.random.default_rng(0)
X = RNG.uniform(size=(64, 6)).astype("float32")
Y = RNG.integers(0, 3, size=64)


def _mlp(width=12, compile=True):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(width, activation="relu", name="hidden"),
         keras.layers.Dense(3, activation="softmax", name="out")]
    )
    kernel, bias = model.get_layer("hidden").get_weights()
    model.get_layer("hidden").set_weights([kernel * np.linspace(0.05, 1.0, width), bias])
    if compile:
        model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def _resize(model, target=Target(max_accuracy_drop=1.0), **options):
    return resize(model, "darn", target, x=X, y=Y, validation_data=(X, Y), epochs=1,
                  schedule=options.pop("schedule", schedules.LogSpaced(0.2, 0.6, 2)),
                  criterion=options.pop("criterion", "weight_l1"), latency_batch=8, **options)


def test_resize_prunes_a_copy_and_reports_every_removal():
    model = _mlp()
    weights = [w.copy() for w in model.get_weights()]
    result = _resize(model)
    small = result.model
    assert isinstance(small, keras.Model) and small is not model
    assert type(small.get_layer("hidden")) is keras.layers.Dense
    assert small.get_layer("hidden").units < 12
    assert result.after["params"] < result.before["params"]
    # The model given is left as it was.
    assert model.get_layer("hidden").units == 12
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert result.events and all(
        e["action"] == "remove" and e["layer"] == "hidden" and e["units"] > 0
        and e["step"] in (0, 1) for e in result.events
    )
    assert sum(e["units"] for e in result.events) == 12 - small.get_layer("hidden").units
    assert result.history["sacrifice"] == 1.0 and result.history["stopped_at"] is None
    assert [s["step"] for s in result.history["steps"]][:2] == [None, 0]
    assert result.method == "darn"


def test_the_driver_default_sacrifice_without_an_amount():
    result = _resize(_mlp(), None, schedule=schedules.LogSpaced(0.2, 0.2, 1))
    assert result.history["sacrifice"] == 0.015


def test_min_units_and_exclude():
    result = _resize(_mlp(), Target(max_accuracy_drop=1.0, min_units=10),
                     schedule=schedules.LogSpaced(0.9, 0.9, 1))
    assert result.model.get_layer("hidden").units == 10
    keras.utils.set_random_seed(1)
    two = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(12, activation="relu", name="hidden"),
         keras.layers.Dense(12, activation="relu", name="second"),
         keras.layers.Dense(3, activation="softmax", name="out")]
    )
    two.compile("sgd", "sparse_categorical_crossentropy")
    result = _resize(two, Target(max_accuracy_drop=1.0, exclude=["hidden"]),
                     schedule=schedules.LogSpaced(0.9, 0.9, 1))
    assert result.model.get_layer("hidden").units == 12
    assert result.model.get_layer("second").units < 12
    assert {e["layer"] for e in result.events} == {"second"}
    with pytest.raises(ValueError, match="no layer left to prune"):
        _resize(_mlp(), Target(max_accuracy_drop=1.0, exclude=["hidden"]))


def test_nothing_accepted_still_hands_back_a_copy():
    model = _mlp()
    result = resize(model, "darn", Target(max_accuracy_drop=0.0), x=X, y=Y,
                    validation_data=(X, Y[::-1].copy()), epochs=0,
                    schedule=schedules.LogSpaced(0.9, 0.9, 1), criterion="weight_l1",
                    latency_batch=8, max_retrains=1)
    assert result.model is not model
    if not result.events:  # the threshold was refused: the copy has the full width
        assert result.model.get_layer("hidden").units == 12


@pytest.mark.parametrize("options, message", [
    ({"max_retrains": 0}, "max_retrains"),
    ({"batch_size": -1}, "batch_size"),
    ({"fold": 1}, "fold"),
    ({"fold": True, "criterion": "l1"}, "fold"),
    ({"layers": "hidden"}, "layers"),
    ({"score_examples": 0}, "score_examples"),
    ({"latency_batch": 0}, "latency_batch"),
])
def test_options_are_validated(options, message):
    with pytest.raises(ValueError, match=message):
        DARN(**options)


def test_refuses_what_it_does_not_support():
    model = _mlp()
    with pytest.raises(ValueError, match="does not support"):
        _resize(model, Target(fraction=0.5))
    with pytest.raises(ValueError, match="between fits"):
        prepare(model, "darn")
    with pytest.raises(ValueError, match="x= and y="):
        resize(model, "darn", validation_data=(X, Y))
    with pytest.raises(ValueError, match="validation_data"):
        resize(model, "darn", x=X, y=Y)
    with pytest.raises(ValueError, match="compile"):
        resize(_mlp(compile=False), "darn", x=X, y=Y, validation_data=(X, Y))
    with pytest.raises(ValueError, match="Schedule"):
        DARN().resize(model, Target(), x=X, y=Y, validation_data=(X, Y), schedule=[0.1])


def test_get_config_round_trips():
    method = get_method("darn", criterion="correlation", fold=True, layers=["hidden"],
                        max_retrains=2)
    assert isinstance(method, DARN)
    config = method.get_config()
    assert DARN(**config).get_config() == config
    assert config["fold"] is True and config["layers"] == ["hidden"]
    assert DARN.resize_amounts == ("max_accuracy_drop",) and DARN.prepare_amounts is None

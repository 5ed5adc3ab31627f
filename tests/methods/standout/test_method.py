"""Standout through the front door: `darn.prepare(model, "standout", ...)`."""

import keras
import numpy as np
import pytest

import keras_darn as darn
from keras_darn.layers.standout_dense import StandoutDense
from keras_darn.methods.standout import Standout
from keras_darn.methods.standout import StandoutPruning
from keras_darn.methods.standout.conversion import hidden_dense_names
from keras_darn.resizing import Target
from keras_darn.resizing import prepare
from keras_darn.resizing import schedules
from keras_darn.resizing.entry import get_method

RNG = np.random.default_rng(0)
X = RNG.uniform(size=(96, 6)).astype("float32")
Y = RNG.integers(0, 3, size=96)


def _mlp(widths=(10, 8)):
    layers = [keras.Input((6,))]
    for i, width in enumerate(widths):
        layers.append(keras.layers.Dense(width, activation="relu", name=f"h{i}"))
    layers.append(keras.layers.Dense(3, activation="softmax", name="out"))
    return keras.Sequential(layers)


def _train(model, callback, epochs=3):
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, Y, epochs=epochs, batch_size=32, verbose=0, callbacks=[callback])


def test_registered_with_paper_defaults():
    method = get_method("standout")
    assert isinstance(method, Standout)
    layer = StandoutDense(4)
    assert (method.alpha, method.beta) == (layer.alpha, layer.beta)
    assert method.prepare_amounts == ("fraction", "units")
    assert not method.acts_between_fits


def test_prepare_converts_hidden_dense_and_leaves_model_untouched():
    model = _mlp()
    weights = [w.copy() for w in model.get_weights()]
    new, callback = prepare(model, "standout", Target(units=4), alpha=2.0, beta=0.5)
    assert new is not model
    assert [type(layer) for layer in model.layers] == [keras.layers.Dense] * 3
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert [type(layer).__name__ for layer in new.layers] == [
        "StandoutDense", "StandoutDense", "Dense",
    ]
    for name in ("h0", "h1"):
        old, layer = model.get_layer(name), new.get_layer(name)
        assert layer.units == old.units
        assert (layer.alpha, layer.beta) == (2.0, 0.5)
        assert layer.activation is old.activation and layer.use_bias
        np.testing.assert_array_equal(layer.kernel.numpy(), old.kernel.numpy())
        np.testing.assert_array_equal(layer.bias.numpy(), old.bias.numpy())
        np.testing.assert_array_equal(layer.get_unit_mask(), np.ones(old.units))
    np.testing.assert_array_equal(new.get_layer("out").kernel.numpy(), model.get_layer("out").kernel.numpy())
    assert isinstance(callback.callback, StandoutPruning)
    assert callback.callback.target_units == {"h0": 4, "h1": 4}
    assert callback.callback.schedule == schedules.Geometric(0.5, every=1)


def test_hidden_dense_respects_exclude_and_merges():
    inputs = keras.Input((6,))
    a = keras.layers.Dense(4, name="a")(inputs)
    b = keras.layers.Dense(4, name="b")(a)
    merged = keras.layers.Add()([a, b])
    c = keras.layers.Dense(5, name="c")(merged)
    outputs = keras.layers.Dense(2, name="out")(c)
    model = keras.Model(inputs, outputs)
    # a and b are coupled by the Add, out reaches the output: only c is hidden alone.
    assert hidden_dense_names(model) == ["c"]
    assert hidden_dense_names(model, exclude=["c"]) == []
    with pytest.raises(ValueError, match="no StandoutDense layer and no hidden Dense"):
        prepare(model, "standout", Target(units=2, exclude=["c"]))


def test_three_epochs_reach_target_and_finish_matches_masked_model(tmp_path):
    keras.utils.set_random_seed(0)
    model, callback = prepare(
        _mlp(), "standout", Target(units=4), schedule=schedules.Geometric(0.5)
    )
    _train(model, callback, epochs=3)
    assert [model.get_layer(n).active_units for n in ("h0", "h1")] == [4, 4]
    events = callback.events
    assert {e["action"] for e in events} == {"remove"}
    assert [(e["step"], e["layer"], e["live_units"]) for e in events] == [
        (0, "h0", 5), (0, "h1", 4), (1, "h0", 4),
    ]
    assert all(set(e) >= {"step", "action", "layer", "units", "live_units"} for e in events)
    result = callback.finish()
    small = result.model
    assert [small.get_layer(n).units for n in ("h0", "h1")] == [4, 4]
    assert result.after["widths"] == {"h0": 4, "h1": 4}
    assert result.before["params"] > result.after["params"] == darn.count_params(small)
    np.testing.assert_allclose(
        small.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-5, atol=1e-5
    )
    path = str(tmp_path / "small.keras")
    small.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("h0"), StandoutDense)
    np.testing.assert_allclose(
        loaded.predict(X, verbose=0), small.predict(X, verbose=0), rtol=1e-6, atol=1e-6
    )


def test_fraction_target_and_existing_standout_model():
    inputs = keras.Input((6,))
    hidden = StandoutDense(10, activation="relu", seed=0, name="sd")(inputs)
    plain = keras.layers.Dense(6, activation="relu", name="plain")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(plain))
    model.get_layer("sd").set_unit_mask([1] * 9 + [0])
    new, callback = prepare(model, "standout", Target(fraction=0.5, min_units=6))
    # The model already has StandoutDense layers: a copy, nothing converted.
    assert type(new.get_layer("plain")) is keras.layers.Dense
    assert new.get_layer("sd") is not model.get_layer("sd")
    np.testing.assert_array_equal(new.get_layer("sd").get_unit_mask(), [1] * 9 + [0])
    assert callback.callback.target_units == {"sd": 6}  # max(10 - 5, min_units=6)
    _train(new, callback, epochs=2)
    assert new.get_layer("sd").active_units == 6
    assert model.get_layer("sd").active_units == 9
    result = callback.finish()
    assert result.model.get_layer("sd").units == 6


def test_units_dict_and_exclude_select_layers():
    model = _mlp()
    _, callback = prepare(model, "standout", Target(units={"h1": 3}))
    assert callback.callback.target_units == {"h1": 3}
    _, callback = prepare(model, "standout", Target(units=20, exclude=["h0"]))
    # h0 stays a Dense; a target wider than a layer leaves it as it is.
    assert callback.callback.target_units == {"h1": 8}
    new, _ = prepare(model, "standout", Target(fraction=0.5, exclude=["h0"]))
    assert type(new.get_layer("h0")) is keras.layers.Dense
    with pytest.raises(ValueError, match="are not layers Standout prunes"):
        prepare(model, "standout", Target(units={"out": 3}))
    # A name that is no layer at all is refused by the Target's own check.
    with pytest.raises(ValueError, match=r"`units`: model '.*' has no layer named 'nope'"):
        prepare(model, "standout", Target(units={"nope": 3}))


def test_needs_an_amount_and_refuses_unsupported_ones():
    with pytest.raises(ValueError, match="needs a target amount"):
        prepare(_mlp(), "standout")
    with pytest.raises(ValueError, match="does not support the target amount"):
        prepare(_mlp(), "standout", Target(params=0.5))
    with pytest.raises(ValueError, match="does not support the target amount"):
        prepare(_mlp(), "standout", Target(max_accuracy_drop=0.01))
    with pytest.raises(ValueError, match="acts during fit"):
        darn.resize(_mlp(), "standout", Target(units=4))


@pytest.mark.parametrize(
    "options, match",
    [
        ({"alpha": "1"}, "alpha"),
        ({"alpha": float("inf")}, "alpha"),
        ({"beta": float("nan")}, "beta"),
        ({"beta": True}, "beta"),
        ({"verbose": -1}, "verbose"),
    ],
)
def test_options_are_validated(options, match):
    with pytest.raises(ValueError, match=f"invalid value for `{match}`"):
        get_method("standout", **options)


def test_get_config_round_trips():
    method = get_method("standout", alpha=0.5, beta=-1.0, verbose=1)
    assert method.get_config() == {"alpha": 0.5, "beta": -1.0, "verbose": 1}
    clone = Standout(**method.get_config())
    assert clone.get_config() == method.get_config()
    _, callback = prepare(_mlp(), method, Target(units=4),
                          schedule=schedules.Geometric(0.3, every=2))
    inner = callback.callback
    restored = StandoutPruning.from_config(inner.get_config())
    assert restored.get_config() == inner.get_config()
    assert restored.schedule == schedules.Geometric(0.3, every=2)

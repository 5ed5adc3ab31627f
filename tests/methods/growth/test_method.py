"""Growth and the unified loop through the front door (`darn.resize`)."""

import keras
import numpy as np
import pytest

import keras_darn as darn
from keras_darn.methods.growth import Growth
from keras_darn.methods.growth import Unified
from keras_darn.methods.growth.grow import grow_units

L = keras.layers


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = darn.datasets.load_digits()
    x = x.reshape(len(x), -1).astype("float32") / 255.0
    return x[:192], y[:192].astype("int64")


def _model(compiled=True):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    h = L.Dense(8, activation="relu", name="h1")(inputs)
    h = L.Dense(8, activation="relu", name="h2")(h)
    model = keras.Model(inputs, L.Dense(10, name="out")(h))
    if compiled:
        model.compile(keras.optimizers.Adam(1e-2),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _plain(model):
    return isinstance(model, keras.Model) and all(
        type(layer).__module__.startswith("keras.") for layer in model.layers)


def _weights(model):
    return [w.copy() for w in model.get_weights()]


@pytest.mark.parametrize("name", ["growth", "zeros_out", "net2net", "gradmax"])
def test_growth_methods_widen_to_the_target(name, digits):
    x, y = digits
    model = _model()
    before = _weights(model)
    result = darn.resize(model, name, darn.Target(units=12), x=x, y=y, epochs=3,
                         schedule=darn.schedules.Constant(0.5, start=0), batch_size=32, seed=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the model given is untouched
    assert isinstance(result, darn.Result) and result.method == name
    assert _plain(result.model)
    assert result.after["widths"] == {"h1": 12, "h2": 12}
    assert result.after["params"] > result.before["params"]
    assert len(result.history["loss"]) == 3
    grows = [e for e in result.events if e["action"] == "grow"]
    assert [(e["step"], e["layer"], e["units"], e["width"]) for e in grows] == [
        (0, "h1", 4, 12), (0, "h2", 4, 12)]


def test_dict_units_params_cap_and_exclude(digits):
    x, y = digits
    schedule = darn.schedules.Constant(0.5, start=0)
    only_h1 = darn.resize(_model(), "growth", darn.Target(units={"h1": 16}), x=x, y=y,
                          epochs=3, schedule=schedule)
    assert only_h1.after["widths"] == {"h1": 16, "h2": 8}  # missing from the dict: no growth
    excluded = darn.resize(_model(), "growth", darn.Target(units=16, exclude=["h2"]), x=x,
                           y=y, epochs=2, schedule=schedule)
    assert excluded.after["widths"]["h2"] == 8
    params = _model().count_params()
    capped = darn.resize(_model(), "growth", darn.Target(params=params + 100), x=x, y=y,
                         epochs=3, schedule=schedule)
    assert capped.events == []  # every growth would go above the parameter count
    assert capped.after["params"] == params


def test_zeros_out_growth_keeps_the_outputs(digits):
    x, _ = digits
    model = _model()
    grown = grow_units(model, {"h1": 4, "h2": 3}, init="zeros_out", seed=0)
    np.testing.assert_allclose(grown.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_unified_resize(digits):
    x, y = digits
    model = _model()
    result = darn.resize(model, "unified", darn.Target(params=1500, units=12), x=x, y=y,
                         epochs=3, batch_size=32)
    assert result.method == "unified" and _plain(result.model)
    assert result.after["params"] <= 1500
    assert all(w <= 12 for w in result.after["widths"].values())
    assert len(result.history["loss"]) == 3
    assert all(e["action"] in ("grow", "remove") and "step" in e and "layer" in e
               for e in result.events)


def test_unified_schedule_sets_the_rate(digits):
    x, y = digits
    no_growth = darn.resize(_model(), "unified", None, x=x, y=y, epochs=2, redundancy=None,
                            schedule=darn.schedules.Constant(0.5, start=5))
    assert not [e for e in no_growth.events if e["action"] == "grow"]


def test_uncompiled_model_and_data_are_refused(digits):
    x, y = digits
    for name in ("growth", "unified"):
        with pytest.raises(ValueError, match="compile"):
            darn.resize(_model(compiled=False), name, None, x=x, y=y)
        with pytest.raises(ValueError, match="`x`"):
            darn.resize(_model(), name, None)


def test_unsupported_amounts_are_refused():
    with pytest.raises(ValueError, match="does not support"):
        darn.resize(_model(), "net2net", darn.Target(fraction=0.5))
    with pytest.raises(ValueError, match="does not support"):
        darn.resize(_model(), "unified", darn.Target(max_accuracy_drop=0.01))
    with pytest.raises(ValueError, match="acts between fits"):
        darn.prepare(_model(), "growth", darn.Target(units=16))


@pytest.mark.parametrize("options, match", [
    ({"init": "bogus"}, "init"),
    ({"noise": -1}, "noise"),
    ({"incoming_norm": 0}, "incoming_norm"),
    ({"criterion": "bogus"}, "criterion"),
    ({"layers": "h1"}, "layers"),
    ({"new_slots": "ones"}, "new_slots"),
    ({"batch_size": 0}, "batch_size"),
    ({"trigger": 3}, "trigger"),
])
def test_growth_options_are_validated(options, match):
    with pytest.raises(ValueError, match=match):
        darn.methods.get("growth", **options)


@pytest.mark.parametrize("options, match", [
    ({"epochs_per_round": 0}, "epochs_per_round"),
    ({"growth_rate": 0}, "growth_rate"),
    ({"redundancy": 2}, "redundancy"),
    ({"dead_tolerance": -1}, "dead_tolerance"),
    ({"init": "bogus"}, "init"),
])
def test_unified_options_are_validated(options, match):
    with pytest.raises(ValueError, match=match):
        darn.methods.get("unified", **options)


def test_aliases_fix_init_and_configs_round_trip():
    assert darn.methods.get("net2net").init == "net2net"
    assert darn.methods.get("gradmax").init == "gradmax"
    assert darn.methods.get("zeros_out").init == "zeros_out"
    with pytest.raises(ValueError, match="fixes"):
        darn.methods.get("net2net", init="random")
    growth = darn.methods.get("growth", init="pair_average", noise=0.1, seed=3, batch_size=16)
    assert isinstance(growth, Growth)
    assert Growth(**growth.get_config()).get_config() == growth.get_config()
    unified = darn.methods.get("unified", growth_rate=0.5, epochs_per_round=2)
    assert isinstance(unified, Unified)
    assert Unified(**unified.get_config()).get_config() == unified.get_config()
    assert darn.methods.growth.AgeAwareAdam is not None

"""Every registered method runs through the front door the same way.

During-fit methods: prepare -> fit 2 epochs -> finish; the finished plain
model computes what the trained (masked) model computes. Between-fit
methods: resize -> Result. Both: the result survives a `.keras` round trip.
A registered method without a recipe here fails the test, so a new method
cannot skip it.
"""

import keras
import numpy as np
import pytest

import keras_darn as darn
from support.digits_mlp import digits as _digits
from support.digits_mlp import digits_mlp as _mlp

L = keras.layers


def _compiled(model):
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


FRACTION = darn.Target(fraction=0.5)
LINEAR = darn.schedules.Linear(start=0, end=1)

# name -> (target, front-door keyword arguments)
DURING_FIT = {
    "activation_variance": (FRACTION, {"schedule": LINEAR}),
    "activation_l1": (FRACTION, {"schedule": LINEAR}),
    "correlation": (FRACTION, {"schedule": LINEAR}),
    "taylor1": (FRACTION, {"schedule": LINEAR}),
    "taylor2": (FRACTION, {"schedule": LINEAR}),
    "brute_force": (FRACTION, {"schedule": LINEAR}),
    "weight_l1": (FRACTION, {"schedule": LINEAR}),
    "magnitude": (darn.Target(params=0.5), {"schedule": LINEAR}),
    "magnitude_l1": (FRACTION, {"schedule": LINEAR, "global_pruning": False}),
    "bn_scale": (darn.Target(flops=0.5), {"schedule": LINEAR, "round_to": 2}),
    "random": (FRACTION, {"schedule": LINEAR}),
    "nodedrop": (None, {"lam": 1e-2, "input_range": (0, 1)}),
    "nodedrop_bn": (None, {"lam": 1e-2, "input_range": (0, 1), "batch_size": 32}),
    "standout": (darn.Target(units=8), {"schedule": darn.schedules.Geometric(0.5)}),
}
BETWEEN_FITS = {
    "activation_variance": (darn.Target(fraction=0.2), {}),
    "taylor2": (darn.Target(fraction=0.2), {}),
    "magnitude": (darn.Target(params=0.5), {"epochs": 2}),
    "brute_force": (darn.Target(max_accuracy_drop=0.05), {}),
    "darn": (darn.Target(max_accuracy_drop=0.05), {"epochs": 1}),
    "weight_magnitude": (darn.Target(max_accuracy_drop=0.05), {"epochs": 1}),
    "adaptive_rate": (darn.Target(max_accuracy_drop=0.05), {"epochs": 1}),
    "growth": (darn.Target(units=32), {"epochs": 2, "schedule": darn.schedules.Constant(0.5)}),
    "zeros_out": (darn.Target(units=32), {"epochs": 2, "schedule": darn.schedules.Constant(0.5)}),
    "net2net": (darn.Target(units=32), {"epochs": 2, "schedule": darn.schedules.Constant(0.5)}),
    "gradmax": (darn.Target(units=32), {"epochs": 2, "schedule": darn.schedules.Constant(0.5)}),
    "unified": (darn.Target(params=3000), {"epochs": 2}),
}


def _round_trip(model, tmp_path, x):
    path = str(tmp_path / "result.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_every_registered_method_has_a_recipe():
    # Methods registered by tests (their names start with "test_") are theirs.
    for name in [n for n in darn.methods.names() if not n.startswith("test_")]:
        method = darn.methods.get(name)
        if method.acts_during_fit:
            assert name in DURING_FIT, name
        if method.acts_between_fits:
            assert any(darn.methods.get(n).__class__ is method.__class__ for n in BETWEEN_FITS), name


@pytest.mark.parametrize("name", sorted(DURING_FIT))
def test_during_fit(name, tmp_path):
    if name not in darn.methods.names():
        pytest.fail(f"method '{name}' is not registered")
    x, y, x_val, y_val = _digits()
    target, kwargs = DURING_FIT[name]
    original = _mlp(batch_norm=name == "nodedrop_bn")
    weights = [w.copy() for w in original.get_weights()]
    model, callback = darn.prepare(original, name, target, validation_data=(x_val, y_val),
                                   **kwargs)
    assert model is not original
    for before, after in zip(weights, original.get_weights()):
        np.testing.assert_array_equal(before, after)  # the input model is untouched
    _compiled(model).fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    result = callback.finish()
    assert isinstance(result, darn.Result)
    assert result.method == name
    assert result.after["params"] <= result.before["params"]
    if name not in ("nodedrop", "nodedrop_bn"):
        assert result.after["params"] < result.before["params"]
        assert result.events and all("layer" in e and "action" in e for e in result.events)
    np.testing.assert_allclose(result.model.predict(x_val, verbose=0),
                               model.predict(x_val, verbose=0), atol=1e-5)
    assert "parameters" in result.summary()
    _round_trip(result.model, tmp_path, x_val)


@pytest.mark.parametrize("name", sorted(BETWEEN_FITS))
def test_between_fits(name, tmp_path):
    if name not in darn.methods.names():
        pytest.fail(f"method '{name}' is not registered")
    x, y, x_val, y_val = _digits()
    target, kwargs = BETWEEN_FITS[name]
    model = _compiled(_mlp())
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    weights = [w.copy() for w in model.get_weights()]
    result = darn.resize(model, name, target, x=x, y=y, validation_data=(x_val, y_val), **kwargs)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # the input model is untouched
    assert isinstance(result, darn.Result) and result.method == name
    assert result.model is not model
    assert "parameters" in result.summary()
    _round_trip(result.model, tmp_path, x_val)

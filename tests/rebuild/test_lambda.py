"""Lambda layers: carried as they are unless a change reaches them."""

import keras
import numpy as np
import pytest

import keras_darn as darn

L = keras.layers


def _model():
    inputs = keras.Input((6,))
    a = L.Dense(8, activation="relu", name="a")(inputs)
    b = L.Dense(5, name="b")(a)
    x = L.Lambda(lambda t: t * 2.0 + 1.0, name="lam")(b)
    model = keras.Model(inputs, L.Dense(2, name="out")(x))
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _x():
    return np.random.default_rng(1).normal(size=(3, 6)).astype("float32")


def test_rebuild_outside_the_lambda_group_keeps_its_function():
    model = _model()
    x = _x()
    smaller = darn.remove_units(model, {"a": [0, 3]})
    assert smaller.get_layer("a").units == 6
    assert smaller.get_layer("lam") is not model.get_layer("lam")
    grown = darn.add_units(model, {"a": 2}, init="zeros_out")
    np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    same = darn.shrink(model)
    np.testing.assert_array_equal(same(x).numpy(), model(x).numpy())
    assert darn.count_params(model, active_only=True) == darn.count_params(model)


def test_a_change_reaching_the_lambda_is_an_error_that_says_so():
    model = _model()
    group = next(g for g in darn.unit_groups(model) if "b" in g.layers)
    assert not group.resizable and "Lambda layer 'lam'" in group.reason
    with pytest.raises(ValueError, match="Units of layer 'b' cannot change: .*Lambda layer 'lam'"):
        darn.remove_units(model, {"b": [0]})

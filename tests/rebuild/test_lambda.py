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


def test_insert_layer_carries_a_lambda_elsewhere_and_keeps_the_function():
    model = _model()
    x = _x()
    deeper = darn.insert_layer(model, after="a", layer=L.Dense(8, name="new"), identity=True)
    assert deeper.get_layer("lam") is not model.get_layer("lam")
    np.testing.assert_array_equal(deeper(x).numpy(), model(x).numpy())
    # A Lambda inside a nested model and a Sequential model are carried too.
    inner_in = keras.Input((2,))
    inner_out = L.Lambda(lambda t: t - 1.0, name="inner_lam")(inner_in)
    inner = keras.Model(inner_in, inner_out, name="inner")
    inputs = keras.Input((6,))
    outer = keras.Model(inputs, inner(L.Dense(2, name="head")(model(inputs))))
    wrapped = darn.insert_layer(outer, after="head", layer=L.Dense(2, name="new"), identity=True)
    np.testing.assert_array_equal(wrapped(x).numpy(), outer(x).numpy())
    sequential = keras.Sequential(
        [keras.Input((6,)), L.Dense(4, name="d"), L.Lambda(lambda t: t * 2.0), L.Dense(2)]
    )
    deeper = darn.insert_layer(sequential, after="d", layer=L.Dense(4, name="new"), identity=True)
    np.testing.assert_array_equal(deeper(x).numpy(), sequential(x).numpy())


def test_insert_layer_that_changes_a_lambdas_input_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="input of Lambda layer 'lam' from shape"):
        darn.insert_layer(_model(), after="b", layer=L.Dense(7, name="new"))


def test_prunable_conversion_carries_a_lambda():
    model = _model()
    x = _x()
    prunable = darn.layers.to_prunable(model)
    np.testing.assert_allclose(prunable(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    plain = darn.layers.from_prunable(prunable)
    np.testing.assert_allclose(plain(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)

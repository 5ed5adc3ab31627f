"""DARN's unified loop: remove dead/redundant units, grow saturated layers, keep a budget."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from keras_darn.methods.growth.unified import darn_unified
from keras_darn.methods.growth.unified import dead_units
from keras_darn.methods.growth.unified import redundant_units
from keras_darn.methods.growth.triggers import EffectiveRankTrigger
from keras_darn.metrics import count_params


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x[:128] / 16.0).astype("float32"), y[:128]


def _model(h1=4, h2=24, dead=12):
    inputs = keras.Input((64,))
    x = keras.layers.Dense(h1, activation="relu", name="h1")(inputs)
    x = keras.layers.Dense(h2, activation="relu", name="h2")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))
    kernel, bias = model.get_layer("h2").get_weights()
    bias[:dead] = -100.0  # never active: dead ReLU units
    model.get_layer("h2").set_weights([kernel, bias])
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_dead_and_redundant_units():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 300))
    acts = np.stack([a, 2.0 * a + 0.001 * b, b, np.zeros(300), 0.5 * b], axis=1)
    np.testing.assert_array_equal(dead_units(np.abs(acts).mean(axis=0)), [3])
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.nan_to_num(np.corrcoef(acts.T))
    variance = acts.var(axis=0)
    # Unit 1 (2a) outlasts unit 0 (a); unit 2 (b) outlasts unit 4 (b / 2).
    np.testing.assert_array_equal(redundant_units(correlation, variance, 0.98), [0, 4])
    np.testing.assert_array_equal(redundant_units(correlation, variance, 0.98, exclude=[1]), [4])
    with pytest.raises(ValueError, match="threshold"):
        redundant_units(correlation, variance, 0.0)


def test_round_removes_dead_units_exactly_and_grows_saturated_layers(digits):
    x, y = digits
    model = _model()
    budget = count_params(model)
    result = darn_unified(
        model, x, y, rounds=2, layers=["h1", "h2"], param_budget=budget,
        trigger=EffectiveRankTrigger(saturation=0.5), redundancy=None,
        growth_rate=0.5, batch_size=32, shuffle_seed=0, seed=0,
    )
    (record,) = result.history["rounds"]
    assert record.removed["h2"]["dead"] >= 12
    assert record.widths_after["h2"] == 24 - record.removed["h2"]["dead"]
    # Dead units hold 0 on the probe data: removing them keeps the loss.
    assert record.loss_after_removal == pytest.approx(record.loss_before, rel=1e-5)
    assert record.added == {"h1": 2}
    assert record.widths_after["h1"] == 6
    assert record.loss_after == pytest.approx(record.loss_after_removal, rel=1e-5)
    assert record.params_after <= budget
    assert result.model.get_layer("h1").units == 6
    assert len(result.history["loss"]) == 2


def test_budget_prunes_the_weakest_units_and_caps_growth(digits):
    x, y = digits
    model = _model(h1=16, h2=16, dead=0)
    budget = 700
    result = darn_unified(
        model, x, y, rounds=2, layers=["h1", "h2"], param_budget=budget,
        redundancy=None, batch_size=32, seed=0,
    )
    (record,) = result.history["rounds"]
    assert record.params_before > budget >= record.params_after
    assert sum(r["budget"] for r in record.removed.values()) > 0
    assert count_params(result.model) <= budget


def test_errors(digits):
    x, y = digits
    with pytest.raises(ValueError, match="rounds"):
        darn_unified(_model(), x, y, rounds=0)
    with pytest.raises(ValueError, match="param_budget"):
        darn_unified(_model(), x, y, param_budget=-5)

"""Source units of new units: the core criteria read for growth."""

import keras
import numpy as np
import pytest

from keras_darn import criteria
from keras_darn.methods.growth import sources


def _model():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))


def test_split_sources_take_the_highest_scores_first_and_repeat():
    scores = np.array([1.0, 5.0, 0.1, 3.0, 2.0])
    assert sources.split_sources(scores, 2) == [(1,), (3,)]
    # More new units than units: the best units are split again.
    assert sources.split_sources(scores, 7) == [(1,), (3,), (4,), (0,), (2,), (1,), (3,)]
    assert sources.split_sources(scores, 0) == []
    # A unit without a score (NaN: removed or masked) comes last.
    assert sources.split_sources(np.array([np.nan, 1.0]), 1) == [(1,)]
    with pytest.raises(ValueError, match="count"):
        sources.split_sources(scores, -1)


def test_pair_sources_take_the_least_correlated_live_pairs():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 400))
    acts = np.stack([a, a + 0.01 * b, 0.5 * a, b, np.zeros(400)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.nan_to_num(np.corrcoef(acts.T))
    pairs = sources.pair_sources(correlation, acts.var(axis=0), 3)
    # Unit 3 is independent of the copies of `a`; the dead unit 4 is never used.
    assert all(3 in pair and 4 not in pair for pair in pairs)


def test_source_criterion_is_a_core_criterion():
    assert isinstance(sources.source_criterion("net2net", None), criteria.ActivationVariance)
    assert isinstance(sources.source_criterion("naive", "l1"), criteria.ActivationL1)
    assert isinstance(sources.source_criterion("net2net", "magnitude"), criteria.Criterion)
    assert isinstance(sources.source_criterion("pair_average", None), criteria.ActivationCorrelation)
    assert sources.source_criterion("zeros_out", None) is None
    with pytest.raises(ValueError, match="does not use"):
        sources.source_criterion("zeros_out", "variance")
    with pytest.raises(ValueError, match="correlation"):
        sources.source_criterion("pair_average", "variance")
    with pytest.raises(ValueError, match="Unknown criterion"):
        sources.source_criterion("net2net", "entropy")


def test_layer_statistics_are_the_criteria_statistics_in_layer_order():
    model = _model()
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    stats = sources.layer_statistics(model, x, ["hidden"])["hidden"]
    hidden = np.asarray(keras.Model(model.input, model.get_layer("hidden").output)(x), "float64")
    np.testing.assert_allclose(stats["variance"], hidden.var(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats["mean_abs"], np.abs(hidden).mean(axis=0), rtol=1e-5, atol=1e-6)
    live = hidden.var(axis=0) > 1e-8
    expected = np.corrcoef(hidden[:, live].T)
    np.testing.assert_allclose(stats["correlation"][np.ix_(live, live)], expected, atol=1e-3)
    # The variance criterion chooses the same units from the same numbers.
    chosen = sources.choose_sources(criteria.get("variance"), model, x, None, {"hidden": 2})
    assert chosen == {"hidden": sources.split_sources(stats["variance"], 2)}


def test_a_criterion_that_needs_labels_is_refused_without_them():
    model = _model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    with pytest.raises(ValueError, match="needs targets"):
        sources.choose_sources(criteria.get("taylor1"), model, x, None, {"hidden": 1})
    y = np.arange(16) % 2
    chosen = sources.choose_sources(criteria.get("taylor1"), model, x, y, {"hidden": 3})
    assert len(chosen["hidden"]) == 3 and all(0 <= i < 5 for (i,) in chosen["hidden"])

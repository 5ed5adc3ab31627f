"""A new method, added from outside the package, runs through the front door.

A criterion and a method are registered here, in the test, with no file of
keras_darn changed: the registries are the extension points.
"""

import keras
import numpy as np
import pytest

import keras_darn as darn


@darn.criteria.register_criterion("test_bias_magnitude")
class BiasMagnitude(darn.criteria.Criterion):
    """Scores each unit by |bias| of its first layer (data-free)."""

    name = "test_bias_magnitude"
    needs_data = False

    def score(self, probed, x, y, strategy):
        return {
            group.key: np.abs(keras.ops.convert_to_numpy(
                probed.member_layer(group.key).bias))[group.indices(group.key)]
            for group in probed.groups
        }


@darn.methods.register("test_bias_pruning")
class BiasPruning(darn.methods.Method):
    """Masks the units with the smallest biases, once, after the first epoch."""

    prepare_amounts = ("fraction",)

    def prepare(self, model, target, validation_data=None, schedule=None):
        prunable = darn.layers.to_prunable(model)
        callback = darn.methods.pruning.CriterionPruning("test_bias_magnitude", None,
                                                          target=target, schedule=schedule)
        return prunable, callback


def _mlp(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(8, activation="relu", bias_initializer="random_normal", name="h"),
        keras.layers.Dense(2, name="out"),
    ])


def test_new_method_runs_through_the_front_door(tmp_path):
    assert "test_bias_pruning" in darn.methods.names()
    model = _mlp(seed=1)
    biases = np.abs(model.get_layer("h").get_weights()[1])
    x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32")
    model, callback = darn.prepare(model, "test_bias_pruning", darn.Target(fraction=0.5))
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((32, 2)), epochs=1, verbose=0, callbacks=[callback])
    result = callback.finish()
    assert result.model.get_layer("h").units == 4
    # SGD moved the biases a little; the four smallest at the end of the epoch went.
    assert sorted(result.events[0]["units"]) == sorted(np.argsort(
        np.abs(model.get_layer("h").get_weights()[1]), kind="stable")[:4].tolist())
    assert biases.shape == (8,)
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_a_registered_criterion_is_a_method_name_with_no_method_of_its_own():
    # `test_bias_magnitude` is registered above as a criterion only.
    assert "test_bias_magnitude" not in darn.methods.names()
    assert "test_bias_magnitude" in darn.criteria.names()
    model = _mlp(seed=2)
    x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32")
    pruned, callback = darn.prepare(model, "test_bias_magnitude", darn.Target(fraction=0.5))
    assert isinstance(callback.method.criterion, BiasMagnitude)
    pruned.compile("sgd", "mse")
    pruned.fit(x, np.zeros((32, 2)), epochs=1, verbose=0, callbacks=[callback])
    biases = np.abs(pruned.get_layer("h").get_weights()[1])
    result = callback.finish()
    assert result.model.get_layer("h").units == 4
    # The masked units are those with the smallest biases at the pruning event (now zero).
    assert np.count_nonzero(biases) == 4
    assert result.method == "test_bias_magnitude"


def test_an_unknown_name_is_neither_a_method_nor_a_criterion():
    with pytest.raises(ValueError, match="registered criterion's name"):
        darn.methods.get("test_bias_magnitud")

"""The pruner: group magnitude, global ranking, round_to, limits, exact targets, masked == shrunk."""

import warnings

import keras
import numpy as np
import pytest

import keras_darn as darn
from keras_darn.criteria import Criterion
from keras_darn.criteria import GroupMagnitude
from keras_darn.criteria import ProbedModel
from keras_darn.methods.pruning import CriterionPruning
from keras_darn.resizing import Target
from keras_darn.resizing import schedules

L = keras.layers


def _mlp():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5,)), L.Dense(6, activation="relu", name="h1"),
                             L.Dense(8, activation="relu", name="h2"),
                             L.Dense(3, activation="softmax", name="out")])


def _residual_cnn():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 2))
    a = L.ReLU()(L.BatchNormalization(name="bn_a")(L.Conv2D(12, 3, padding="same", name="a")(inputs)))
    b = L.BatchNormalization(name="bn_b")(L.Conv2D(12, 3, padding="same", name="b")(a))
    x = L.ReLU()(L.Add()([a, b]))
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="c")(L.MaxPooling2D()(x))
    x = L.Dense(10, activation="relu", name="d")(L.Flatten()(x))
    return keras.Model(inputs, L.Dense(4, activation="softmax", name="out")(x))


def _width(model, name):
    layer = model.get_layer(name)
    return getattr(layer, "filters", None) or layer.units


class _Fixed(Criterion):
    """Scores given in advance (data-free)."""

    name = "fixed"
    needs_data = False

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def score(self, probed, x, y, strategy):
        return {k: np.asarray(self.scores[k], dtype=float) for k in probed.keys}


def test_group_magnitude_sums_every_slice_of_a_unit():
    model = _mlp()
    k1, k2, k3 = (model.get_layer(n).kernel.numpy().astype(float) for n in ("h1", "h2", "out"))
    scores = GroupMagnitude(p=2)(model)
    np.testing.assert_allclose(scores["h1"], (k1**2).sum(0) + (k2**2).sum(1), rtol=1e-6)
    np.testing.assert_allclose(scores["h2"], (k2**2).sum(0) + (k3**2).sum(1), rtol=1e-6)
    l1 = darn.criteria.GroupMagnitudeL1()(model)
    np.testing.assert_allclose(l1["h1"], np.abs(k1).sum(0) + np.abs(k2).sum(1), rtol=1e-6)


def test_group_magnitude_covers_coupled_layers_and_batch_norm_scales():
    model = _residual_cnn()
    probed = ProbedModel(model)
    scores = GroupMagnitude(p=1)(probed)
    key = probed.group("b").key
    weights = {n: np.abs(model.get_layer(n).kernel.numpy()) for n in ("a", "b", "c")}
    gammas = {n: np.abs(model.get_layer(n).gamma.numpy()) for n in ("bn_a", "bn_b")}
    expected = (weights["a"].sum((0, 1, 2)) + weights["b"].sum((0, 1, 2))  # filters of a and b
                + weights["b"].sum((0, 1, 3)) + weights["c"].sum((0, 1, 3))  # their readers
                + gammas["bn_a"] + gammas["bn_b"])
    np.testing.assert_allclose(scores[key], expected, rtol=1e-5)
    bn = darn.criteria.BatchNormScale()(probed)
    np.testing.assert_allclose(bn[key], gammas["bn_a"] + gammas["bn_b"], rtol=1e-6)


def test_global_ranking_removes_the_lowest_normalized_scores_of_all_groups():
    model = _mlp()
    # Normalized by the group mean (h1: 1, h2: 10) the six lowest are
    # h1[0, 1, 2] (0.1 .. 0.3) and h2[0, 1, 2] (0.2, 0.25, 0.5).
    scores = {"h1": [0.1, 0.2, 0.3, 1.4, 1.5, 2.5], "h2": [2, 2.5, 5, 11, 12, 13, 14, 20.5]}
    result = darn.resize(model, _method(scores, global_pruning=True), Target(fraction=6 / 14), epochs=0)
    removed = {}
    for event in result.events:
        removed[event["layer"]] = event["units"]
    assert removed == {"h1": [0, 1, 2], "h2": [0, 1, 2]}
    uniform = darn.resize(model, _method(scores, global_pruning=False), Target(fraction=0.5),
                          epochs=0)
    assert (_width(uniform.model, "h1"), _width(uniform.model, "h2")) == (3, 4)


def _method(scores, **options):
    from keras_darn.methods.pruning import CriterionMethod

    method = CriterionMethod(criterion=_Fixed(scores), **options)
    method.name = "fixed"
    return method


@pytest.mark.parametrize("amount", ["params", "flops"])
def test_a_count_target_is_reached_exactly_as_far_as_units_allow(amount):
    model = _residual_cnn()
    count = darn.count_params if amount == "params" else darn.count_flops
    goal = int(count(model) * 0.3)
    small = darn.resize(model, "magnitude", Target(**{amount: goal}), epochs=0).model
    assert count(small) <= goal
    # One unit more, in some group, is over the goal (no slack left).
    widths = {n: _width(small, n) for n in ("a", "c", "d")}
    over = [count(darn.add_units(small, {n: 1}, compile=False)) > goal for n in widths]
    assert any(over)
    fraction = darn.resize(model, "magnitude", Target(**{amount: 0.3}), epochs=0).model
    assert count(fraction) == count(small)


def test_round_to_keeps_widths_multiples():
    model = _residual_cnn()
    small = darn.resize(model, "magnitude", Target(params=0.4), epochs=0, round_to=4).model
    for name in ("a", "b", "c"):
        assert _width(small, name) % 4 == 0
    assert _width(small, "d") % 4 == 0 or _width(small, "d") == 10
    assert darn.count_params(small) <= int(0.4 * darn.count_params(model)) + 1


def test_limits_max_ratio_min_units_and_exclude():
    model = _residual_cnn()
    small = darn.resize(model, "magnitude", Target(params=0.8, min_units={"d": 9},
                                                   exclude=["c"]),
                        epochs=0, max_ratio={"a": 0.25}).model
    assert _width(small, "c") == 16          # excluded
    assert _width(small, "d") >= 9           # min_units
    assert _width(small, "a") >= 9           # at most 25 % of 12 removed
    with pytest.raises(ValueError, match="cannot be reached"):
        darn.resize(model, "magnitude", Target(params=100), epochs=0, max_ratio=0.5)
    with pytest.raises(ValueError, match="round_to"):
        darn.resize(model, "magnitude", Target(params=0.5), epochs=0, round_to=0)
    with pytest.raises(ValueError, match="max_ratio"):
        darn.resize(model, "magnitude", Target(params=0.5), epochs=0, max_ratio=1.5)


def test_masked_and_shrunk_steps_remove_the_same_units_and_compute_the_same():
    model = _residual_cnn()
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 2)).astype("float32")
    shrunk = darn.resize(model, "magnitude", Target(flops=0.5), epochs=0).model
    masked = darn.resize(model, "magnitude", Target(flops=0.5), epochs=0, shrink=False).model
    assert darn.count_flops(shrunk) == darn.count_flops(masked)
    np.testing.assert_allclose(shrunk.predict(x, verbose=0), masked.predict(x, verbose=0),
                               atol=1e-5)


def test_fine_tuning_between_steps_shrinks_and_carries_the_optimizer():
    x = np.random.default_rng(0).normal(size=(64, 8, 8, 2)).astype("float32")
    y = np.random.default_rng(1).integers(0, 4, size=64)
    model = _residual_cnn()
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    goal = int(0.5 * darn.count_params(model))
    result = darn.resize(model, "magnitude", Target(params=goal), x=x, y=y, epochs=3,
                         schedule=schedules.Linear(start=0, end=1), batch_size=16)
    small = result.model
    assert darn.count_params(small) <= goal
    assert sorted({e["step"] for e in result.events}) == [0, 1]
    assert len(result.history["loss"]) == 3
    assert int(small.optimizer.iterations.numpy()) == 3 * 4  # 3 epochs of 4 batches
    assert model.get_layer("a").filters == 12  # the model given is unchanged


def _plain_cnn():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 2))
    x = L.Conv2D(12, 3, padding="same", activation="relu", name="a")(inputs)
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="c")(L.MaxPooling2D()(x))
    x = L.Dense(10, activation="relu", name="d")(L.Flatten()(x))
    return keras.Model(inputs, L.Dense(4, activation="softmax", name="out")(x))


@pytest.mark.parametrize("build", [_plain_cnn, _residual_cnn])
def test_during_fit_global_params_target_masked_equals_finished_model(build):
    x = np.random.default_rng(0).normal(size=(64, 8, 8, 2)).astype("float32")
    y = np.random.default_rng(1).integers(0, 4, size=64)
    original = build()
    goal = int(0.4 * darn.count_params(original))
    model, callback = darn.prepare(original, "magnitude", Target(params=goal), round_to=2,
                                   schedule=schedules.Linear(start=0, end=1))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    with warnings.catch_warnings():
        # A masked unit whose BatchNorm constant feeds a padded convolution
        # cannot be removed exactly: shrink keeps it (and says so).
        warnings.simplefilter("ignore", UserWarning)
        result = callback.finish()
    np.testing.assert_allclose(result.model.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-5)
    if build is _plain_cnn:
        assert result.after["params"] <= goal


def test_data_free_criterion_needs_no_data():
    model, callback = darn.prepare(_mlp(), "magnitude", Target(fraction=0.5))
    assert callback.callback.x is None
    with pytest.raises(ValueError, match="pass `x`"):
        CriterionPruning("taylor1")


def _fit_with(callback, **fit_options):
    x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = darn.layers.to_prunable(_mlp())
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[callback], **fit_options)
    return model


def test_a_schedule_that_cannot_fire_in_the_fit_warns():
    callback = CriterionPruning("magnitude", target=Target(fraction=0.5),
                                schedule=schedules.Linear(start=0, end=1))
    with pytest.warns(UserWarning, match=r"acts at no epoch in \[3, 5\)"):
        _fit_with(callback, initial_epoch=3, epochs=5)
    assert callback.events == []


def test_epochs_are_keras_absolute_epochs():
    callback = CriterionPruning("magnitude", target=Target(fraction=0.5),
                                schedule=schedules.Linear(start=3, end=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _fit_with(callback, initial_epoch=3, epochs=5)
    assert not [w for w in caught if "CriterionPruning" in str(w.message)]
    assert sorted({e["step"] for e in callback.events}) == [3, 4]
    assert model.get_layer("h1").active_units + model.get_layer("h2").active_units == 7


def test_the_front_door_defaults_to_the_recommended_pruner():
    model = _mlp()
    result = darn.resize(model, target=Target(params=0.5), epochs=0)
    assert result.method == "magnitude"
    assert darn.count_params(result.model) <= 0.5 * darn.count_params(model)
    prepared, callback = darn.prepare(model, target=Target(fraction=0.25))
    assert callback.method.name == "magnitude"


def test_fine_tuning_goes_on_from_initial_epoch_with_the_event_before_it_first():
    x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    result = darn.resize(model, "magnitude", Target(fraction=0.5), x=x, y=y, epochs=3,
                         schedule=schedules.Linear(start=0, end=1), initial_epoch=1,
                         batch_size=16)
    assert sorted({e["step"] for e in result.events}) == [0, 1]
    assert len(result.history["loss"]) == 2  # epochs 1 and 2
    assert _width(result.model, "h1") + _width(result.model, "h2") == 7


@pytest.mark.parametrize("shrink", [True, False])
def test_reset_optimizer_starts_a_fresh_optimizer_after_every_step(shrink):
    x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = _mlp()
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    runs = {}
    for reset in (False, True):
        result = darn.resize(model, "magnitude", Target(fraction=0.5), x=x, y=y, epochs=4,
                             schedule=schedules.Linear(start=0, end=2), initial_epoch=1,
                             batch_size=16, shrink=shrink, reset_optimizer=reset)
        runs[reset] = result.model
    # 2 batches an epoch: 1 epoch before resize, 3 during it; a reset
    # optimizer has only the steps since the last pruning step (epoch 2).
    assert int(runs[False].optimizer.iterations.numpy()) == 8
    assert int(runs[True].optimizer.iterations.numpy()) == 2
    assert runs[True].optimizer.get_config()["learning_rate"] == pytest.approx(1e-3)
    assert int(model.optimizer.iterations.numpy()) == 2  # the user's model is untouched

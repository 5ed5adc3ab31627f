"""Tests of the StandoutPruning callback and its Geometric schedule."""

import keras
import numpy as np
import pytest

from keras_darn.layers.standout_dense import StandoutDense
from keras_darn.methods.standout.callback import StandoutPruning
from keras_darn.methods.standout.callback import standout_units_to_remove
from keras_darn.resizing.schedules import Geometric

X = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
Y = np.random.default_rng(1).normal(size=(32, 2)).astype("float32")


def _model(width=8, learning_rate=0.0, name="sd", **layer_kwargs):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            StandoutDense(width, activation="relu", seed=0, name=name, **layer_kwargs),
            keras.layers.Dense(2),
        ]
    )
    # learning_rate=0 keeps the weights, hence the retention, fixed.
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    return model


@pytest.mark.parametrize("gamma", [0.5, 0.3, 0.1, 1.0])
def test_ratio_follows_paper_recurrence(gamma):
    schedule = Geometric(gamma)
    ratio = 0.0
    for events in range(1, 12):
        ratio = ratio + gamma * (1 - ratio)  # Algorithm 1, line 4
        assert schedule(events - 1) == pytest.approx(ratio)
        assert schedule(events - 1) == pytest.approx(1 - (1 - gamma) ** events)
    # With a period P, the k-th event is at the end of epoch k * P (step k * P - 1).
    periodic = Geometric(gamma, every=3)
    assert [periodic(step) for step in (0, 1)] == [None, None]
    assert periodic(2) == pytest.approx(gamma)
    assert periodic(5) == pytest.approx(1 - (1 - gamma) ** 2)


def _live_widths(width, gamma, target):
    """Live units after each pruning event of the callback, Geometric(gamma)."""
    model = _model(width=width)
    callback = StandoutPruning(target_units=target, schedule=Geometric(gamma))
    model.fit(X, Y, epochs=8, batch_size=32, verbose=0, callbacks=[callback])
    assert model.get_layer("sd").active_units == target
    return [event["live_units"] for event in callback.events]


@pytest.mark.parametrize(
    "width, gamma, target, expected",
    [
        (512, 0.5, 32, [256, 128, 64, 32]),  # the paper's 100 epochs / period 25
        (512, 0.5, 16, [256, 128, 64, 32, 16]),
        (512, 0.5, 128, [256, 128]),
        (10, 0.3, 3, [7, 4, 3]),  # ceil(0.3*10)=3, ceil(0.51*10)=6, cap at 7
        (8, 1.0, 2, [2]),
        (5, 0.5, 5, []),
    ],
)
def test_schedule(width, gamma, target, expected):
    assert _live_widths(width, gamma, target) == expected


def test_units_to_remove_never_below_target():
    assert standout_units_to_remove(512, 0.75, 16) == 384
    assert standout_units_to_remove(512, 0.999, 16) == 496
    assert standout_units_to_remove(10, 0.0, 1) == 0


@pytest.mark.parametrize("period", [1, 2])
def test_callback_follows_schedule_and_logs(period):
    model = _model(width=8)
    callback = StandoutPruning(target_units=2, schedule=Geometric(0.5, every=period))
    history = model.fit(X, Y, epochs=3 * period, batch_size=8, verbose=0, callbacks=[callback])
    live = history.history["standout/sd/live_units"]
    schedule = [4, 2]  # live units after each event: 8 - ceil(0.5 * 8), 8 - ceil(0.75 * 8)
    expected = []
    for epoch in range(1, 3 * period + 1):
        events = min(epoch // period, len(schedule))
        expected.append(schedule[events - 1] if events else 8)
    assert live == expected
    assert model.get_layer("sd").active_units == 2
    assert callback.ratio == pytest.approx(0.75)  # no update once at target
    assert [e["live_units"] for e in callback.events] == schedule
    assert [e["step"] for e in callback.events] == [period - 1, 2 * period - 1]
    assert all(e["action"] == "remove" and e["layer"] == "sd" for e in callback.events)


def test_prunes_lowest_mean_retention_of_the_epoch():
    model = _model(width=8, beta=0.0)
    layer = model.get_layer("sd")
    callback = StandoutPruning(target_units=1, schedule=Geometric(0.5, every=1))
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    mean_p = layer.retention_probability(X).numpy().mean(axis=0)
    np.testing.assert_allclose(layer.accumulated_retention(), mean_p, rtol=1e-5)
    assert float(layer.retention_count.numpy()) == len(X)  # reset each epoch
    expected_removed = np.sort(np.argsort(mean_p)[:4])
    assert callback.events[0]["units"] == expected_removed.tolist()
    np.testing.assert_array_equal(
        np.flatnonzero(layer.get_unit_mask() == 0), expected_removed
    )
    # Second event removes from the surviving units only.
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    assert layer.active_units == 4  # state reset in on_train_begin: ratio 0.5 again
    assert callback.ratio == pytest.approx(0.5)


def test_accumulators_reset_every_epoch():
    model = _model(width=4)
    callback = StandoutPruning(target_units=1, schedule=Geometric(0.5, every=10))
    model.fit(X, Y, epochs=3, batch_size=8, verbose=0, callbacks=[callback])
    assert float(model.get_layer("sd").retention_count.numpy()) == len(X)


def test_mirrored_strategy_sums_accumulators(two_cpu_strategy):
    with two_cpu_strategy.scope():
        model = _model(width=8)
    layer = model.get_layer("sd")
    callback = StandoutPruning(target_units=2, schedule=Geometric(0.5, every=2))
    history = model.fit(X, Y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    p = layer.retention_probability(X).numpy()
    # 4 steps of 8 examples split over two replicas: every example counted once.
    assert float(layer.retention_count.numpy()) == len(X)
    np.testing.assert_allclose(layer.retention_sum.numpy(), p.sum(axis=0), rtol=1e-4)
    expected_removed = np.sort(np.argsort(p.mean(axis=0))[:4])
    np.testing.assert_array_equal(
        np.flatnonzero(layer.get_unit_mask() == 0), expected_removed
    )
    assert history.history["standout/sd/live_units"] == [8, 4]


def test_dict_targets_and_layer_selection():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            StandoutDense(8, activation="relu", seed=0, name="a"),
            StandoutDense(6, activation="relu", seed=1, name="b"),
            keras.layers.Dense(2),
        ]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")
    callback = StandoutPruning(target_units={"a": 2, "b": 3}, schedule=Geometric(0.5))
    history = model.fit(X, Y, epochs=3, batch_size=16, verbose=0, callbacks=[callback])
    assert history.history["standout/a/live_units"] == [4, 2, 2]
    assert history.history["standout/b/live_units"] == [3, 3, 3]
    only_b = StandoutPruning(target_units=1, schedule=Geometric(0.5), layers=["b"])
    history = model.fit(X, Y, epochs=1, batch_size=16, verbose=0, callbacks=[only_b])
    assert "standout/a/live_units" not in history.history
    assert history.history["standout/b/live_units"] == [3]  # 3 already gone


def test_errors_at_train_begin():
    model = _model(width=4)
    with pytest.raises(ValueError, match="exceeds"):
        model.fit(X, Y, epochs=1, verbose=0,
                  callbacks=[StandoutPruning(target_units=5, schedule=Geometric(0.5))])
    with pytest.raises(ValueError, match="not StandoutDense"):
        model.fit(X, Y, epochs=1, verbose=0,
                  callbacks=[StandoutPruning(1, Geometric(0.5), layers=["dense"])])
    plain = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    plain.compile("sgd", "mse")
    with pytest.raises(ValueError, match="at least one StandoutDense"):
        plain.fit(X, Y, epochs=1, verbose=0, callbacks=[StandoutPruning(1, Geometric(0.5))])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target_units": 1, "schedule": "geometric"}, "schedule"),
        ({"target_units": 1, "schedule": 0.5}, "schedule"),
        ({"target_units": 0}, "target_units"),
        ({"target_units": {"a": -1}}, "target_units"),
        ({"target_units": 1, "layers": "a"}, "layers"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StandoutPruning(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"rate": 0.0}, "rate"), ({"rate": 1.5}, "rate"), ({"rate": 0.5, "every": 0}, "every")],
)
def test_bad_geometric_arguments(kwargs, match):
    # The period and gamma of the paper are the Geometric schedule's now.
    with pytest.raises(ValueError, match=match):
        Geometric(**kwargs)


def test_ratio_outside_unit_interval_is_refused():
    from keras_darn.resizing.schedules import Constant

    model = _model(width=4)
    callback = StandoutPruning(target_units=1, schedule=Constant(2.0))
    with pytest.raises(ValueError, match="pruning ratio in"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[callback])


def test_default_schedule_is_geometric_half_every_epoch():
    assert StandoutPruning(target_units=2).schedule == Geometric(0.5, every=1)


def test_get_config_round_trip():
    callback = StandoutPruning(
        target_units=32, schedule=Geometric(0.5, every=25), layers=["sd"]
    )
    clone = StandoutPruning.from_config(callback.get_config())
    assert clone.get_config() == callback.get_config()
    assert clone.schedule == Geometric(0.5, every=25)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(callback)
    )
    assert isinstance(restored, StandoutPruning)
    assert restored.get_config() == callback.get_config()

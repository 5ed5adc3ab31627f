"""The growth schedule, the GrowthCallback and the fit-grow-continue driver."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from keras_darn.methods.growth.callback import GrowthCallback
from keras_darn.methods.growth.callback import units_to_add
from keras_darn.methods.growth.training import fit_with_growth
from keras_darn.resizing.schedules import Constant
from keras_darn.resizing.schedules import Schedule
from keras_darn.methods.growth.triggers import EffectiveRankTrigger
from keras_darn.export import tflite_predict
from keras_darn.export import to_tflite

BATCH = 32


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x[:128] / 16.0).astype("float32"), y[:128]


def _model(width=4, lr=0.01, optimizer=None):
    inputs = keras.Input((64,))
    x = keras.layers.Dense(width, activation="relu", name="h1")(inputs)
    x = keras.layers.Dense(width, activation="relu", name="h2")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))
    model.compile(
        optimizer or keras.optimizers.Adam(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def test_growth_amounts_from_a_schedule():
    # Steps count epochs from 0: start=2 is after the 3rd epoch (the old
    # ProportionalGrowth's start_epoch=3, which counted completed epochs).
    callback = GrowthCallback(["a"], Constant(0.2, start=2, every=2), max_width={"a": 110})
    assert [callback.amount(step, 100, "a") for step in range(7)] == [0, 0, 10, 0, 10, 0, 10]
    assert callback.amount(2, 100, "b") == 0  # not in max_width: never grows
    assert GrowthCallback(["a"], Constant(0.01, start=0)).amount(0, 10, "a") == 1  # at least one unit
    assert units_to_add(0.01, 10) == 1
    capped = GrowthCallback(["a"], Constant(1.0, start=0, stop=3), max_width=256)
    assert [capped.amount(0, 16, "a"), capped.amount(1, 200, "a"), capped.amount(2, 256, "a"),
            capped.amount(4, 16, "a")] == [16, 56, 0, 0]
    clone = Schedule.get(keras.saving.serialize_keras_object(capped.schedule))
    assert clone.get_config() == capped.schedule.get_config()
    with pytest.raises(ValueError, match="value"):
        Constant(0)
    with pytest.raises(ValueError, match="start"):
        Constant(0.2, start=-1)
    with pytest.raises(ValueError, match="max_width"):
        GrowthCallback(["a"], Constant(0.2), max_width=0)
    with pytest.raises(ValueError, match="schedule"):
        GrowthCallback(["a"], schedule=0.2)


def test_callback_stops_fit_when_growth_is_due(digits):
    x, y = digits
    model = _model()
    callback = GrowthCallback(
        ["h1"], Constant(0.5, start=1), stop_training=True
    )
    history = model.fit(x, y, epochs=5, batch_size=BATCH, callbacks=[callback], verbose=0)
    assert len(history.history["loss"]) == 2
    assert callback.pending.plan == {"h1": 2}
    assert callback.pending.widths == {"h1": 4}
    assert history.history["growth/h1/width"] == [4, 4]
    with pytest.raises(ValueError, match="probe_data"):
        GrowthCallback(["h1"], trigger=EffectiveRankTrigger())
    with pytest.raises(ValueError, match="neither"):
        GrowthCallback(["h1"])


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []
        self.models = set()

    def on_train_begin(self, logs=None):
        self.calls.append("begin")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(epoch)
        self.models.add(id(self.model))

    def on_train_end(self, logs=None):
        self.calls.append("end")


def test_growth_keeps_loss_and_training_state(digits):
    x, y = digits
    model = _model(lr=0.01)
    recorder = _Recorder()
    # patience=1 and a huge min_delta: the LR halves at every epoch after the
    # first, but only if the callback's state survives the fit stages.
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9)
    result = fit_with_growth(
        model, x, y, epochs=3, layers=["h1", "h2"],
        schedule=Constant(0.5, start=0),
        batch_size=BATCH, shuffle_seed=0, seed=0, callbacks=[plateau, recorder],
    )
    grown = result.model
    # One event per grown layer and growth.
    assert [(e["step"], e["layer"], e["widths_after"]) for e in result.events] == [
        (0, "h1", {"h1": 6, "h2": 6}), (0, "h2", {"h1": 6, "h2": 6}),
        (1, "h1", {"h1": 9, "h2": 9}), (1, "h2", {"h1": 9, "h2": 9})]
    for event in result.events:
        assert event["action"] == "grow"
        assert event["relative_loss_change"] <= 1e-5
        assert event["params"] > event["params_before"]
    assert result.history["params"][0] < result.history["params"][1] < result.history["params"][2]
    assert len(result.history["loss"]) == 3
    assert recorder.calls == ["begin", 0, 1, 2, "end"]
    assert len(recorder.models) == 3  # pointed at every rebuilt model
    assert int(grown.optimizer.iterations) == 3 * 4
    assert float(grown.optimizer.learning_rate) == pytest.approx(0.01 * 0.25)
    assert grown.get_layer("h1").units == 9


def test_grown_model_saves_loads_and_exports(digits, tmp_path):
    x, y = digits
    result = fit_with_growth(
        _model(), x, y, epochs=2, layers=["h1"],
        schedule=Constant(1.0, start=0), batch_size=BATCH,
    )
    grown = result.model
    assert grown.get_layer("h1").units == 8
    path = tmp_path / "grown.keras"
    grown.save(path)
    loaded = keras.saving.load_model(path)
    expected = np.asarray(grown(x[:16]))
    np.testing.assert_allclose(np.asarray(loaded(x[:16])), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tflite_predict(to_tflite(grown), x[:16]), expected, rtol=1e-4, atol=1e-4)


def test_noise_free_net2net_keeps_the_loss(digits):
    x, y = digits
    result = fit_with_growth(
        _model(), x, y, epochs=2, layers=["h1", "h2"], init="net2net",
        schedule=Constant(0.5, start=0), batch_size=BATCH, seed=0,
    )
    assert [e["layer"] for e in result.events] == ["h1", "h2"]
    event = result.events[0]
    assert event["widths_after"] == {"h1": 6, "h2": 6}
    assert event["relative_loss_change"] <= 1e-5


def test_optimizer_reset_and_same_data_order(digits):
    x, y = digits
    keras.utils.set_random_seed(7)
    weights = _model().get_weights()
    runs = []
    for schedule, epochs in ((Constant(0.5, start=0), 2), (None, 1)):
        model = _model()
        model.set_weights(weights)
        runs.append(fit_with_growth(
            model, x, y, epochs=epochs, layers=["h1"], reset_optimizer=True,
            schedule=schedule, batch_size=BATCH,
            shuffle_seed=3, seed=0,
        ))
    grown, plain = runs
    # Same weights, same data order: identical first epochs.
    assert grown.history["loss"][0] == plain.history["loss"][0]
    assert int(grown.model.optimizer.iterations) == 4  # fresh optimizer after growth
    assert grown.model.optimizer is not plain.model.optimizer
    assert plain.events == [] and plain.history["decisions"] == []
    assert grown.events[0]["relative_loss_change"] <= 1e-5


def test_trigger_alone_sets_the_amount(digits):
    x, y = digits
    trigger = EffectiveRankTrigger(saturation=0.5)
    result = fit_with_growth(
        _model(width=4), x, y, epochs=2, layers=["h1"], trigger=trigger,
        init="net2net", noise=0.01, batch_size=BATCH, seed=0,
    )
    decision = result.history["decisions"][0]
    assert decision.fired == {"h1": True}
    # rank of the 4 units (at most 4) minus floor(0.5 * 4).
    assert 1 <= decision.plan["h1"] <= 2
    assert len(decision.sources["h1"]) == decision.plan["h1"]
    assert result.model.get_layer("h1").units == 4 + decision.plan["h1"]


def test_growth_under_mirrored_strategy(digits, two_cpu_strategy):
    x, y = digits
    with two_cpu_strategy.scope():
        model = _model()
    result = fit_with_growth(
        model, x, y, epochs=2, layers=["h1", "h2"],
        schedule=Constant(0.5, start=0), batch_size=BATCH, seed=0,
    )
    grown = result.model
    assert grown.distribute_strategy is two_cpu_strategy
    assert grown.get_layer("h1").units == 6
    assert isinstance(grown.get_layer("h1").kernel.value, tf.distribute.DistributedValues)
    assert result.events[0]["relative_loss_change"] <= 1e-5
    assert int(keras.ops.convert_to_numpy(grown.optimizer.iterations)) == 8


def test_driver_errors(digits):
    x, y = digits
    inputs = keras.Input((64,))
    uncompiled = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="Compile"):
        fit_with_growth(uncompiled, x, y, schedule=Constant(0.2, start=2))
    with pytest.raises(ValueError, match="criterion"):
        fit_with_growth(_model(), x, y, schedule=Constant(0.2, start=2), criterion="variance")
    with pytest.raises(ValueError, match="least correlated pairs"):
        fit_with_growth(_model(), x, y, schedule=Constant(0.2, start=2), init="pair_average", criterion="l1")

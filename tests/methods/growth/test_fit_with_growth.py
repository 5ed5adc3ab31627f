"""The growth schedule, the GrowthCallback and the fit-grow-continue driver."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from keras_darn.methods.growth.grow import fit_with_growth
from keras_darn.methods.growth.callback import GrowthCallback
from keras_darn.methods.growth.callback import ProportionalGrowth
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


def test_proportional_growth_schedule():
    schedule = ProportionalGrowth(rate=0.2, start_epoch=3, every=2, max_width={"a": 110})
    assert [schedule(e, 100, "a") for e in range(1, 8)] == [0, 0, 10, 0, 10, 0, 10]
    assert schedule(3, 100, "b") == 0  # not in max_width: never grows
    assert ProportionalGrowth(rate=0.01, start_epoch=1)(1, 10) == 1  # at least one unit
    capped = ProportionalGrowth(rate=1.0, start_epoch=1, max_width=256, stop_epoch=4)
    assert [capped(1, 16), capped(2, 200), capped(3, 256), capped(5, 16)] == [16, 56, 0, 0]
    clone = ProportionalGrowth.from_config(capped.get_config())
    assert clone.get_config() == capped.get_config()
    with pytest.raises(ValueError, match="rate"):
        ProportionalGrowth(rate=0)
    with pytest.raises(ValueError, match="start_epoch"):
        ProportionalGrowth(start_epoch=0)


def test_callback_stops_fit_when_growth_is_due(digits):
    x, y = digits
    model = _model()
    callback = GrowthCallback(
        ["h1"], ProportionalGrowth(rate=0.5, start_epoch=2), stop_training=True
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
        schedule=ProportionalGrowth(rate=0.5, start_epoch=1),
        batch_size=BATCH, shuffle_seed=0, seed=0, callbacks=[plateau, recorder],
    )
    grown = result.model
    assert [e.widths_after for e in result.events] == [{"h1": 6, "h2": 6}, {"h1": 9, "h2": 9}]
    for event in result.events:
        assert event.relative_loss_change <= 1e-5
        assert event.params_after > event.params_before
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
        schedule=ProportionalGrowth(rate=1.0, start_epoch=1), batch_size=BATCH,
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
        schedule=ProportionalGrowth(rate=0.5, start_epoch=1), batch_size=BATCH, seed=0,
    )
    (event,) = result.events
    assert event.widths_after == {"h1": 6, "h2": 6}
    assert event.relative_loss_change <= 1e-5


def test_optimizer_reset_and_same_data_order(digits):
    x, y = digits
    keras.utils.set_random_seed(7)
    weights = _model().get_weights()
    runs = []
    for schedule, epochs in ((ProportionalGrowth(rate=0.5, start_epoch=1), 2), (None, 1)):
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
    assert plain.events == [] and plain.decisions == []
    assert grown.events[0].relative_loss_change <= 1e-5


def test_trigger_alone_sets_the_amount(digits):
    x, y = digits
    trigger = EffectiveRankTrigger(saturation=0.5)
    result = fit_with_growth(
        _model(width=4), x, y, epochs=2, layers=["h1"], trigger=trigger,
        init="net2net", noise=0.01, batch_size=BATCH, seed=0,
    )
    decision = result.decisions[0]
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
        schedule=ProportionalGrowth(rate=0.5, start_epoch=1), batch_size=BATCH, seed=0,
    )
    grown = result.model
    assert grown.distribute_strategy is two_cpu_strategy
    assert grown.get_layer("h1").units == 6
    assert isinstance(grown.get_layer("h1").kernel.value, tf.distribute.DistributedValues)
    assert result.events[0].relative_loss_change <= 1e-5
    assert int(keras.ops.convert_to_numpy(grown.optimizer.iterations)) == 8


def test_driver_errors(digits):
    x, y = digits
    inputs = keras.Input((64,))
    uncompiled = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="Compile"):
        fit_with_growth(uncompiled, x, y, schedule=ProportionalGrowth())
    with pytest.raises(ValueError, match="criterion"):
        fit_with_growth(_model(), x, y, schedule=ProportionalGrowth(), criterion="variance")
    with pytest.raises(ValueError, match="needs a criterion"):
        fit_with_growth(_model(), x, y, schedule=ProportionalGrowth(), init="pair_average", criterion="l1")

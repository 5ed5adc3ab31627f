"""NodeDrop through the front door: exact resume with BackupAndRestore, absolute steps, reuse."""

import warnings

import keras
import numpy as np
import pytest

import keras_darn as darn
from support.resume import assert_same_training_state
from support.resume import run_with_interruption
from support.resume import training_state

SCR = darn.layers.soft_clamped_relu
EPOCHS = 4


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype("int32")
    return x, y


X, Y = _data()


def _plain_cnn():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(6, 3, activation=SCR, name="c1")(inputs)
    x = keras.layers.Conv2D(6, 3, activation=SCR, name="c2")(x)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D()(x))
    x = keras.layers.Dense(8, activation=SCR, name="d1")(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="out")(x))


def _maker(check_every):
    def make():
        keras.utils.set_random_seed(3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, callback = darn.prepare(
                _plain_cnn(), "nodedrop", lam=0.05, input_range=(0, 1), check_every=check_every
            )
        model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
        return model, callback

    return make


def _fit(model, callbacks):
    model.fit(X, Y, epochs=EPOCHS, batch_size=16, shuffle=False, verbose=0, callbacks=callbacks)


def _masks(model):
    return {l.name: l.get_unit_mask() for l in model.layers if hasattr(l, "get_unit_mask")}


@pytest.mark.parametrize("check_every", ["epoch", 4])
@pytest.mark.parametrize("interrupt_epoch", [1, 3])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, check_every, interrupt_epoch):
    make = _maker(check_every)
    expected_model, expected = make()
    _fit(expected_model, [expected])
    assert expected.events, "lambda is large enough to drop units"
    model, callback = run_with_interruption(make, _fit, interrupt_epoch, str(tmp_path / "b"))
    for name, mask in _masks(expected_model).items():
        np.testing.assert_array_equal(_masks(model)[name], mask, err_msg=name)
    assert callback.events == expected.events
    assert_same_training_state(training_state(model), training_state(expected_model))
    # The front door's history of every epoch survives too.
    assert callback.history["live_units"] == expected.history["live_units"]
    np.testing.assert_allclose(callback.history["loss"], expected.history["loss"], rtol=1e-6)
    assert len(callback.history["loss"]) == EPOCHS


def test_step_checks_count_from_epoch_zero():
    model, callback = _maker(4)()
    model.fit(X, Y, initial_epoch=1, epochs=3, batch_size=16, shuffle=False, verbose=0,
              callbacks=[callback])
    # 6 steps per epoch: epochs 1 and 2 hold absolute steps 7 to 18.
    steps = sorted({e["train_step"] for e in callback.events})
    assert steps and all(s % 4 == 0 and 7 <= s <= 18 for s in steps), steps
    assert {e["step"] for e in callback.events} <= {1, 2}


def test_one_instance_serves_two_fits():
    make = _maker("epoch")
    model, callback = make()
    _fit(model, [callback])
    first = callback.events
    model2, _ = make()
    _fit(model2, [callback])
    assert callback.events == first
    assert len(callback.history["loss"]) == EPOCHS

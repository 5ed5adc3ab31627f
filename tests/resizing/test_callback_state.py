"""ResumableCallback: callback state saved with the model's weights, epochs and warnings."""

import keras
import numpy as np
import pytest

from keras_darn.resizing.method import ResumableCallback
from keras_darn.resizing.method import schedule_epochs
from keras_darn.resizing.schedules import Linear
from support.resume import InterruptAt
from support.resume import Interrupted

X = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
Y = np.random.default_rng(1).normal(size=(32, 1)).astype("float32")


class EpochLog(ResumableCallback):
    """Records the epochs it saw; acts (per its schedule) at their end."""

    def __init__(self, schedule=None, **kwargs):
        super().__init__(**kwargs)
        self.schedule = schedule
        self.reset_state()

    def reset_state(self):
        self.seen = []

    def get_state(self):
        return {"seen": self.seen}

    def set_state(self, state, epoch):
        self.seen = [e for e in state["seen"] if e < epoch]

    def schedule_summary(self, first_epoch, last_epoch):
        if self.schedule is None:
            return None
        return repr(self.schedule), schedule_epochs(self.schedule, first_epoch, last_epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(epoch)
        super().on_epoch_end(epoch, logs)


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    return model


def _interrupted(callbacks, backup_dir, epoch=2):
    model = _model()
    with pytest.raises(Interrupted):
        model.fit(X, Y, epochs=4, verbose=0, callbacks=[*callbacks, InterruptAt(epoch)])
    return model


def test_state_travels_in_the_weights_file_and_adds_no_weights(tmp_path):
    model, callback = _model(), EpochLog()
    weights_before = len(model.weights)
    model.fit(X, Y, epochs=3, verbose=0, callbacks=[callback])
    assert len(model.weights) == weights_before
    model.save_weights(tmp_path / "w.weights.h5")
    model.save(tmp_path / "m.keras")
    keras.saving.load_model(tmp_path / "m.keras")  # a model without the callback loads it

    fresh, restored = _model(), EpochLog()
    restored.set_model(fresh)
    fresh.load_weights(tmp_path / "w.weights.h5")
    fresh.fit(X, Y, initial_epoch=2, epochs=4, verbose=0, callbacks=[restored])
    # Epochs 0 and 1 come from the file (epoch 2 is redone), then 2 and 3 are run.
    assert restored.seen == [0, 1, 2, 3]


def test_resume_restores_the_history(tmp_path):
    def callbacks(log):
        return [log, keras.callbacks.BackupAndRestore(str(tmp_path / "b"))]

    _interrupted(callbacks(EpochLog()), tmp_path)
    model, log = _model(), EpochLog()
    model.fit(X, Y, epochs=4, verbose=0, callbacks=callbacks(log))
    assert log.seen == [0, 1, 2, 3]


def test_backup_listed_first_saves_before_the_callback_and_the_resume_warns(tmp_path):
    def callbacks(log):
        return [keras.callbacks.BackupAndRestore(str(tmp_path / "b")), log]

    _interrupted(callbacks(EpochLog()), tmp_path)
    log = EpochLog()
    with pytest.warns(UserWarning, match="list it before keras.callbacks.BackupAndRestore"):
        _model().fit(X, Y, epochs=4, verbose=0, callbacks=callbacks(log))
    assert log.seen == [0, 2, 3]  # epoch 1's work was not in the checkpoint


def test_checkpoint_taken_before_the_callback_warns(tmp_path):
    class Late(EpochLog):
        def get_checkpoint_state(self):
            state = super().get_checkpoint_state()
            state["epochs_done"] -= 1  # as if saved before this epoch's work
            return state

    _interrupted([Late(state_name="epochlog"), keras.callbacks.BackupAndRestore(str(tmp_path / "b"))], tmp_path)
    with pytest.warns(UserWarning, match="before keras.callbacks.BackupAndRestore"):
        _model().fit(X, Y, epochs=4, verbose=0,
                     callbacks=[EpochLog(), keras.callbacks.BackupAndRestore(str(tmp_path / "b"))])


def test_schedule_that_cannot_act_warns_naming_the_epochs():
    callback = EpochLog(schedule=Linear(start=0, end=1))
    with pytest.warns(UserWarning, match=r"acts at no epoch in \[3, 5\).*initial_epoch=3, epochs=5"):
        _model().fit(X, Y, initial_epoch=3, epochs=5, verbose=0, callbacks=[callback])
    assert callback.seen == [3, 4]


def test_invalid_state_name():
    with pytest.raises(ValueError, match="state_name"):
        EpochLog(state_name="not an identifier")

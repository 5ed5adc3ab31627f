"""Callback state that travels with the model's weights, and the epoch rules.

`keras.callbacks.BackupAndRestore` (and `model.save_weights` /
`load_weights`) save the model's variables and its optimizer; a callback's
Python attributes are lost when training is interrupted. `ResumableCallback`
attaches a small holder to the model that the Keras weights file saves too:
the callback's `get_state()` is written with every checkpoint and, after a
restore, handed back to `set_state` at the first epoch of the resumed `fit`,
trimmed to the epochs before it. The holder has no variables, so it changes
neither `model.weights` nor a `.keras` file loaded without it.

Epochs mean one thing in every keras_darn callback: Keras' absolute, 0-based
epoch index, the `epoch` that `fit` passes to `on_epoch_begin` /
`on_epoch_end`. `fit(initial_epoch=3)` starts at epoch 3, so a schedule
resumes where it was after `BackupAndRestore` restores the epoch counter.
"""

import json
import warnings

import keras
import numpy as np

# The one private Keras import of the package: the weights file walks the
# model's attributes and saves every `KerasSaveable` it finds; no public
# class has that role without also adding variables or layers to the model.
from keras.src.saving.keras_saveable import KerasSaveable

_STATE_KEY = "state"
_ATTRIBUTE_PREFIX = "_keras_darn_state_"


class _StateHolder(KerasSaveable):
    """Writes its callback's `get_state()` into the weights file, reads it back."""

    def __init__(self, owner):
        self._owner = owner
        self._restored_text = None

    def _obj_type(self):
        # The weights file walks attributes not found on this reference type;
        # an `Operation` has none of the holder's attributes.
        return "Operation"

    def save_own_variables(self, store):
        text = json.dumps(self._owner.get_checkpoint_state(), default=_plain_json)
        store[_STATE_KEY] = np.frombuffer(text.encode("utf-8"), dtype="uint8")

    def load_own_variables(self, store):
        if _STATE_KEY in store:
            self._restored_text = bytes(np.asarray(store[_STATE_KEY], "uint8")).decode("utf-8")

    def take_restored(self):
        """The state last loaded from a weights file (once), or `None`."""
        text, self._restored_text = self._restored_text, None
        return None if text is None else json.loads(text)


def _plain_json(value):
    """NumPy and tensor values (a log entry, an index) as JSON numbers or lists."""
    value = keras.ops.convert_to_numpy(value) if keras.ops.is_tensor(value) else value
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Cannot save a {type(value).__name__} in a keras_darn callback's state: {value!r}")


def schedule_epochs(schedule, first_epoch, last_epoch):
    """The epochs in `[first_epoch, last_epoch)` where `schedule` acts."""
    return [epoch for epoch in range(first_epoch, last_epoch) if schedule(epoch) is not None]


class ResumableCallback(keras.callbacks.Callback):
    """Base of the keras_darn callbacks: reusable, resumable, absolute epochs.

    A subclass implements `reset_state()` (forget everything of a previous
    `fit`; called at `on_train_begin`), `get_state()` (a JSON-serializable
    dict of what must survive an interruption, typically the event
    history) and `set_state(state, epoch)` (adopt a restored state, keeping
    only what happened before `epoch`). It calls `super().on_train_begin`,
    `super().on_epoch_begin` and `super().on_epoch_end` from its own hooks.

    Put keras_darn callbacks before `keras.callbacks.BackupAndRestore` in
    `callbacks=[...]`: callbacks run in list order, and a checkpoint taken
    before a callback's end-of-epoch work would resume without it (the
    callback warns when it finds such a checkpoint).

    Args:
        state_name: the name the state is saved under in the weights file;
            two callbacks of the same class on one model need different
            names. Defaults to `None` (the class name).

    Example:

    ```python
    model, callback = darn.prepare(model, "nodedrop", input_range=(0, 1))
    model.compile("adam", "sparse_categorical_crossentropy")
    backup = keras.callbacks.BackupAndRestore(backup_dir)
    model.fit(x, y, epochs=10, callbacks=[callback, backup])   # resumes after a crash
    ```
    """

    def __init__(self, state_name=None):
        super().__init__()
        if state_name is not None and (not isinstance(state_name, str) or not state_name.isidentifier()):
            raise ValueError(
                "Received an invalid value for `state_name`, expected a Python identifier "
                f"or None. Received: state_name={state_name!r}"
            )
        self.state_name = state_name or type(self).__name__.lower()
        self._holder = _StateHolder(self)
        self._first_epoch = None
        self._epochs_done = 0

    def set_model(self, model):
        super().set_model(model)
        # Attached before any `on_train_begin`, so a `BackupAndRestore`
        # listed anywhere restores into it.
        object.__setattr__(model, _ATTRIBUTE_PREFIX + self.state_name, self._holder)

    # Subclass interface -------------------------------------------------
    def reset_state(self):
        """Forgets the state of a previous `fit`."""

    def get_state(self):
        """A JSON-serializable dict of what must survive an interruption."""
        return {}

    def set_state(self, state, epoch):
        """Adopts `state` restored from a checkpoint, for a `fit` resuming at `epoch`."""

    def schedule_summary(self, first_epoch, last_epoch):
        """`(description, epochs it acts at in [first, last))`, or `None` to skip the check."""
        return None

    # Hooks --------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._first_epoch = None
        self._epochs_done = 0
        self.reset_state()

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is not None:
            return
        self._first_epoch = epoch
        self._epochs_done = epoch
        restored = self._holder.take_restored()
        if restored is not None:
            saved_done = restored.get("epochs_done", 0)
            if saved_done < epoch:
                warnings.warn(
                    f"{type(self).__name__}: the checkpoint restored for epoch {epoch} was "
                    f"saved before this callback's work at the end of epoch {epoch - 1}; "
                    "list it before keras.callbacks.BackupAndRestore in `callbacks` so "
                    "that a resumed run equals the uninterrupted one.",
                    stacklevel=2,
                )
            self.set_state(restored.get("callback", {}), epoch)
        last_epoch = (self.params or {}).get("epochs")
        summary = self.schedule_summary(epoch, last_epoch) if last_epoch is not None else None
        if summary is not None and not summary[1]:
            warnings.warn(
                f"{type(self).__name__} will not act in this fit: its schedule "
                f"({summary[0]}) acts at no epoch in [{epoch}, {last_epoch}), the epochs "
                f"of this fit (initial_epoch={epoch}, epochs={last_epoch}). Epochs are "
                "Keras' absolute epoch indices.",
                stacklevel=2,
            )

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_done = epoch + 1

    def get_checkpoint_state(self):
        """What the weights file holds: the callback's state and its epoch count."""
        return {"epochs_done": self._epochs_done, "callback": self.get_state()}

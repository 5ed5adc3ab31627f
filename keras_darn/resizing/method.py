"""`Method`, the base class of what `prepare` and `resize` run, and the resumable callback it returns.

A method acts during `fit` through a Keras callback, which `prepare` wraps
in a `MethodCallback` (`finish()` gives the `Result`). Every keras_darn
callback is a `ResumableCallback`: `keras.callbacks.BackupAndRestore` (and
`model.save_weights` / `load_weights`) save the model's variables and its
optimizer, but a callback's Python attributes are lost when training is
interrupted, so a small holder attached to the model has the Keras weights
file save them too. The callback's `get_state()` is written with every
checkpoint and, after a restore, handed back to `set_state` at the first
epoch of the resumed `fit`, trimmed to the epochs before it. The holder has
no variables, so it changes neither `model.weights` nor a `.keras` file
loaded without it.

Epochs mean one thing in every keras_darn callback: Keras' absolute, 0-based
epoch index, the `epoch` that `fit` passes to `on_epoch_begin` /
`on_epoch_end`. `fit(initial_epoch=3)` starts at epoch 3, so a schedule
resumes where it was after `BackupAndRestore` restores the epoch counter.
"""

import json
import numbers
import warnings

import keras
import numpy as np

# The one private Keras import of the package: the weights file walks the
# model's attributes and saves every `KerasSaveable` it finds; no public
# class has that role without also adding variables or layers to the model.
from keras.src.saving.keras_saveable import KerasSaveable

from keras_darn.rebuild import shrink
from keras_darn.rebuild import unfold_blocks
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures

_STATE_KEY = "state"
_ATTRIBUTE_PREFIX = "_keras_darn_state_"


class Method:
    """Base class of a method: how it acts during `fit` and/or between fits.

    A subclass sets the class attributes and implements `prepare` (to act
    during `fit`, through a callback) and/or `resize` (to act between
    fits). Register it with `register_method` to make it known by name.

    Class attributes:
        name: the registered name (set by `get_method`).
        prepare_amounts: `Target` amounts `prepare` supports (empty: it
            decides the amount itself).
        resize_amounts: the same for `resize`.
        resize_requires_amount: whether `resize` needs an amount.
        distills_between_fits: whether `resize` takes a `distillation`
            keyword (a `darn.Distillation` for the training it does).

    Example:

    ```python
    method = darn.methods.get("taylor1")
    model, callback = darn.prepare(model, method, darn.Target(fraction=0.5),
                                   validation_data=(x_val, y_val))
    ```
    """

    name = None
    prepare_amounts = None
    resize_amounts = None
    resize_requires_amount = False
    distills_between_fits = False

    @property
    def acts_during_fit(self):
        return self.prepare_amounts is not None

    @property
    def acts_between_fits(self):
        return self.resize_amounts is not None

    def prepare(self, model, target, validation_data=None, schedule=None):
        """Returns `(model to train, keras callback)`; the model given stays as it is.

        The callback has an `events` list (see `Result.events`).
        """
        raise NotImplementedError

    def resize(self, model, target, x=None, y=None, validation_data=None, epochs=1,
               schedule=None, verbose=0):
        """Runs the method between fits and returns a `Result`."""
        raise NotImplementedError

    def get_config(self):
        return {}

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


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


class MethodCallback(ResumableCallback):
    """What `prepare` hands to `fit`: the method's callback, and `finish()`.

    It passes every training hook on to the method's own callback,
    remembers the figures of the model before training and the logs of
    every epoch (after the method's callback wrote its own into them), so
    that `finish` can return a `Result`.

    Epochs are Keras' absolute, 0-based epoch indices everywhere (the
    method's schedule, `events`' `step`). The per-epoch logs are reset when
    training begins and saved with the model's weights, so a run resumed by
    `keras.callbacks.BackupAndRestore` (list this callback before it, as
    below) has the history and events of the uninterrupted one. Under a
    `tf.distribute` strategy (also `MultiWorkerMirroredStrategy`) every
    worker runs the callback and sets the same masks; `finish()` computes
    on every worker, and only the chief should write files from it.

    Attributes:
        callback: the method's own callback.
        method: the `Method`.

    Example:

    ```python
    model, callback = darn.prepare(model, "nodedrop", lam=1e-4, input_range=(0, 1))
    model.compile("adam", "sparse_categorical_crossentropy")
    backup = keras.callbacks.BackupAndRestore(backup_dir)
    model.fit(x, y, epochs=5, callbacks=[callback, backup])
    result = callback.finish()
    ```
    """

    def __init__(self, method, callback, model, before):
        super().__init__(state_name="method_callback")
        self.method = method
        self.callback = callback
        self.prepared_model = model
        self.before = before
        self.reset_state()

    @property
    def events(self):
        return list(getattr(self.callback, "events", []))

    def set_model(self, model):
        super().set_model(model)
        # With distillation `fit` runs a Distiller: the method works on its student.
        self.callback.set_model(student_of(model))

    def set_params(self, params):
        super().set_params(params)
        self.callback.set_params(params)

    def reset_state(self):
        self.history = {}
        self._history_epochs = []

    def get_state(self):
        return {"history": self.history, "epochs": self._history_epochs}

    def set_state(self, state, epoch):
        keep = [i for i, e in enumerate(state.get("epochs", [])) if e < epoch]
        self._history_epochs = [state["epochs"][i] for i in keep]
        self.history = {}
        for key, values in state.get("history", {}).items():
            kept = [values[i] for i in keep if i < len(values)]
            if kept:
                self.history[key] = kept

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.callback.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch, logs)
        self._history_epochs.append(int(epoch))
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(_plain(value))
        super().on_epoch_end(epoch, logs)

    def finish(self, compile=False):
        """The plain, smaller Keras model and what happened, as a `Result`.

        Args:
            compile: compile the small model like the trained one. Defaults
                to `False`.

        Returns:
            A `Result` whose `model` is `keras_darn.shrink` of the trained
            model: masked units gone, the same outputs, plain Keras layers
            (`keras_darn.rebuild.unfold_blocks`).
        """
        trained = student_of(getattr(self, "_model", None) or self.prepared_model)
        notes = dict(getattr(self.callback, "skipped", None) or {})
        if not self._history_epochs:
            notes["fit"] = ("finish() was called before any epoch of `fit` ran with this "
                            "callback: the model comes back as it was prepared")
            warnings.warn(f"{type(self).__name__}: {notes['fit']}.", stacklevel=2)
        small = shrink(trained, compile=compile)
        return Result(unfold_blocks(small), self.events, self.before, figures(small), history=self.history,
                      method=self.method.name, target=getattr(self.callback, "target", None),
                      notes=notes)


def student_of(model):
    """The student a `Distiller` trains, or `model` itself."""
    distillation = getattr(keras, "distillation", None)
    is_distiller = distillation is not None and isinstance(model, distillation.Distiller)
    return model.student if is_distiller else model


def _plain(value):
    """A log value as a Python number (logs hold NumPy or tensor scalars)."""
    if isinstance(value, numbers.Integral):
        return int(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _forward(hook):
    def forward(self, *args, **kwargs):
        return getattr(self.callback, hook)(*args, **kwargs)

    forward.__name__ = hook
    return forward


for _hook in (
    "on_train_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end",
):
    setattr(MethodCallback, _hook, _forward(_hook))

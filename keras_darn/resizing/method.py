"""`Method`: the base class of what `prepare` and `resize` run, and its registry."""

import difflib
import inspect
import numbers
import warnings

from keras_darn.criteria import base as criteria_base
from keras_darn.resizing.callback_state import ResumableCallback
from keras_darn.resizing.distillation import student_of
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures
from keras_darn.rebuild import shrink
from keras_darn.rebuild import unfold_blocks

_REGISTRY = {}
_CRITERION_METHOD = []  # the Method that runs any registered criterion by its name


def register_method(*names):
    """Class decorator: makes a `Method` subclass known by `names`.

    Each name builds the class with the keyword arguments bound to it, so
    one class can stand for several variants:
    `register_method("taylor1", "taylor2")` passes nothing, and
    `register_method(("net2net", {"init": "net2net"}))` passes `init`.

    Example:

    ```python
    @darn.methods.register("my_criterion")
    class MyPruning(darn.methods.Method):
        ...
    ```
    """
    if not names:
        raise ValueError("Expected at least one name. Received: names=()")

    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise ValueError(
                f"Expected a subclass of keras_darn.methods.Method. Received: {cls!r}"
            )
        for entry in names:
            name, bound = entry if isinstance(entry, tuple) else (entry, {})
            if not isinstance(name, str) or not name:
                raise ValueError(f"Expected a method name (a string). Received: {name!r}")
            _REGISTRY[name] = (cls, dict(bound))
        return cls

    return decorate


def register_criterion_method(cls):
    """Class decorator: `cls` runs every registered criterion by its name.

    A criterion registered with `darn.criteria.register_criterion("name")`
    (inside the package or out of it) is then a method name too:
    `darn.prepare(model, "name", ...)` builds `cls(criterion="name")`, so a
    new criterion needs no `Method` of its own. A name registered as a
    method wins over a criterion of the same name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ValueError(f"Expected a subclass of keras_darn.methods.Method. Received: {cls!r}")
    _CRITERION_METHOD[:] = [cls]
    return cls


def _lookup(identifier):
    """`(Method class, bound options)` of a name, or `None`."""
    if identifier in _REGISTRY:
        return _REGISTRY[identifier]
    if _CRITERION_METHOD and identifier in criteria_base.criterion_names():
        return _CRITERION_METHOD[0], {"criterion": identifier}
    return None


def method_names():
    """The registered method names, sorted."""
    return sorted(_REGISTRY)


def get_method(identifier, **options):
    """A `Method` from a registered name (with options) or a `Method`.

    Raises:
        ValueError: for an unknown name, or options given with an object.
    """
    if isinstance(identifier, Method):
        if options:
            raise ValueError(
                "Options go to the method's constructor; pass them there, not beside a "
                f"method object. Received: method={identifier!r}, options={sorted(options)}"
            )
        return identifier
    found = _lookup(identifier) if isinstance(identifier, str) else None
    if found is not None:
        cls, bound = found
        clash = sorted(set(bound) & set(options))
        if clash:
            raise ValueError(
                f"Method '{identifier}' fixes {clash} itself. Received: "
                + ", ".join(f"{k}={options[k]!r}" for k in clash)
            )
        _check_options(identifier, cls, bound, options)
        method = cls(**bound, **options)
        method.name = identifier
        return method
    if not isinstance(identifier, str):
        raise ValueError(
            "Expected a method name (a str; darn.methods.names() lists them) or a "
            f"darn.methods.Method. Received: method={identifier!r}"
        )
    close = difflib.get_close_matches(
        str(identifier), method_names() + criteria_base.criterion_names(), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ValueError(
        f"Unknown method.{hint} Known names: {method_names()}, or a registered criterion's name "
        f"({criteria_base.criterion_names()}). Received: method={identifier!r}"
    )


def _check_options(identifier, cls, bound, options):
    """Refuses options the method's constructor does not take, naming the valid ones."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    valid = sorted(name for name in parameters if name != "self" and name not in bound)
    for name in sorted(options):
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise ValueError(
                f"Method '{identifier}' has no option `{name}`.{hint} Its options: {valid}. "
                f"Received: {name}={options[name]!r}"
            )


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

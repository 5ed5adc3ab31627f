"""The front door: the method names, `prepare` (to act during `fit`) and `resize` (between fits)."""

import difflib
import inspect

import keras

from keras_darn.criteria import base as criteria_base
from keras_darn.rebuild import unfold_blocks
from keras_darn.resizing.distillation import Distillation
from keras_darn.resizing.method import Method
from keras_darn.resizing.method import MethodCallback
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures
from keras_darn.resizing.schedules import Schedule
from keras_darn.resizing.targets import Target
from keras_darn.validation import check_examples
from keras_darn.validation import check_inputs
from keras_darn.validation import check_validation_data

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


# The recommended pruner (`keras_darn.methods.pruning`): group weight
# magnitude, the same fraction of every coupled group; what `prepare` and
# `resize` run when no method is named.
DEFAULT_METHOD = "magnitude"


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Expected a keras.Model. Received: model={model!r} of type {type(model).__name__}"
        )


def _names_where(predicate):
    return [name for name in method_names() if predicate(get_method(name))]


def prepare(model, method=DEFAULT_METHOD, target=None, *, validation_data=None, schedule=None,
            distill=None, **options):
    """Makes a model ready for a method that acts during `fit`.

    Returns a copy of `model` to compile and train (the model given is
    never modified) and the callback that does the method's work during
    `model.fit`. After training, `callback.finish()` returns the plain,
    smaller model as a `Result`. With `distill`, the copy comes wrapped in
    a `keras.distillation.Distiller` that trains it on the labels and on
    the outputs of a frozen teacher (by default the model as given).

    The schedule's steps are Keras' absolute epoch indices (the `epoch`
    that `fit` passes to callbacks), so `fit(initial_epoch=...)` and a run
    resumed by `keras.callbacks.BackupAndRestore` go on with the schedule
    where it was; list the callback before `BackupAndRestore` in
    `callbacks`, and the resumed run ends as the uninterrupted one. One
    callback serves several `fit` calls: its events and logs are those of
    the latest.

    Args:
        model: a built Functional or Sequential `keras.Model`.
        method: a registered method name (`darn.methods.names()` lists
            them) or a `darn.methods.Method`. Defaults to `"magnitude"`,
            the recommended structured pruner (group weight magnitude,
            the same fraction of every coupled group; data-free).
        target: a `darn.Target`, a dict of its arguments, or `None` (the
            method decides the amount). Defaults to `None`.
        validation_data: held-out data the method scores units on, `x` or
            `(x, y)`, for methods that need it. Defaults to `None`.
        schedule: a `darn.Schedule` of when the method acts (its steps
            are Keras' absolute epoch indices), for methods that take one.
            Defaults to `None` (the method's default).
        distill: `True` (the teacher is the model as given), a teacher
            `keras.Model`, or a `darn.Distillation` (teacher, temperature,
            weight). Defaults to `None` (no distillation).
        **options: the method's own options (its class lists them).

    Returns:
        `(model, callback)`: the model to train (with `distill`, a
        `keras.distillation.Distiller` whose `student` is that model) and a
        `keras.callbacks.Callback` with `events` and `finish()`.

    Raises:
        ValueError: for an unknown method, a method that acts between fits
            only, a target or option the method does not support, or
            `validation_data` whose arrays do not fit the model's inputs.

    Example:

    ```python
    model, callback = darn.prepare(model, "magnitude", darn.Target(fraction=0.5))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=6, callbacks=[callback])
    result = callback.finish()
    ```
    """
    _check_model(model)
    method = get_method(method, **options)
    if not method.acts_during_fit:
        raise ValueError(
            f"Method '{method.name}' acts between fits: call darn.resize(model, "
            f"'{method.name}', ...). Methods that act during fit: "
            f"{_names_where(lambda m: m.acts_during_fit)}."
        )
    target = Target.get(target)
    target.check_supported(method.name, method.prepare_amounts)
    target.check_model(model)
    check_validation_data(model, validation_data)
    if schedule is not None:
        schedule = Schedule.get(schedule)
    distillation = None if distill is None else Distillation.get(distill)
    before = figures(model)
    new_model, callback = method.prepare(model, target, validation_data, schedule)
    method_callback = MethodCallback(method, callback, new_model, before)
    if distillation is None:
        return new_model, method_callback
    return distillation.distiller(new_model, distillation.teacher_for(model)), method_callback


def resize(
    model,
    method=DEFAULT_METHOD,
    target=None,
    *,
    x=None,
    y=None,
    validation_data=None,
    epochs=1,
    schedule=None,
    verbose=0,
    distill=None,
    **options,
):
    """Runs a method that acts between fits, and returns its `Result`.

    The model given is never modified. Methods that train (growth, DARN's
    Algorithm 1, the retraining of adaptive-rate pruning) train on `(x, y)`
    with the model's own compile settings; methods that judge accuracy
    use `validation_data`.

    Args:
        model: a built (for most methods, trained and compiled)
            Functional or Sequential `keras.Model`.
        method: a registered method name or a `darn.methods.Method`.
            Defaults to `"magnitude"`, the recommended structured pruner
            (prune and fine-tune between fits, rebuilt smaller after every
            step).
        target: a `darn.Target`, a dict of its arguments, or `None`.
            Defaults to `None`.
        x: training inputs, for methods that train. Defaults to `None`.
        y: training targets. Defaults to `None`.
        validation_data: `(x_val, y_val)`, held-out data to score units and
            measure accuracy on. Defaults to `None`.
        epochs: training epochs, for methods that train (per step or in
            all, as the method says). Defaults to `1`.
        schedule: a `darn.Schedule`, for methods that take one. Defaults to
            `None` (the method's default).
        verbose: 1 prints progress. Defaults to `0`.
        distill: `True`, a teacher `keras.Model` or a `darn.Distillation`:
            the training between pruning steps also learns from the
            teacher's outputs (by default the model as given, frozen).
            For the methods that fine-tune between fits (the criterion
            pruners). Defaults to `None`.
        **options: the method's own options.

    Returns:
        A `Result`.

    Raises:
        ValueError: for an unknown method, a method that acts during fit
            only, a target or option the method does not support, or `x`,
            `y` or `validation_data` whose arrays do not fit the model's
            inputs or each other.

    Example:

    ```python
    result = darn.resize(model, "taylor2", darn.Target(fraction=0.3),
                         validation_data=(x_val, y_val))
    print(result.summary())
    ```
    """
    _check_model(model)
    method = get_method(method, **options)
    if not method.acts_between_fits:
        raise ValueError(
            f"Method '{method.name}' acts during fit: call darn.prepare(model, "
            f"'{method.name}', ...) and pass the callback to model.fit. Methods that act "
            f"between fits: {_names_where(lambda m: m.acts_between_fits)}."
        )
    target = Target.get(target)
    target.check_supported(method.name, method.resize_amounts, method.resize_requires_amount)
    target.check_model(model)
    check_inputs(model, "x", x)
    check_examples("x", x, y)
    check_validation_data(model, validation_data)
    distillation = None if distill is None else Distillation.get(distill)
    if distillation is not None and not method.distills_between_fits:
        raise ValueError(
            f"Method '{method.name}' does not distill between fits. Methods that do: "
            f"{_names_where(lambda m: m.distills_between_fits)}. Received: distill={distill!r}"
        )
    if schedule is not None:
        schedule = Schedule.get(schedule)
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(
            "Received an invalid value for `verbose`, expected 0 (silent) or 1 (progress). "
            f"Received: verbose={verbose!r}"
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(
            "Received an invalid value for `epochs`, expected a non-negative integer. "
            f"Received: epochs={epochs!r}"
        )
    extra = {} if distillation is None else {"distillation": distillation}
    result = method.resize(
        model, target, x=x, y=y, validation_data=validation_data, epochs=epochs,
        schedule=schedule, verbose=verbose, **extra,
    )
    if not isinstance(result, Result):
        raise TypeError(
            f"Method '{method.name}' returned {type(result).__name__} from resize; "
            "a Method's resize must return a keras_darn.Result."
        )
    result.method = result.method or method.name
    result.target = result.target or target
    result.model = unfold_blocks(result.model)
    return result

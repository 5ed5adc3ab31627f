"""Argument checks shared by keras_darn's public functions and callbacks.

Besides the checks of single arguments, the data given to the front door is
checked against the model before anything trains: arrays (NumPy arrays,
tensors: anything with a `shape`) against the model's inputs, the rank and
every size the input fixes (the batch axis and `None` sizes are free). A
list or tuple feeds a model of as many inputs, in order; a dict feeds them by
name. Datasets and generators are not looked into (Keras reads them lazily).
"""

import numpy as np


def check_positive_int(value, name):
    """Raises `ValueError` naming `name` unless `value` is an integer >= 1.

    Python and NumPy integers are accepted; booleans and floats are not.

    Args:
        value: the value received.
        name: the argument's name as the caller spells it, for the message.

    Raises:
        ValueError: if `value` is not an integer >= 1.

    Example:

    >>> check_positive_int(3, "epochs")
    >>> check_positive_int(0, "epochs")
    Traceback (most recent call last):
    ...
    ValueError: Received an invalid value for `epochs`, expected a positive integer. Received: epochs=0
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a positive integer. "
            f"Received: {name}={value!r}"
        )


def check_bool(value, name):
    """Raises `ValueError` naming `name` unless `value` is `True` or `False` (NumPy's too).

    Example:

    >>> check_bool(True, "shrink")
    >>> check_bool("yes", "shrink")
    Traceback (most recent call last):
    ...
    ValueError: Received an invalid value for `shrink`, expected True or False. Received: shrink='yes'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected True or False. "
            f"Received: {name}={value!r}"
        )


def check_one_of(value, name, allowed):
    """Raises `ValueError` naming `name` unless `value` is one of `allowed`.

    Args:
        value: the value received.
        name: the argument's name as the caller spells it, for the message.
        allowed: the accepted values (a tuple, shown in the message).

    Raises:
        ValueError: if `value` is not in `allowed`.

    Example:

    >>> check_one_of("std", "mode", ("fraction", "std"))
    >>> check_one_of("global", "mode", ("fraction", "std"))
    Traceback (most recent call last):
    ...
    ValueError: Received an invalid value for `mode`, expected one of ('fraction', 'std'). Received: mode='global'
    """
    if value not in allowed:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected one of {allowed}. "
            f"Received: {name}={value!r}"
        )


def check_layer_names(value, name, allow_none=False):
    """Raises a `ValueError` unless `value` is a list of layer names (strings).

    Args:
        value: the value received.
        name: the argument's name, for the message.
        allow_none: whether `None` is accepted. Defaults to `False`.

    Example:

    >>> check_layer_names("dense", "exclude")
    Traceback (most recent call last):
    ValueError: Received an invalid value for `exclude`, expected a list of layer names. Received: exclude='dense'
    """
    if value is None and allow_none:
        return
    if value is None or isinstance(value, str) or not all(isinstance(n, str) for n in value):
        expected = "a list of layer names" + (" or None" if allow_none else "")
        raise ValueError(
            f"Received an invalid value for `{name}`, expected {expected}. "
            f"Received: {name}={value!r}"
        )


def _shape(value):
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(shape)


def _fits(shape, expected):
    """Whether an array of `shape` feeds an input of `expected` shape (batch axis first)."""
    # Keras adds or drops a last axis of size 1 itself.
    if len(shape) == len(expected) - 1 and expected[-1] == 1:
        shape = shape + (1,)
    elif len(shape) == len(expected) + 1 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != len(expected):
        return False
    return all(e is None or s is None or int(s) == int(e) for s, e in zip(shape[1:], expected[1:]))


def _pairs(model, x):
    """`[(input name, input shape, array)]` that `x` feeds, or `None` where `x` is not arrays."""
    inputs = model.inputs
    if isinstance(x, dict):
        # A model built on a dict of inputs is fed by its keys, else by input names.
        struct = getattr(model, "_inputs_struct", None)
        by_name = dict(struct) if isinstance(struct, dict) else {t.name: t for t in inputs}
        if not set(x) <= set(by_name):
            return [(key, None, x[key]) for key in x if key not in by_name]
        return [(key, tuple(by_name[key].shape), x[key]) for key in x]
    if isinstance(x, (list, tuple)):
        if len(inputs) == 1 or len(x) != len(inputs):
            return None
        return [(t.name, tuple(t.shape), value) for t, value in zip(inputs, x)]
    if _shape(x) is None or len(inputs) != 1:
        return None
    return [(inputs[0].name, tuple(inputs[0].shape), x)]


def check_inputs(model, argument, x):
    """Raises a `ValueError` naming `argument` when the arrays of `x` cannot feed `model`.

    Args:
        model: a built `keras.Model`.
        argument: the name of the argument `x` came in, for the message.
        x: the inputs (arrays, a list or dict of arrays, or anything else,
            which is not checked).
    """
    if x is None or not getattr(model, "inputs", None):
        return
    pairs = _pairs(model, x)
    if pairs is None:
        return
    struct = getattr(model, "_inputs_struct", None)
    expected = list(struct) if isinstance(struct, dict) else [t.name for t in model.inputs]
    for name, shape, value in pairs:
        received = _shape(value)
        if shape is None:
            raise ValueError(
                f"Received an invalid value for `{argument}`: the key {name!r} is not an input "
                f"of model '{model.name}'; its inputs are {sorted(expected)}."
            )
        if received is not None and not _fits(received, shape):
            which = f" for input '{name}'" if len(expected) > 1 else ""
            raise ValueError(
                f"Received an invalid value for `{argument}`: its inputs{which} have shape "
                f"{received}, but model '{model.name}' takes inputs of shape {shape} "
                "(the first axis is the batch)."
            )


def check_examples(argument, x, y):
    """Raises when `x` and `y` (arrays) hold different numbers of examples."""
    x_shape, y_shape = _shape(x), _shape(y)
    if x_shape and y_shape and x_shape[0] is not None and y_shape[0] is not None:
        if int(x_shape[0]) != int(y_shape[0]):
            raise ValueError(
                f"Received an invalid value for `{argument}`: {int(x_shape[0])} inputs but "
                f"{int(y_shape[0])} targets; they must hold the same number of examples."
            )


def check_validation_data(model, validation_data):
    """Checks `validation_data` (`x`, or a tuple `(x, y)` / `(x, y, sample_weight)`, as in
    Keras) against `model`."""
    if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
        x, y = validation_data[0], validation_data[1]
        check_inputs(model, "validation_data", x)
        check_examples("validation_data", x, y)
    else:
        check_inputs(model, "validation_data", validation_data)

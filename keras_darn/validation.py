"""Argument checks shared by keras_darn's public functions and callbacks."""

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

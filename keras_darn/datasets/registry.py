"""Loading a dataset by name."""

from keras_darn.datasets.digits import load_digits
from keras_darn.datasets.fashion_mnist import load_fashion_mnist

_LOADERS = {
    "digits": load_digits,
    "fashion_mnist": load_fashion_mnist,
}


def load(name, **kwargs):
    """Loads a dataset by name.

    Args:
        name: one of `"digits"` and `"fashion_mnist"`.
        **kwargs: passed to the dataset's loader (`load_digits` or
            `load_fashion_mnist`).

    Returns:
        What the loader returns: `((x_train, y_train), (x_test, y_test))` with
        its default arguments.

    Raises:
        ValueError: if `name` is not a known dataset.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load("digits")
    """
    if name not in _LOADERS:
        raise ValueError(
            f"Received an unknown dataset name; expected one of "
            f"{sorted(_LOADERS)}. Received: name={name!r}"
        )
    return _LOADERS[name](**kwargs)


def names():
    """Returns the names `load` accepts, sorted."""
    return sorted(_LOADERS)

"""Small helpers that turn loaded datasets into model inputs."""

import numpy as np


def check_fraction(name, value):
    """Raises `ValueError` unless `value` is a number in the open interval (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        0.0 < value < 1.0
    ):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a number in "
            f"(0, 1). Received: {name}={value!r}"
        )


def subset(x, y, num_samples, seed=0):
    """Draws a seeded, class-stratified subset of a labelled dataset.

    Args:
        x: array of examples, first axis indexing examples.
        y: integer labels of shape `(len(x),)`.
        num_samples: number of examples to keep; at least the number of
            classes. When it is `len(x)` or more, `x` and `y` are returned
            unchanged.
        seed: seed of the draw. Defaults to `0`.

    Returns:
        `(x_subset, y_subset)` with `num_samples` examples whose class
        proportions match `y`'s (up to rounding), in a seeded random order.

    Raises:
        ValueError: if `num_samples` is not a positive integer, is smaller
            than the number of classes, or `x` and `y` differ in length.

    Example:

    >>> (x_train, y_train), _ = load_fashion_mnist()
    >>> x_small, y_small = subset(x_train, y_train, 5000)
    >>> x_small.shape
    (5000, 28, 28)
    """
    from sklearn.model_selection import train_test_split

    if isinstance(num_samples, bool) or not isinstance(
        num_samples, (int, np.integer)
    ) or num_samples <= 0:
        raise ValueError(
            "Received an invalid value for `num_samples`, expected a positive "
            f"integer. Received: num_samples={num_samples!r}"
        )
    if len(x) != len(y):
        raise ValueError(
            "Expected `x` and `y` of the same length. "
            f"Received: len(x)={len(x)}, len(y)={len(y)}"
        )
    if num_samples >= len(x):
        return x, y
    num_classes = len(np.unique(y))
    if num_samples < num_classes:
        raise ValueError(
            f"A stratified subset needs at least one example of each of the "
            f"{num_classes} classes. Received: num_samples={num_samples}"
        )
    x_subset, _, y_subset, _ = train_test_split(
        x, y, train_size=int(num_samples), stratify=y, random_state=seed
    )
    return x_subset, y_subset


def to_float_images(x):
    """Scales `uint8` images to `float32` in [0, 1] with a trailing channel axis.

    Args:
        x: `uint8` images of shape `(n, height, width)` (a channel axis is
            added) or `(n, height, width, channels)` (kept).

    Returns:
        A `float32` array of shape `(n, height, width, channels)`, `x / 255`.

    Raises:
        ValueError: if `x` is not 3- or 4-dimensional.

    Example:

    >>> to_float_images(np.full((2, 8, 8), 255, "uint8")).shape
    (2, 8, 8, 1)
    """
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    elif x.ndim != 4:
        raise ValueError(
            "Expected images of shape (n, height, width) or "
            f"(n, height, width, channels). Received: x.shape={x.shape}"
        )
    return x.astype("float32") / 255.0


def to_float_vectors(x):
    """Scales `uint8` images to flat `float32` vectors in [0, 1] (for MLPs).

    Args:
        x: `uint8` images of shape `(n, ...)`, at least 2-dimensional.

    Returns:
        A `float32` array of shape `(n, features)`, `x / 255`, each example
        flattened in row-major order.

    Raises:
        ValueError: if `x` has fewer than 2 dimensions.

    Example:

    >>> to_float_vectors(np.full((2, 8, 8), 255, "uint8")).shape
    (2, 64)
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            "Expected images of shape (n, ...) with at least 2 dimensions. "
            f"Received: x.shape={x.shape}"
        )
    return x.reshape(len(x), -1).astype("float32") / 255.0

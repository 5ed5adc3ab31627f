"""scikit-learn's 8x8 handwritten digits, split like a Keras dataset."""

import numpy as np

from keras_darn.datasets.preprocessing import check_fraction


def load_digits(test_fraction=0.25, seed=0, split=True):
    """Loads scikit-learn's 1,797 handwritten 8x8 digits.

    The data ships inside scikit-learn, so this works offline. Pixel values
    are rescaled from scikit-learn's 0..16 to `uint8` 0..255
    (`round(v * 255 / 16)`), so that every loader in `keras_darn.datasets`
    returns images on the same scale.

    With the defaults the split is stratified by class and seeded: 1,347
    training and 450 test examples, the same on every call
    (`sklearn.model_selection.train_test_split(test_size=0.25, stratify=y,
    random_state=0)`).

    Args:
        test_fraction: fraction of the examples in the test split, in (0, 1).
            Defaults to `0.25`.
        seed: seed of the stratified split. Defaults to `0`.
        split: whether to split. When `False`, all 1,797 examples are returned
            as one `(x, y)` pair in scikit-learn's order, and `test_fraction`
            and `seed` are ignored. Defaults to `True`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, or `(x, y)` when `split` is
        `False`: `uint8` images of shape `(n, 8, 8)` and `uint8` labels in 0..9
        of shape `(n,)`.

    Raises:
        ValueError: if `test_fraction` is not in (0, 1).

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape, x_test.shape
    ((1347, 8, 8), (450, 8, 8))
    >>> x, y = load_digits(split=False)
    >>> x.shape
    (1797, 8, 8)
    """
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    digits = datasets.load_digits()
    x = np.round(digits.images * (255.0 / 16.0)).astype("uint8")
    y = digits.target.astype("uint8")
    if not split:
        return x, y
    check_fraction("test_fraction", test_fraction)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    return (x_train, y_train), (x_test, y_test)

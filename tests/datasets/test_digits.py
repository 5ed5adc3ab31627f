"""Tests for `load_digits`."""

import numpy as np
import pytest
from sklearn import datasets as sklearn_datasets

from keras_darn.datasets import load_digits


def rows(x, y):
    """The examples as a sorted list of (label, pixel bytes), for set comparisons."""
    return sorted(zip(y.tolist(), (image.tobytes() for image in x)))


def test_default_split_shapes_and_scale():
    (x_train, y_train), (x_test, y_test) = load_digits()
    assert x_train.shape == (1347, 8, 8) and x_test.shape == (450, 8, 8)
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
    assert x_train.max() == 255 and x_train.min() == 0
    allowed = np.round(np.arange(17) * 255 / 16).astype("uint8")
    assert set(np.unique(x_train)) <= set(allowed.tolist())
    assert set(np.unique(y_test).tolist()) == set(range(10))


def test_all_data_matches_scikit_learn():
    x, y = load_digits(split=False)
    reference = sklearn_datasets.load_digits()
    assert x.shape == (1797, 8, 8)
    np.testing.assert_array_equal(y, reference.target)
    np.testing.assert_array_equal(x, np.round(reference.images * 255 / 16))


def test_split_is_a_stratified_partition_of_all_data():
    (x_train, y_train), (x_test, y_test) = load_digits()
    x, y = load_digits(split=False)
    assert rows(np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])) == rows(x, y)
    class_counts = np.bincount(y)
    test_counts = np.bincount(y_test, minlength=10)
    assert np.all(np.abs(test_counts - 0.25 * class_counts) <= 1), test_counts


def test_split_is_seeded():
    (x_a, y_a), _ = load_digits()
    (x_b, y_b), _ = load_digits()
    (x_c, _), _ = load_digits(seed=1)
    np.testing.assert_array_equal(x_a, x_b)
    np.testing.assert_array_equal(y_a, y_b)
    assert not np.array_equal(x_a, x_c)


def test_test_fraction():
    (x_train, _), (x_test, _) = load_digits(test_fraction=0.5)
    assert abs(len(x_test) - 1797 / 2) <= 1
    assert len(x_train) + len(x_test) == 1797


@pytest.mark.parametrize("test_fraction", [0, 1, -0.1, 1.5, "0.2", True, None])
def test_invalid_test_fraction_raises(test_fraction):
    with pytest.raises(ValueError, match=f"test_fraction={test_fraction!r}"):
        load_digits(test_fraction=test_fraction)

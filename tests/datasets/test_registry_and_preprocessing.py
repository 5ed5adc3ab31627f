"""Tests for `load`, `subset`, `to_float_images` and `to_float_vectors`."""

import numpy as np
import pytest

from keras_darn import datasets
from keras_darn.datasets import fashion_mnist
from keras_darn.datasets import load
from keras_darn.datasets import load_digits
from keras_darn.datasets import subset
from keras_darn.datasets import to_float_images
from keras_darn.datasets import to_float_vectors
from keras_darn.datasets import write_idx


def test_load_by_name_passes_arguments_on():
    (x_named, y_named), _ = load("digits", seed=3, test_fraction=0.5)
    (x_direct, y_direct), _ = load_digits(seed=3, test_fraction=0.5)
    np.testing.assert_array_equal(x_named, x_direct)
    np.testing.assert_array_equal(y_named, y_direct)


def test_load_fashion_mnist_by_name(tmp_path):
    for stem, shape in [
        ("train-images-idx3-ubyte", (2, 28, 28)),
        ("train-labels-idx1-ubyte", (2,)),
        ("t10k-images-idx3-ubyte", (1, 28, 28)),
        ("t10k-labels-idx1-ubyte", (1,)),
    ]:
        write_idx(tmp_path / stem, np.ones(shape, "uint8"))
    (x_train, _), (x_test, _) = load("fashion_mnist", data_dir=tmp_path)
    assert x_train.shape == (2, 28, 28) and x_test.shape == (1, 28, 28)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"\['digits', 'fashion_mnist'\]"):
        load("mnist")
    assert datasets.names() == ["digits", "fashion_mnist"]
    assert fashion_mnist.DATA_DIR_ENV == datasets.DATA_DIR_ENV == "KERAS_DARN_DATA_DIR"


def labelled_data(n=200, num_classes=4):
    y = np.arange(n) % num_classes
    # Every example carries its index and label, so pairing can be checked.
    x = np.stack([np.arange(n), y], axis=1)
    return x, y


def test_subset_is_stratified_seeded_and_keeps_pairs():
    x, y = labelled_data()
    x_small, y_small = subset(x, y, 40, seed=0)
    assert x_small.shape == (40, 2) and y_small.shape == (40,)
    np.testing.assert_array_equal(np.bincount(y_small), [10, 10, 10, 10])
    np.testing.assert_array_equal(x_small[:, 1], y_small)
    assert len(np.unique(x_small[:, 0])) == 40
    x_again, _ = subset(x, y, 40, seed=0)
    x_other, _ = subset(x, y, 40, seed=1)
    np.testing.assert_array_equal(x_small, x_again)
    assert not np.array_equal(np.sort(x_small[:, 0]), np.sort(x_other[:, 0]))


def test_subset_of_everything_is_the_data():
    x, y = labelled_data()
    x_all, y_all = subset(x, y, 500)
    assert x_all is x and y_all is y


@pytest.mark.parametrize("num_samples", [0, -3, 2.5, "10", True])
def test_subset_rejects_invalid_sizes(num_samples):
    x, y = labelled_data()
    with pytest.raises(ValueError, match=f"num_samples={num_samples!r}"):
        subset(x, y, num_samples)


def test_subset_rejects_too_few_samples_and_mismatched_lengths():
    x, y = labelled_data()
    with pytest.raises(ValueError, match="4 classes"):
        subset(x, y, 3)
    with pytest.raises(ValueError, match="len\\(y\\)=199"):
        subset(x, y[:-1], 10)


def test_to_float_images():
    images = np.array([[[0, 255], [51, 102]]], dtype="uint8")
    floats = to_float_images(images)
    assert floats.shape == (1, 2, 2, 1) and floats.dtype == np.float32
    np.testing.assert_allclose(floats[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]])
    assert to_float_images(np.zeros((3, 4, 4, 3), "uint8")).shape == (3, 4, 4, 3)
    with pytest.raises(ValueError, match=r"x.shape=\(4, 4\)"):
        to_float_images(np.zeros((4, 4), "uint8"))


def test_to_float_vectors():
    images = np.array([[[0, 255], [51, 102]], [[255, 0], [0, 0]]], dtype="uint8")
    vectors = to_float_vectors(images)
    assert vectors.shape == (2, 4) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[0], [0.0, 1.0, 0.2, 0.4])
    np.testing.assert_allclose(vectors[1], [1.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"x.shape=\(4,\)"):
        to_float_vectors(np.zeros((4,), "uint8"))

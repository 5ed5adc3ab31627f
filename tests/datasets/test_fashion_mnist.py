"""Tests for `load_fashion_mnist`, on tiny IDX files written here."""

import os
import warnings

import numpy as np
import pytest

from keras_darn.datasets import DatasetNotFoundError
from keras_darn.datasets import fashion_mnist
from keras_darn.datasets import load_fashion_mnist
from keras_darn.datasets import write_idx

NUM_TRAIN, NUM_TEST = 6, 4
# The fixture below replaces these; the tests that need the real ones use these.
_REAL_DEBIAN_DIR = fashion_mnist.DEBIAN_DIR
_REAL_LOAD_FROM_TFDS = fashion_mnist._load_from_tfds


def write_fake_fashion_mnist(directory, fill=0, compressed=True):
    """Writes the four Fashion-MNIST files with tiny, recognisable contents."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(fill)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (NUM_TRAIN, 28, 28)),
        "train-labels-idx1-ubyte": np.full(NUM_TRAIN, fill),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (NUM_TEST, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(NUM_TEST),
    }
    suffix = ".gz" if compressed else ""
    for stem, array in arrays.items():
        write_idx(directory / (stem + suffix), array.astype("uint8"))
    return arrays


@pytest.fixture(autouse=True)
def no_system_data(tmp_path, monkeypatch):
    """Hides the real Debian files and the environment variable from tests."""
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path / "debian"))
    monkeypatch.delenv(fashion_mnist.DATA_DIR_ENV, raising=False)

    def tfds_must_not_run():
        raise AssertionError("tensorflow_datasets was called")

    monkeypatch.setattr(fashion_mnist, "_load_from_tfds", tfds_must_not_run)


def assert_matches(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    assert x_train.shape == (NUM_TRAIN, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (NUM_TRAIN,) and y_train.dtype == np.uint8
    assert x_test.shape == (NUM_TEST, 28, 28) and y_test.shape == (NUM_TEST,)
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(x_test, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])


@pytest.mark.parametrize("compressed", [True, False])
def test_loads_from_data_dir(tmp_path, compressed):
    arrays = write_fake_fashion_mnist(tmp_path / "data", compressed=compressed)
    assert_matches(load_fashion_mnist(data_dir=tmp_path / "data"), arrays)


def test_loads_from_fashion_mnist_subdirectory(tmp_path):
    arrays = write_fake_fashion_mnist(tmp_path / "root" / "fashion-mnist")
    assert_matches(load_fashion_mnist(data_dir=str(tmp_path / "root")), arrays)


def test_loads_from_environment_variable(tmp_path, monkeypatch):
    arrays = write_fake_fashion_mnist(tmp_path / "env")
    monkeypatch.setenv("KERAS_DARN_DATA_DIR", str(tmp_path / "env"))
    assert_matches(load_fashion_mnist(), arrays)


def test_loads_from_debian_directory(tmp_path):
    arrays = write_fake_fashion_mnist(tmp_path / "debian")
    assert_matches(load_fashion_mnist(), arrays)


def test_search_order_is_argument_then_environment_then_debian(
    tmp_path, monkeypatch
):
    from_argument = write_fake_fashion_mnist(tmp_path / "argument", fill=1)
    from_env = write_fake_fashion_mnist(tmp_path / "env", fill=2)
    from_debian = write_fake_fashion_mnist(tmp_path / "debian", fill=3)
    monkeypatch.setenv("KERAS_DARN_DATA_DIR", str(tmp_path / "env"))
    assert_matches(load_fashion_mnist(tmp_path / "argument"), from_argument)
    assert_matches(load_fashion_mnist(), from_env)
    monkeypatch.delenv("KERAS_DARN_DATA_DIR")
    assert_matches(load_fashion_mnist(), from_debian)


def test_incomplete_data_dir_falls_back_with_a_warning(tmp_path, monkeypatch):
    write_fake_fashion_mnist(tmp_path / "partial")
    os.remove(tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz")
    arrays = write_fake_fashion_mnist(tmp_path / "env", fill=2)
    monkeypatch.setenv("KERAS_DARN_DATA_DIR", str(tmp_path / "env"))
    with pytest.warns(UserWarning, match="not in data_dir"):
        loaded = load_fashion_mnist(tmp_path / "partial")
    assert_matches(loaded, arrays)


def test_complete_data_dir_gives_no_warning(tmp_path):
    write_fake_fashion_mnist(tmp_path / "data")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_fashion_mnist(tmp_path / "data")


def test_error_names_every_place_tried_and_the_fixes(tmp_path, monkeypatch):
    write_fake_fashion_mnist(tmp_path / "partial")
    os.remove(tmp_path / "partial" / "train-images-idx3-ubyte.gz")
    monkeypatch.setenv("KERAS_DARN_DATA_DIR", str(tmp_path / "empty_env"))

    def offline():
        raise ConnectionError("no route to storage.googleapis.com")

    monkeypatch.setattr(fashion_mnist, "_load_from_tfds", offline)
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(data_dir=tmp_path / "partial")
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for expected in [
        str(tmp_path / "partial"),
        "missing train-images-idx3-ubyte[.gz]",
        str(tmp_path / "empty_env"),
        "KERAS_DARN_DATA_DIR",
        str(tmp_path / "debian"),
        'tensorflow_datasets.load("fashion_mnist")',
        "ConnectionError: no route to storage.googleapis.com",
        "apt-get install -y dataset-fashion-mnist",
        "go online",
    ]:
        assert expected in message, (expected, message)
    # The partial directory lacks only the one file that was removed.
    assert "partial (missing train-images-idx3-ubyte[.gz])" in message


def test_error_says_what_was_not_given(monkeypatch):
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(allow_download=False)
    message = str(info.value)
    assert "data_dir argument: not given" in message
    assert "$KERAS_DARN_DATA_DIR: not set" in message
    assert "not tried (allow_download=False)" in message


def test_tensorflow_datasets_result_is_converted(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (3, 28, 28, 1)).astype("uint8"), np.arange(3))
    test = (rng.integers(0, 256, (2, 28, 28, 1)).astype("uint8"), np.arange(2))
    calls = []

    def fake_load(name, **kwargs):
        calls.append((name, kwargs))
        return [train, test]

    monkeypatch.setattr(tfds, "builder", lambda name: PreparedBuilder(True))
    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(tfds, "as_numpy", lambda tree: tree)
    # Undo the fixture's guard: this test runs the real conversion code.
    monkeypatch.setattr(fashion_mnist, "_load_from_tfds", _REAL_LOAD_FROM_TFDS)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert calls and calls[0][0] == "fashion_mnist"
    assert x_train.shape == (3, 28, 28) and x_train.dtype == np.uint8
    assert y_train.dtype == np.uint8 and x_test.shape == (2, 28, 28)
    np.testing.assert_array_equal(x_train, train[0][..., 0])
    np.testing.assert_array_equal(y_test, [0, 1])


class PreparedBuilder:
    """Stands in for `tfds.builder(...)`: says whether the data is on disk."""

    def __init__(self, prepared):
        self.prepared = prepared

    def is_prepared(self):
        return self.prepared


def test_offline_tensorflow_datasets_fails_fast(monkeypatch):
    import urllib.error
    import urllib.request

    import tensorflow_datasets as tfds

    requested = []

    def unreachable(url, timeout):
        requested.append((url, timeout))
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    def load_must_not_run(*args, **kwargs):
        raise AssertionError("tfds.load would retry the download for minutes")

    monkeypatch.setattr(tfds, "builder", lambda name: PreparedBuilder(False))
    monkeypatch.setattr(tfds, "load", load_must_not_run)
    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    monkeypatch.setattr(fashion_mnist, "_load_from_tfds", _REAL_LOAD_FROM_TFDS)
    with pytest.raises(DatasetNotFoundError, match="ConnectionError: cannot reach http"):
        load_fashion_mnist()
    assert requested and requested[0][1] <= 10


def test_invalid_file_is_an_error_not_a_fallback(tmp_path):
    write_fake_fashion_mnist(tmp_path / "debian")
    write_fake_fashion_mnist(tmp_path / "broken")
    (tmp_path / "broken" / "train-labels-idx1-ubyte.gz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not gzip-compressed"):
        load_fashion_mnist(tmp_path / "broken")
    write_idx(tmp_path / "broken" / "train-labels-idx1-ubyte.gz", np.zeros(6, "u1"))
    (tmp_path / "broken" / "t10k-images-idx3-ubyte.gz").unlink()
    (tmp_path / "broken" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x01junk")
    with pytest.raises(ValueError, match="magic"):
        load_fashion_mnist(tmp_path / "broken")


def test_mismatched_images_and_labels_raise(tmp_path):
    write_fake_fashion_mnist(tmp_path / "data")
    write_idx(tmp_path / "data" / "t10k-labels-idx1-ubyte.gz", np.zeros(3, "uint8"))
    with pytest.raises(ValueError, match=r"labels.shape=\(3,\)"):
        load_fashion_mnist(tmp_path / "data")


@pytest.mark.skipif(
    not os.path.isdir(fashion_mnist.DEBIAN_DIR),
    reason=f"{fashion_mnist.DEBIAN_DIR} is absent: install the Debian package "
    "dataset-fashion-mnist to run this test on the real files",
)
def test_real_debian_files_match_keras_layout(monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", _REAL_DEBIAN_DIR)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(allow_download=False)
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert y_train.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    assert x_train.max() == 255 and x_train.min() == 0

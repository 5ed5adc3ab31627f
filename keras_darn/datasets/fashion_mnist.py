"""Fashion-MNIST from local IDX files, with `tensorflow_datasets` as the online path."""

import os
import warnings

import numpy as np

from keras_darn.datasets.idx import read_idx

DATA_DIR_ENV = "KERAS_DARN_DATA_DIR"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
SUBDIRECTORY = "fashion-mnist"
FILE_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_DATA_DIR_ORIGIN = "data_dir argument"
_DEBIAN_ORIGIN = "Debian package dataset-fashion-mnist"


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset is found neither on disk nor online."""


def load_fashion_mnist(data_dir=None, allow_download=True):
    """Loads Fashion-MNIST, shaped like `keras.datasets.fashion_mnist.load_data()`.

    The four original IDX files (`train-images-idx3-ubyte`,
    `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
    `t10k-labels-idx1-ubyte`, each gzipped with `.gz` or plain) are looked for,
    in order, in:

    1. `data_dir`, or its `fashion-mnist` subdirectory;
    2. the directory named by the environment variable `KERAS_DARN_DATA_DIR`,
       or its `fashion-mnist` subdirectory;
    3. `/usr/share/datasets/fashion-mnist`, where the Debian package
       `dataset-fashion-mnist` installs them.

    When none holds all four, `tensorflow_datasets.load("fashion_mnist")` is
    tried, which downloads the data when online (or reads its own cache).

    Args:
        data_dir: directory holding the IDX files. Defaults to `None` (look
            only in the other places).
        allow_download: whether to try `tensorflow_datasets` when no local
            files are found. Defaults to `True`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: `uint8` images of shape
        `(60000, 28, 28)` and `(10000, 28, 28)` with values in 0..255, and
        `uint8` labels in 0..9 of shape `(60000,)` and `(10000,)`.

    Raises:
        DatasetNotFoundError: (a `FileNotFoundError`) if nothing works; its
            message names every place tried and how to make the data
            available.
        ValueError: if a file found is not a valid IDX file, or images and
            labels do not match.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    >>> x_train.shape, y_test.shape
    ((60000, 28, 28), (10000,))
    """
    tried = []
    for origin, directory in _search_directories(data_dir):
        if directory is None:
            tried.append(origin)
            continue
        candidates = [directory]
        if origin != _DEBIAN_ORIGIN:
            candidates.append(os.path.join(directory, SUBDIRECTORY))
        for candidate in candidates:
            paths, missing = _find_files(candidate)
            if not missing:
                if data_dir is not None and origin != _DATA_DIR_ORIGIN:
                    warnings.warn(
                        f"Fashion-MNIST is not in data_dir={data_dir!r}; "
                        f"using the files in {candidate} instead.",
                        stacklevel=2,
                    )
                return _read_split(paths)
            tried.append(f"{origin}: {candidate} (missing {', '.join(missing)})")
    if allow_download:
        try:
            return _load_from_tfds()
        except Exception as error:  # Offline, tfds failures vary in type.
            message = str(error).strip().splitlines()
            tried.append(
                'tensorflow_datasets.load("fashion_mnist"): failed with '
                f"{type(error).__name__}: {message[0] if message else ''}"
            )
    else:
        tried.append(
            'tensorflow_datasets.load("fashion_mnist"): not tried '
            "(allow_download=False)"
        )
    raise DatasetNotFoundError(_not_found_message(tried))


def _search_directories(data_dir):
    """Yields `(origin, directory or None)` in search order."""
    if data_dir is None:
        yield "data_dir argument: not given", None
    else:
        yield _DATA_DIR_ORIGIN, os.fspath(data_dir)
    from_env = os.environ.get(DATA_DIR_ENV, "")
    if from_env:
        yield f"${DATA_DIR_ENV}", from_env
    else:
        yield f"${DATA_DIR_ENV}: not set", None
    yield _DEBIAN_ORIGIN, DEBIAN_DIR


def _find_files(directory):
    """Returns the paths of the four files found and the names missing."""
    paths, missing = [], []
    for stem in FILE_STEMS:
        for name in (stem + ".gz", stem):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                paths.append(path)
                break
        else:
            missing.append(stem + "[.gz]")
    return paths, missing


def _read_split(paths):
    x_train, y_train, x_test, y_test = (read_idx(path) for path in paths)
    for images, labels, images_path in (
        (x_train, y_train, paths[0]),
        (x_test, y_test, paths[2]),
    ):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"Fashion-MNIST files in {os.path.dirname(images_path)} do "
                "not match: expected images of shape (n, height, width) and "
                f"labels of shape (n,). Received: images.shape={images.shape}, "
                f"labels.shape={labels.shape}"
            )
    return (x_train, y_train), (x_test, y_test)


def _load_from_tfds():
    import tensorflow_datasets as tfds

    if not tfds.builder("fashion_mnist").is_prepared():
        # Offline, tfds retries the download for minutes before it gives up;
        # one request with a short timeout fails in milliseconds instead.
        _require_reachable(tfds.image_classification.FashionMNIST.URL)
    train, test = tfds.as_numpy(
        tfds.load(
            "fashion_mnist",
            split=["train", "test"],
            batch_size=-1,
            as_supervised=True,
        )
    )
    return tuple(
        (np.squeeze(images, axis=-1).astype("uint8"), labels.astype("uint8"))
        for images, labels in (train, test)
    )


def _require_reachable(url, timeout=5.0):
    """Raises `ConnectionError` unless an HTTP request to `url` gets an answer."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # The server answered; only its status was not 2xx.
    except (OSError, ValueError) as error:
        raise ConnectionError(f"cannot reach {url} ({error})") from error


def _not_found_message(tried):
    places = "\n".join(f"  {i}. {place}" for i, place in enumerate(tried, 1))
    files = ", ".join(stem + ".gz" for stem in FILE_STEMS)
    return (
        "Fashion-MNIST was not found. Places tried, in order:\n"
        f"{places}\n"
        "To make it available, do one of:\n"
        "  - install the Debian package (as root): apt-get update && "
        "apt-get install -y dataset-fashion-mnist\n"
        f"  - put the four IDX files ({files}) in a directory and pass it as "
        f"data_dir or set {DATA_DIR_ENV} to it\n"
        "  - go online, so that tensorflow_datasets can download the data\n"
        "Or use keras_darn.datasets.load_digits(), which needs no files."
    )

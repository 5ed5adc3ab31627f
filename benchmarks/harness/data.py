"""Data of the benchmarks: Fashion-MNIST and digits from `keras_darn.datasets`, as floats in [0, 1]."""


def load_fashion(num_train, num_test, seed=0, data_dir=None, images=True):
    """Stratified subsets of Fashion-MNIST, as floats in [0, 1].

    Args:
        num_train: training examples (all if `None` or more than there are).
        num_test: test examples (all if `None` or more than there are).
        seed: seed of the subsets. Defaults to `0`.
        data_dir: directory with the IDX files. Defaults to `None` (the
            places `keras_darn.datasets.load_fashion_mnist` searches).
        images: `True` for `(n, 28, 28, 1)` images, `False` for flat vectors
            of 784. Defaults to `True`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`.
    """
    from keras_darn import datasets

    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(data_dir)
    train = _subset(x_train, y_train, num_train, seed)
    test = _subset(x_test, y_test, num_test, seed)
    convert = datasets.to_float_images if images else datasets.to_float_vectors
    return (convert(train[0]), train[1]), (convert(test[0]), test[1])


def load_fashion_split(num_train, num_val, num_test, seed=0, data_dir=None, images=True):
    """Fashion-MNIST with a validation split held out of the training split.

    One stratified subset of `num_train + num_val` training images (in its
    seeded random order) gives the first `num_train` to training and the
    rest to validation.

    Args:
        num_train: training examples.
        num_val: validation examples, disjoint from the training ones.
        num_test: test examples.
        seed: seed of the subsets. Defaults to `0`.
        data_dir: see `load_fashion`. Defaults to `None`.
        images: see `load_fashion`. Defaults to `True`.

    Returns:
        `((x_train, y_train), (x_val, y_val), (x_test, y_test))`.
    """
    (x_all, y_all), test = load_fashion(num_train + num_val, num_test, seed, data_dir, images)
    return (x_all[:num_train], y_all[:num_train]), (x_all[num_train:], y_all[num_train:]), test


def load_digits(test_fraction=0.25, seed=0, images=True):
    """scikit-learn's 8x8 digits (1,797 images) as floats in [0, 1], split stratified.

    Args:
        test_fraction: share of the test split. Defaults to `0.25`.
        seed: seed of the split. Defaults to `0`.
        images: `True` for `(n, 8, 8, 1)` images, `False` for vectors of 64.
            Defaults to `True`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`.
    """
    from keras_darn import datasets

    (x_train, y_train), (x_test, y_test) = datasets.load_digits(test_fraction=test_fraction, seed=seed)
    convert = datasets.to_float_images if images else datasets.to_float_vectors
    return (convert(x_train), y_train), (convert(x_test), y_test)


def load_images(num_train, num_test, seed=0, data_dir=None, dataset="auto", images=True):
    """Fashion-MNIST, or digits where Fashion-MNIST cannot be had (`dataset="auto"`).

    Args:
        num_train: training examples (Fashion-MNIST; digits keeps its split).
        num_test: test examples (Fashion-MNIST).
        seed: seed of the subsets. Defaults to `0`.
        data_dir: see `load_fashion`. Defaults to `None`.
        dataset: `"auto"`, `"fashion_mnist"` or `"digits"`. Defaults to `"auto"`.
        images: see `load_fashion`. Defaults to `True`.

    Returns:
        `(name, (x_train, y_train), (x_test, y_test))`, `name` being the
        dataset used.

    Raises:
        ValueError: if `dataset` is not one of the three.
        keras_darn.datasets.DatasetNotFoundError: if `dataset="fashion_mnist"`
            and the files cannot be found.
    """
    from keras_darn import datasets

    if dataset not in ("auto", "fashion_mnist", "digits"):
        raise ValueError(
            f"Received an invalid value for `dataset`, expected 'auto', 'fashion_mnist' or 'digits'. "
            f"Received: dataset={dataset!r}")
    if dataset != "digits":
        try:
            return ("fashion_mnist",
                    *load_fashion(num_train, num_test, seed, data_dir, images))
        except datasets.DatasetNotFoundError as error:
            if dataset == "fashion_mnist":
                raise
            print(f"Fashion-MNIST cannot be found ({str(error).splitlines()[0]}); using digits.")
    train, test = load_digits(seed=seed, images=images)
    if num_train is not None and num_train < len(train[0]):
        train = _subset(*train, num_train, seed)
    return "digits", train, test


def _subset(x, y, count, seed):
    from keras_darn import datasets

    if count is None or count >= len(x):
        return x, y
    return datasets.subset(x, y, count, seed=seed)


def as_rgb(x, size):
    """Gray images `(n, h, w, 1)` as `(n, size, size, 3)` (bilinear resize, the channel thrice).

    For `keras.applications` networks, which take three channels and larger
    inputs than Fashion-MNIST's 28x28.
    """
    import keras  # after `harness` has quieted TensorFlow
    import numpy as np

    resized = keras.ops.convert_to_numpy(keras.ops.image.resize(x, (size, size)))
    return np.repeat(resized, 3, axis=-1)

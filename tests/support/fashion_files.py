"""Tiny Fashion-MNIST-shaped IDX files, for running the benchmarks as a user runs them."""

import numpy as np

from keras_darn.datasets import write_idx


def write_fashion(directory, num_train, num_test):
    """Writes random 28x28 images with labels 0-9 in turn as the four IDX files; returns `directory`."""
    rng = np.random.default_rng(0)
    directory.mkdir()
    for stem, count in (("train", num_train), ("t10k", num_test)):
        write_idx(directory / f"{stem}-images-idx3-ubyte",
                  rng.integers(0, 256, (count, 28, 28)).astype("uint8"))
        write_idx(directory / f"{stem}-labels-idx1-ubyte", np.arange(count).astype("uint8") % 10)
    return directory

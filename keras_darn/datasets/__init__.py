"""Offline datasets: Fashion-MNIST from IDX files and scikit-learn's digits."""

from keras_darn.datasets.digits import load_digits
from keras_darn.datasets.fashion_mnist import DATA_DIR_ENV
from keras_darn.datasets.fashion_mnist import DEBIAN_DIR
from keras_darn.datasets.fashion_mnist import DatasetNotFoundError
from keras_darn.datasets.fashion_mnist import load_fashion_mnist
from keras_darn.datasets.idx import read_idx
from keras_darn.datasets.idx import write_idx
from keras_darn.datasets.preprocessing import subset
from keras_darn.datasets.preprocessing import to_float_images
from keras_darn.datasets.preprocessing import to_float_vectors
from keras_darn.datasets.registry import load
from keras_darn.datasets.registry import names

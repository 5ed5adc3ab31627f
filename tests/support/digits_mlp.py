"""The small digits MLP that runs every method in the front-door tests."""

import keras

import keras_darn as darn

L = keras.layers


def digits(n_train=256, n_val=96):
    """`(x, y, x_val, y_val)`: scikit-learn's digits as float vectors in [0, 1]."""
    (x, y), (x_val, y_val) = darn.datasets.load_digits()
    x = x.reshape(len(x), -1).astype("float32") / 255.0
    x_val = x_val.reshape(len(x_val), -1).astype("float32") / 255.0
    return x[:n_train], y[:n_train].astype("int64"), x_val[:n_val], y_val[:n_val].astype("int64")


def digits_mlp(batch_norm=False):
    """64-24-16-10 with ReLU (BatchNormalization after the first layer if asked), seeded."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    h = L.Dense(24, name="hidden1")(inputs)
    if batch_norm:
        h = L.BatchNormalization(name="bn1")(h)
    h = L.ReLU()(h)
    h = L.Dense(16, activation="relu", name="hidden2")(h)
    outputs = L.Dense(10, activation="softmax", name="logits")(h)
    return keras.Model(inputs, outputs)

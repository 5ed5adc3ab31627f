"""Tests of StandoutDense against hand computation in NumPy."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_darn.layers.standout_dense import StandoutDense


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _built_layer(units=4, input_dim=3, **kwargs):
    layer = StandoutDense(units, **kwargs)
    layer.build((None, input_dim))
    rng = np.random.default_rng(0)
    layer.kernel.assign(rng.normal(size=(input_dim, units)).astype("float32"))
    if layer.use_bias:
        layer.bias.assign(rng.normal(size=(units,)).astype("float32") * 0.1)
    if not layer.tied:
        layer.standout_kernel.assign(
            rng.normal(size=(input_dim, units)).astype("float32")
        )
    return layer


def _numpy_forward(layer, x):
    w = layer.kernel.numpy()
    z = x @ w + (layer.bias.numpy() if layer.use_bias else 0.0)
    pi = w if layer.tied else layer.standout_kernel.numpy()
    p = _sigmoid(layer.alpha * (x @ pi) + layer.beta)
    return z, p


X = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_inference_is_expectation(tied, activation):
    layer = _built_layer(tied=tied, activation=activation, alpha=0.7, beta=-0.3)
    z, p = _numpy_forward(layer, X)
    g = np.maximum(z, 0) if activation == "relu" else z
    np.testing.assert_allclose(layer(X).numpy(), p * g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        layer.retention_probability(X).numpy(), p, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("tied", [True, False])
def test_training_output_uses_seeded_bernoulli(tied):
    layer = _built_layer(tied=tied, activation="relu", alpha=1.5, beta=0.2, seed=7)
    z, p = _numpy_forward(layer, X)
    # The same seed gives the same first uniform draw as the layer's.
    uniform = keras.random.uniform(
        p.shape, dtype="float32", seed=keras.random.SeedGenerator(7)
    ).numpy()
    expected = (uniform < p) * np.maximum(z, 0)
    np.testing.assert_allclose(
        layer(X, training=True).numpy(), expected, rtol=1e-5, atol=1e-6
    )


def test_training_mask_frequency_matches_retention():
    layer = _built_layer(units=3, activation="linear", alpha=0.5, beta=0.0, seed=1)
    x = np.tile(X[:1], (4000, 1))
    z, p = _numpy_forward(layer, x[:1])
    kept = layer(x, training=True).numpy() != 0
    np.testing.assert_allclose(kept.mean(axis=0), p[0], atol=0.03)


def test_alpha_zero_is_fixed_dropout():
    layer = _built_layer(alpha=0.0, beta=1.2, activation="linear")
    np.testing.assert_allclose(
        layer.retention_probability(X).numpy(),
        np.full((5, 4), _sigmoid(1.2)),
        rtol=1e-6,
    )


@pytest.mark.parametrize("training", [True, False])
def test_masked_units_output_zero_and_get_no_gradient(training):
    layer = _built_layer(activation="relu", beta=5.0, seed=3)
    layer.set_unit_mask([1, 0, 1, 0])
    assert layer.active_units == 2
    np.testing.assert_array_equal(layer.get_unit_mask(), [1, 0, 1, 0])
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        y = layer(x, training=training)
        loss = tf.reduce_sum(y * np.arange(1.0, 21.0).reshape(5, 4))
    grads = tape.gradient(loss, [layer.kernel, layer.bias])
    y = y.numpy()
    assert np.all(y[:, [1, 3]] == 0.0)
    assert np.any(y[:, [0, 2]] != 0.0)
    np.testing.assert_array_equal(grads[0].numpy()[:, [1, 3]], 0.0)
    np.testing.assert_array_equal(grads[1].numpy()[[1, 3]], 0.0)


@pytest.mark.parametrize("tied", [True, False])
def test_no_gradient_through_retention_into_kernel_or_input(tied):
    layer = _built_layer(tied=tied, activation="relu", alpha=1.0, beta=0.0, seed=5)
    upstream = np.random.default_rng(2).normal(size=(5, 4)).astype("float32")
    x = tf.constant(X)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * upstream)
    z, p = _numpy_forward(layer, X)
    uniform = keras.random.uniform(
        p.shape, dtype="float32", seed=keras.random.SeedGenerator(5)
    ).numpy()
    m = (uniform < p).astype("float32")
    delta = upstream * m * (z > 0)  # d loss / d z with the mask held fixed
    w = layer.kernel.numpy()
    np.testing.assert_allclose(
        tape.gradient(loss, layer.kernel).numpy(), X.T @ delta, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        tape.gradient(loss, x).numpy(), delta @ w.T, rtol=1e-4, atol=1e-5
    )
    if not tied:
        # The separate standout matrix learns through the expectation p * g.
        g = np.maximum(z, 0)
        expected_pi = X.T @ (upstream * g * p * (1 - p) * layer.alpha)
        np.testing.assert_allclose(
            tape.gradient(loss, layer.standout_kernel).numpy(),
            expected_pi,
            rtol=1e-4,
            atol=1e-5,
        )


def test_training_accumulates_retention_only_in_training():
    layer = _built_layer(seed=0)
    layer(X)  # inference: no accumulation
    assert float(layer.retention_count.numpy()) == 0.0
    layer(X, training=True)
    layer(X[:2], training=True)
    _, p = _numpy_forward(layer, X)
    np.testing.assert_allclose(
        layer.retention_sum.numpy(), p.sum(0) + p[:2].sum(0), rtol=1e-5
    )
    assert float(layer.retention_count.numpy()) == 7.0
    np.testing.assert_allclose(
        layer.accumulated_retention(), (p.sum(0) + p[:2].sum(0)) / 7, rtol=1e-5
    )
    layer.reset_retention()
    np.testing.assert_array_equal(layer.accumulated_retention(), 0.0)


def test_nd_inputs():
    layer = StandoutDense(4, seed=0)
    x = np.ones((2, 3, 5), "float32")
    assert layer(x, training=True).shape == (2, 3, 4)
    assert layer.compute_output_shape((2, 3, 5)) == (2, 3, 4)
    assert float(layer.retention_count.numpy()) == 6.0


def test_seeded_reproducibility():
    def draws(seed):
        keras.utils.set_random_seed(11)
        layer = _built_layer(seed=seed, beta=0.0)
        return [layer(X, training=True).numpy() for _ in range(3)]

    first, again, other = draws(3), draws(3), draws(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # fresh draw each call
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_seed_none_is_reproducible_under_global_seed():
    def run():
        keras.utils.set_random_seed(5)
        model = keras.Sequential(
            [keras.Input((3,)), StandoutDense(6, activation="relu")]
        )
        return model(X, training=True).numpy()

    np.testing.assert_array_equal(run(), run())


@pytest.mark.parametrize("tied", [True, False])
def test_keras_file_round_trip(tmp_path, tied):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            StandoutDense(
                6,
                alpha=0.5,
                beta=-1.0,
                activation="relu",
                tied=tied,
                seed=9,
                kernel_regularizer="l2",
                name="standout",
            ),
            keras.layers.Dense(2),
        ]
    )
    model.get_layer("standout").set_unit_mask([1, 1, 0, 1, 0, 1])
    model(X, training=True)
    path = os.path.join(tmp_path, "standout.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    layer = loaded.get_layer("standout")
    assert isinstance(layer, StandoutDense)
    assert layer.get_config() == model.get_layer("standout").get_config()
    np.testing.assert_array_equal(layer.get_unit_mask(), [1, 1, 0, 1, 0, 1])
    assert layer.active_units == 4
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    np.testing.assert_allclose(
        layer.retention_sum.numpy(),
        model.get_layer("standout").retention_sum.numpy(),
    )


def test_config_round_trip():
    layer = StandoutDense(
        5, alpha=2.0, beta=0.5, activation="tanh", tied=False, seed=1, use_bias=False
    )
    clone = StandoutDense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.tied is False and clone.units == 5 and clone.alpha == 2.0


def test_trains_in_fit():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            StandoutDense(8, activation="relu", seed=0),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.SGD(0.05), "mse")
    y = X.sum(axis=1, keepdims=True)
    history = model.fit(X, y, epochs=30, batch_size=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, "units"),
        ({"units": 2.5}, "units"),
        ({"units": 3, "alpha": "big"}, "alpha"),
        ({"units": 3, "beta": float("nan")}, "beta"),
        ({"units": 3, "tied": 1}, "tied"),
        ({"units": 3, "seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StandoutDense(**kwargs)


def test_bad_masks():
    layer = StandoutDense(3)
    with pytest.raises(ValueError, match="not built"):
        layer.set_unit_mask([1, 1, 1])
    layer.build((None, 2))
    with pytest.raises(ValueError, match="shape"):
        layer.set_unit_mask([1, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        layer.set_unit_mask([1, 0.5, 1])

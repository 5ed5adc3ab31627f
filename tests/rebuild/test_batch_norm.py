"""`recalibrate_batch_norm` sets BatchNorm statistics to those of the data, and nothing else."""

import keras
import numpy as np
import pytest

import keras_darn as darn

L = keras.layers
recalibrate = darn.rebuild.recalibrate_batch_norm


def _model(frozen=False):
    inputs = keras.Input((6,))
    hidden = L.Dense(5, name="dense")(inputs)
    norm = L.BatchNormalization(name="norm", momentum=0.9)
    norm.trainable = not frozen
    hidden = L.Dropout(0.5, seed=3, name="dropout")(norm(hidden))
    return keras.Model(inputs, L.Dense(2, name="out")(hidden))


def _data(n=240, shift=3.0):
    return (np.random.default_rng(0).normal(size=(n, 6)) * 2.0 + shift).astype("float32")


def _norm_inputs(model, x):
    return keras.Model(model.inputs, model.get_layer("dense").output).predict(x, verbose=0)


def test_one_pass_sets_the_exact_statistics_of_x():
    model, x = _model(), _data()
    copy = recalibrate(model, x)
    h = _norm_inputs(model, x)
    norm = copy.get_layer("norm")
    np.testing.assert_allclose(norm.moving_mean.numpy(), h.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(), h.var(0), rtol=1e-4, atol=1e-5)
    assert norm.momentum == 0.9


def test_batches_average_their_statistics_weighted_by_size():
    model, x = _model(), _data()
    copy = recalibrate(model, x, batch_size=100)  # batches of 100, 100 and 40
    batches = [_norm_inputs(model, x[i:i + 100]) for i in range(0, 240, 100)]
    sizes = [len(b) for b in batches]
    norm = copy.get_layer("norm")
    np.testing.assert_allclose(norm.moving_mean.numpy(), _norm_inputs(model, x).mean(0),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(),
                               np.average([b.var(0) for b in batches], 0, weights=sizes),
                               rtol=1e-4, atol=1e-5)


def test_model_is_untouched_and_copy_differs_only_in_statistics():
    model, x = _model(), _data()
    model.compile("adam", "mse")
    before = [w.copy() for w in model.get_weights()]
    copy = recalibrate(model, x)
    for old, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, now)
    stats = {id(v) for v in (copy.get_layer("norm").moving_mean,
                             copy.get_layer("norm").moving_variance)}
    changed = [v.path for v, old in zip(copy.variables, model.variables)
               if not np.array_equal(v.numpy(), old.numpy())]
    assert changed and all(id(v) in stats for v in copy.variables if v.path in changed)
    assert copy.compiled and copy.loss == "mse"
    # Inference now uses the statistics of x: the output matches the batch-statistics output.
    np.testing.assert_allclose(copy(x, training=False).numpy(),
                               _no_dropout_training_output(copy, x), rtol=1e-4, atol=1e-4)


def _no_dropout_training_output(model, x):
    h = _norm_inputs(model, x)
    norm = model.get_layer("norm")
    normed = (h - h.mean(0)) / np.sqrt(h.var(0) + norm.epsilon)
    normed = normed * norm.gamma.numpy() + norm.beta.numpy()
    kernel, bias = model.get_layer("out").get_weights()
    return normed @ kernel + bias


def test_frozen_layers_keep_their_statistics():
    model = _model(frozen=True)
    copy = recalibrate(model, _data())
    np.testing.assert_array_equal(copy.get_layer("norm").moving_mean.numpy(), np.zeros(5))


def test_nested_model_is_recalibrated():
    inner = _model()
    inputs = keras.Input((6,))
    outer = keras.Model(inputs, L.Dense(1)(inner(inputs)))
    copy = recalibrate(outer, _data(shift=5.0))
    means = [l.moving_mean.numpy() for l in copy._flatten_layers()
             if isinstance(l, L.BatchNormalization)]
    assert len(means) == 1 and np.abs(means[0]).max() > 0.1


def test_model_without_batch_norm_comes_back_equal():
    inputs = keras.Input((6,))
    model = keras.Model(inputs, L.Dense(3)(inputs))
    copy = recalibrate(model, _data())
    assert copy is not model
    for old, new in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size=0"),
    ({"x": np.zeros((0, 6), "float32")}, r"Received first dimensions: \[0\]"),
    ({"x": [np.zeros((4, 6)), np.zeros((5, 6))]}, r"\[4, 5\]"),
    ({"model": L.Dense(3)}, "`model`, expected a built Keras model"),
])
def test_bad_arguments_are_named(kwargs, match):
    arguments = {"model": _model(), "x": _data(), **kwargs}
    with pytest.raises(ValueError, match=match):
        recalibrate(**arguments)

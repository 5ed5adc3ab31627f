"""NodeDrop callback: masking during fit changes no prediction."""

import warnings

import keras
import numpy as np
import pytest

from keras_darn import layers as darn_layers
from keras_darn.methods.nodedrop.attach import attach_nodedrop
from keras_darn.methods.nodedrop.callback import NodeDrop
from keras_darn.methods.nodedrop import condition
from keras_darn.metrics.counts import count_params
from keras_darn.rebuild import shrink

SCR = darn_layers.soft_clamped_relu


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype("int32")
    return x, y


def _plain_cnn(bn=False):
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(6, 3, activation=SCR, name="c1")(inputs)
    if bn:
        x = keras.layers.Conv2D(6, 3, name="c2")(x)
        x = keras.layers.BatchNormalization(name="bn")(x)
        x = keras.layers.ReLU()(x)
    else:
        x = keras.layers.Conv2D(6, 3, activation=SCR, name="c2")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8, activation=SCR, name="d1")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs)


def _nodedrop_cnn(lam, bn=False, batch_size=None, learning_rate=0.05):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = attach_nodedrop(
            _plain_cnn(bn), lam=lam, batch_size=batch_size, input_range=(0, 1)
        )
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    return model


class _Recorder(keras.callbacks.Callback):
    """Records inference predictions on a fixed batch after every step."""

    def __init__(self, x):
        super().__init__()
        self.x = x
        self.predictions = []
        self.masks = []

    def on_train_batch_end(self, batch, logs=None):
        self.predictions.append(keras.ops.convert_to_numpy(self.model(self.x)))
        self.masks.append(
            [l.get_unit_mask().copy() for l in self.model.layers if hasattr(l, "get_unit_mask")]
        )


def _changed_steps(before, after):
    return [
        i for i, (a, b) in enumerate(zip(before.masks, after.masks))
        if any((ma != mb).any() for ma, mb in zip(a, b))
    ]


def test_masking_during_fit_never_changes_a_prediction():
    x, y = _data()
    # Seeded; lambda large enough to drop units within a few steps, small
    # enough to keep at least one unit per layer (else shrink has no model).
    model = _nodedrop_cnn(lam=3e-3, learning_rate=0.01)
    probe = x[:32]
    before, after = _Recorder(probe), _Recorder(probe)
    nodedrop = NodeDrop(check_every=1, input_range=(0, 1), check_data=probe)
    history = model.fit(
        x, y, batch_size=16, epochs=3, verbose=0, callbacks=[before, nodedrop, after]
    )
    changed = _changed_steps(before, after)
    assert changed, "the large lambda should drop units within a few steps"
    for step in changed:
        np.testing.assert_array_equal(before.predictions[step], after.predictions[step])
    assert nodedrop.events
    assert all(e["output_change"] == 0.0 for e in nodedrop.events)
    assert all(e["max_inference_output"] == 0.0 for e in nodedrop.events)
    assert all(e["kind"] == "nodedrop" for e in nodedrop.events)
    # Masked units stay masked; the logs report what is left.
    live = history.history["live_units"]
    assert live == sorted(live, reverse=True) and live[-1] < 20
    final_masks = [l.get_unit_mask() for l in model.layers if hasattr(l, "get_unit_mask")]
    assert sum(int(m.sum()) for m in final_masks) == live[-1]
    # shrink gives the plain smaller model with the same outputs.
    small = shrink(model, compile=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(small(x)), keras.ops.convert_to_numpy(model(x)),
        rtol=0, atol=1e-6,
    )
    assert history.history["live_params"][-1] == count_params(small)
    assert count_params(small) < count_params(model)


def test_removing_a_dead_unit_leaves_outputs_identical():
    model = _nodedrop_cnn(lam=0.0)
    conv = model.get_layer("c2")
    kernel, bias = conv.get_weights()[:2]
    bias[[1, 4]] = -np.maximum(kernel[..., [1, 4]], 0).sum(axis=(0, 1, 2)) - 0.1
    conv.kernel.assign(kernel)
    conv.bias.assign(bias)
    dead = condition.nodedrop_dead_units(model, input_range=(0, 1))
    np.testing.assert_array_equal(np.flatnonzero(dead["c2"]), [1, 4])
    x, _ = _data(seed=5)
    reference = keras.ops.convert_to_numpy(model(x))
    conv.set_unit_mask(~dead["c2"])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), reference)
    small = shrink(model, compile=False)
    assert small.get_layer("c2").filters == 4
    np.testing.assert_allclose(keras.ops.convert_to_numpy(small(x)), reference, atol=1e-6)


def test_lambda_zero_drops_nothing():
    x, y = _data()
    model = _nodedrop_cnn(lam=0.0, learning_rate=1e-3)
    nodedrop = NodeDrop(input_range=(0, 1), count_params=False)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[nodedrop])
    assert nodedrop.events == []
    assert history.history["live_units"] == [20, 20, 20]


def test_nodedrop_bn_drops_and_measures_inference_outputs():
    x, y = _data()
    batch_size = 16
    model = _nodedrop_cnn(lam=0.01, bn=True, batch_size=batch_size)
    nodedrop = NodeDrop(
        check_every=2, input_range=(0, 1), batch_size=batch_size, check_data=x[:32]
    )
    model.fit(x, y, batch_size=batch_size, epochs=3, verbose=0, callbacks=[nodedrop])
    bn_events = [e for e in nodedrop.events if e["kind"] == "nodedrop_bn"]
    assert bn_events and all(e["layer"] == "c2" for e in bn_events)
    # Measured, never assumed: a float for every BN drop.
    assert all(isinstance(e["max_inference_output"], float) for e in bn_events)
    assert all(isinstance(e["output_change"], float) for e in nodedrop.events)
    dropped = model.get_layer("c2").get_unit_mask() == 0
    # With the moving mean reset, dropped units are exactly 0 at inference...
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("bn").moving_mean)[dropped], 0.0
    )
    after = condition.measure_dropped_unit_outputs(model, x, units={"c2": dropped})
    assert np.all(after["c2"][dropped] == 0.0)
    # ...and shrink keeps the outputs.
    small = shrink(model, compile=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(small(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-5
    )


def test_under_mirrored_strategy(two_cpu_strategy):
    x, y = _data()
    with two_cpu_strategy.scope():
        model = _nodedrop_cnn(lam=0.05)
    probe = x[:32]
    before, after = _Recorder(probe), _Recorder(probe)
    nodedrop = NodeDrop(check_every=1, input_range=(0, 1), check_data=probe, count_params=False)
    history = model.fit(
        x, y, batch_size=32, epochs=2, verbose=0, callbacks=[before, nodedrop, after]
    )
    changed = _changed_steps(before, after)
    assert changed and nodedrop.events
    for step in changed:
        np.testing.assert_array_equal(before.predictions[step], after.predictions[step])
    assert history.history["live_units"][-1] < 20


def test_invalid_arguments_and_warnings():
    with pytest.raises(ValueError, match="check_every=0"):
        NodeDrop(check_every=0)
    with pytest.raises(ValueError, match="check_every='batch'"):
        NodeDrop(check_every="batch")
    x, y = _data(n=16)
    bn_model = _nodedrop_cnn(lam=1e-3, bn=True, batch_size=8)
    with pytest.raises(ValueError, match="batch_size=None"):
        bn_model.fit(x, y, epochs=1, verbose=0, callbacks=[NodeDrop(input_range=(0, 1))])
    plain = _plain_cnn()
    plain.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning) as record:
        plain.fit(
            x, y, epochs=1, verbose=0,
            callbacks=[NodeDrop(input_range=(0, 1), count_params=False)],
        )
    messages = " ".join(str(w.message) for w in record)
    assert "['c1', 'c2', 'd1']" in messages and "without a unit mask" in messages
    assert "nothing will be dropped" in messages


def test_collapsed_layer_still_shrinks_to_the_same_function():
    x, y = _data(n=64)
    model = _nodedrop_cnn(lam=0.05)  # kills whole layers within a few steps
    history = model.fit(
        x, y, batch_size=16, epochs=2, verbose=0,
        callbacks=[NodeDrop(check_every=1, input_range=(0, 1))],
    )
    assert min(l.active_units for l in model.layers if hasattr(l, "active_units")) == 0
    small = shrink(model, compile=False)
    assert history.history["live_params"][-1] == count_params(small)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(small(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6
    )


def test_live_params_failure_logs_nan_and_training_goes_on(monkeypatch):
    from keras_darn.metrics import counts as params

    def failing_count(model, active_only=False):
        raise ValueError("cannot shrink this model")

    monkeypatch.setattr(params, "count_params", failing_count)
    x, y = _data(n=32)
    model = _nodedrop_cnn(lam=0.0)
    with pytest.warns(UserWarning, match="cannot count `live_params`.*cannot shrink"):
        history = model.fit(
            x, y, batch_size=16, epochs=2, verbose=0, callbacks=[NodeDrop(input_range=(0, 1))]
        )
    assert np.isnan(history.history["live_params"]).all()
    assert history.history["live_units"] == [20, 20]

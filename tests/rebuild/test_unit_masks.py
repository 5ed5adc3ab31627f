"""Unit masks on every member of a coupled group (`keras_darn.rebuild.unit_masks`).

A masked unit's weights are the entries `remove_units` drops, zeroed and
kept zero by a constraint through training: the masked model and the
rebuilt one compute the same function. Expected entries are built here
independently with `np.delete`-style index lists.
"""

import keras
import numpy as np
import pytest
from support import model_zoo

import keras_darn as darn
from keras_darn.rebuild.unit_masks import kept_entries
from keras_darn.rebuild.unit_masks import masked_plan
from keras_darn.rebuild.unit_masks import masks_of

L = keras.layers


def _cnn():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(6, 3, padding="same", name="conv")(inputs)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU()(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.Activation("sigmoid")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(3, name="out")(x))


def test_masking_zeroes_every_member_slice_and_only_those():
    model = _cnn()
    before = {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.weights}
    masks_of(model).set({"conv": [1, 4]})
    after = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    off, on = [1, 4], [0, 2, 3, 5]
    expected_zero = {
        "conv/kernel": (Ellipsis, off), "conv/bias": (off,),
        "bn/gamma": (off,), "bn/beta": (off,), "bn/moving_mean": (off,),
        "dw/kernel": (Ellipsis, off, slice(None)), "dw/bias": (off,),
        "out/kernel": (off,),
    }
    for path, index in expected_zero.items():
        assert not after[path][index].any(), path
        kept = list(index)
        kept[kept.index(off)] = on
        np.testing.assert_array_equal(after[path][tuple(kept)], before[path][tuple(kept)])
    # The running variance only divides a masked channel's 0: left as it was.
    np.testing.assert_array_equal(after["bn/moving_variance"], before["bn/moving_variance"])
    np.testing.assert_array_equal(after["out/bias"], before["out/bias"])


def test_a_masked_channel_leaves_batch_normalization_without_a_scale_as_zero():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inputs)
    normalized = L.BatchNormalization(scale=False, name="bn")(x)
    x = L.GlobalAveragePooling2D()(L.ReLU(name="relu")(normalized))
    model = keras.Model(inputs, L.Dense(2, name="out")(x))
    model_zoo.randomize_normalization(model)  # a running mean that is not 0
    masks_of(model).set({"conv": [1, 2]})
    probe = keras.Model(inputs, normalized)
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype("float32")
    assert not keras.ops.convert_to_numpy(probe(x, training=False))[..., [1, 2]].any()
    model.compile("sgd", "mse")
    model.fit(x, np.ones((8, 2)), epochs=2, verbose=0)  # the running mean is updated
    assert not keras.ops.convert_to_numpy(probe(x, training=False))[..., [1, 2]].any()
    assert keras.ops.convert_to_numpy(probe(x, training=False))[..., [0, 3]].any()


def test_masked_model_equals_rebuilt_model_through_training():
    model = _cnn()
    masks = masks_of(model)
    masks.install()
    masks.set({"conv": [1, 4]})
    model.compile(keras.optimizers.Adam(0.05), "mse")
    x = np.random.default_rng(0).normal(size=(32, 8, 8, 3)).astype("float32")
    model.fit(x, np.ones((32, 3)), epochs=2, batch_size=8, verbose=0)
    # The sigmoid makes the masked channels 0.5, but no layer reads them.
    assert not model.get_layer("conv").get_weights()[0][..., [1, 4]].any()
    small = darn.shrink(model)
    assert small.get_layer("conv").filters == 4
    assert masked_plan(model) == {"conv": [1, 4]}
    np.testing.assert_allclose(small.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_set_replaces_the_masked_units_and_add_keeps_them():
    model = _cnn()
    masks = masks_of(model)
    masks.set({"conv": [0]})
    masks.add({"conv": [2]})
    assert masks.plan == {"conv": [0, 2]}
    masks.set({"conv": [3]})
    assert masks.plan == {"conv": [3]}
    assert masks_of(model) is masks


def test_units_normalized_together_cannot_be_masked_exactly():
    inputs = keras.Input((5, 4))
    x = L.Dense(8, name="a")(inputs)
    x = L.LayerNormalization(name="ln")(x)
    y = L.Dense(6, name="b")(x)
    model = keras.Model(inputs, L.Dense(2, name="out")(y))
    masks = masks_of(model)
    assert "'ln'" in masks.inexact_reason("a")
    assert masks.inexact_reason("b") is None


def test_kept_entries_match_the_rebuilt_weights():
    model = model_zoo.conv_bn_relu_flatten()
    rebuilder = darn.Rebuilder(model).remove({"conv2": [0, 3]})
    kept = {w.path: axes for w, axes in kept_entries(rebuilder)}
    small = darn.remove_units(model, {"conv2": [0, 3]}, compile=False)
    for old in model.weights:
        new = next(w for w in small.weights if w.path == old.path)
        value = keras.ops.convert_to_numpy(old)
        for axis, keep in kept.get(old.path, {}).items():
            value = np.compress(keep, value, axis=axis)
        np.testing.assert_array_equal(value, keras.ops.convert_to_numpy(new), err_msg=old.path)


def test_kept_entries_refuses_growth():
    model = model_zoo.mlp()
    with pytest.raises(ValueError, match="removals only"):
        kept_entries(darn.Rebuilder(model).add({"fc1": 2}))


def _removal_by_layer(model, x, plan):
    from support.layer_lockstep import removal_diff_by_layer

    rebuilder = darn.rebuild.Rebuilder(model)
    removed = {int(r) for name, units in plan.items() for r in rebuilder.roots_of(name, units)}
    return removal_diff_by_layer(model, rebuilder.remove(plan).build(), x, removed)


def test_node_by_node_check_passes_a_masked_removal_and_fails_a_live_one():
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    live = _cnn()
    model_zoo.randomize_normalization(live)
    masked = keras.models.clone_model(live)
    masked.set_weights(live.get_weights())
    masks_of(masked).set({"conv": [1, 4]})
    worst, _, compared = _removal_by_layer(masked, x, {"conv": [1, 4]})
    assert worst <= 1e-6 and compared == len(masked.layers) - 1
    # The same units taken out of the unmasked model: per-channel layers keep
    # their other channels, the Dense layer that sums them all does not.
    worst, where, _ = _removal_by_layer(live, x, {"conv": [1, 4]})
    assert worst > 1e-2 and where == "out", (worst, where)

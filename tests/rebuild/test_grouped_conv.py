"""Grouped convolutions: depthwise written as `Conv2D(groups=C)`, and general groups."""

import keras
import numpy as np
import pytest

import keras_darn as darn

L = keras.layers


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):  # a positive variance: finite outputs
            layer.moving_variance.assign(np.abs(layer.moving_variance.numpy()) + 0.5)
    return model


def _depthwise_model(conv_class=L.Conv2D, shape=(6, 6, 3), multiplier=1):
    inputs = keras.Input(shape)
    a = conv_class(8, 1, name="a")(inputs)
    x = conv_class(8 * multiplier, 3, padding="same", groups=8, name="dw")(a)
    x = L.LayerNormalization(epsilon=1e-6, name="ln")(x) if multiplier == 1 else x
    x = conv_class(5, 1, name="pw")(x)
    pool = L.GlobalAveragePooling2D() if len(shape) == 3 else L.GlobalAveragePooling1D()
    return _randomize(keras.Model(inputs, L.Dense(2, name="out")(pool(x))))


def _x(model, seed=1):
    shape = (2,) + tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize(
    "conv_class, shape, multiplier",
    [(L.Conv2D, (6, 6, 3), 1), (L.Conv1D, (7, 3), 1), (L.Conv2D, (6, 6, 3), 2)],
    ids=["conv2d", "conv1d", "multiplier2"],
)
def test_depthwise_as_grouped_carries_indices_like_depthwise(conv_class, shape, multiplier):
    model = _depthwise_model(conv_class, shape, multiplier)
    x = _x(model)
    group = next(g for g in darn.unit_groups(model) if "a" in g.layers)
    assert group.resizable and group.layers == ["a"]
    removed = [2, 6]
    smaller = darn.remove_units(model, {"a": removed})
    dw = smaller.get_layer("dw")
    assert dw.groups == 6 and dw.filters == 6 * multiplier
    # Independently: slice every weight by hand.
    keep = np.setdiff1d(np.arange(8), removed)
    keep_out = (keep[:, None] * multiplier + np.arange(multiplier)).reshape(-1)
    old = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    np.testing.assert_array_equal(smaller.get_layer("a").get_weights()[0], old["a"][0][..., keep])
    np.testing.assert_array_equal(dw.get_weights()[0], old["dw"][0][..., keep_out])
    np.testing.assert_array_equal(dw.get_weights()[1], old["dw"][1][keep_out])
    np.testing.assert_array_equal(
        smaller.get_layer("pw").get_weights()[0], old["pw"][0][..., keep_out, :]
    )
    assert smaller(x).shape == (2, 2)


@pytest.mark.parametrize("init", ["zeros_out", "net2net", "random"])
def test_depthwise_as_grouped_growth_is_exact_and_undo_is_bit_exact(init):
    model = _depthwise_model(L.Conv2D, (6, 6, 3), multiplier=2)
    x = _x(model)
    grown = darn.add_units(model, {"a": 3}, init=init, seed=0)
    assert grown.get_layer("dw").groups == 11 and grown.get_layer("dw").filters == 22
    if init != "random":
        np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    if init == "net2net":
        return  # (the sources share their outgoing weights with the copies)
    back = darn.remove_units(grown, {"a": [8, 9, 10]})
    for before, after in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_shrink_removes_a_dead_channel_through_depthwise_as_grouped():
    model = _depthwise_model(L.Conv2D, (6, 6, 3), multiplier=2)
    x = _x(model)
    kernel, bias = model.get_layer("a").get_weights()
    kernel[..., 4] = 0.0
    bias[4] = 0.0
    model.get_layer("a").set_weights([kernel, bias])
    kernel, bias = model.get_layer("dw").get_weights()
    bias[8:10] = 0.0  # the two filters of channel 4 output exactly 0
    model.get_layer("dw").set_weights([kernel, bias])
    small = darn.shrink(model)
    assert small.get_layer("a").filters == 7 and small.get_layer("dw").groups == 7
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)


def _grouped_model():
    inputs = keras.Input((6, 6, 3))
    a = L.Conv2D(8, 1, name="a")(inputs)
    x = L.ReLU()(a)
    g = L.Conv2D(12, 3, padding="same", groups=4, name="g")(x)
    x = L.BatchNormalization(name="bn")(g)
    x = L.Conv2D(5, 1, name="pw")(x)
    return _randomize(keras.Model(inputs, L.Dense(2, name="out")(L.GlobalAveragePooling2D()(x))))


def test_grouped_conv_units_are_one_channel_of_every_group():
    model = _grouped_model()
    groups = {tuple(g.layers): g for g in darn.unit_groups(model)}
    inner = groups[("a", "g/in_group")]
    assert inner.resizable and inner.size == 2
    assert groups[("g",)].resizable and groups[("g",)].size == 3


def test_grouped_conv_removal_evenly_in_every_group():
    model = _grouped_model()
    x = _x(model)
    smaller = darn.remove_units(model, {"g": [1], "a": [0]})
    g = smaller.get_layer("g")
    assert g.groups == 4 and g.filters == 8 and tuple(g.kernel.shape) == (3, 3, 1, 8)
    old_kernel, old_bias = model.get_layer("g").get_weights()
    keep_out = [o for o in range(12) if o % 3 != 1]
    np.testing.assert_array_equal(g.get_weights()[0], old_kernel[:, :, [1], :][..., keep_out])
    np.testing.assert_array_equal(g.get_weights()[1], old_bias[keep_out])
    keep_in = [c for c in range(8) if c % 2 != 0]
    np.testing.assert_array_equal(
        smaller.get_layer("a").get_weights()[0], model.get_layer("a").get_weights()[0][..., keep_in]
    )
    # The same function as the original with the removed channels zeroed where read.
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    kernel, bias = reference.get_layer("a").get_weights()
    kernel[..., [0, 2, 4, 6]] = 0.0
    bias[[0, 2, 4, 6]] = 0.0
    reference.get_layer("a").set_weights([kernel, bias])
    kernel, bias = reference.get_layer("pw").get_weights()
    kernel[:, :, [1, 4, 7, 10], :] = 0.0
    reference.get_layer("pw").set_weights([kernel, bias])
    np.testing.assert_allclose(smaller(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "plan, a_filters, g_filters",
    [({"g": 4}, 8, 16), ({"a": 4}, 12, 12), ({"g": 8, "a": 8}, 16, 20)],
    ids=["filters", "inputs", "both"],
)
@pytest.mark.parametrize("init", ["zeros_out", "net2net", "random"])
def test_grouped_conv_growth_adds_a_channel_to_every_group(plan, a_filters, g_filters, init):
    model = _grouped_model()
    x = _x(model)
    assert np.isfinite(model(x).numpy()).all()
    grown = darn.add_units(model, plan, init=init, seed=0)
    g = grown.get_layer("g")
    assert g.groups == 4 and g.filters == g_filters
    assert tuple(g.kernel.shape) == (3, 3, a_filters // 4, g_filters)
    assert grown.get_layer("a").filters == a_filters
    assert grown.get_layer("pw").kernel.shape[-2] == g_filters
    if init == "random":
        assert grown(x).shape == (2, 2)
    else:
        np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_grouped_conv_growth_puts_new_channels_at_the_end_of_every_group():
    model = _grouped_model()
    x = _x(model)
    grown = darn.add_units(model, {"g": 4, "a": 4}, init="zeros_out", seed=0)
    old_kernel, old_bias = model.get_layer("g").get_weights()
    kernel, bias = grown.get_layer("g").get_weights()
    old_out = [o for o in range(16) if o % 4 != 3]
    np.testing.assert_array_equal(kernel[:, :, :2, old_out], old_kernel)
    np.testing.assert_array_equal(bias[old_out], old_bias)
    # The new input channel of every group has zero outgoing weights.
    np.testing.assert_array_equal(kernel[:, :, 2, :], 0.0)
    new_out = [3, 7, 11, 15]
    assert np.abs(kernel[:, :, :2, new_out]).sum() > 0
    np.testing.assert_array_equal(grown.get_layer("pw").get_weights()[0][:, :, new_out, :], 0.0)
    old_a = model.get_layer("a").get_weights()[0]
    old_in = [c for c in range(12) if c % 3 != 2]
    np.testing.assert_array_equal(grown.get_layer("a").get_weights()[0][..., old_in], old_a)
    # Nothing new reaches the output: the same function, and undo gives the weights back.
    np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    back = darn.remove_units(grown, {"g": [3], "a": [2]})
    assert len(back.get_weights()) == len(model.get_weights())
    for before, after in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(back(x).numpy(), model(x).numpy())


def test_grouped_conv_net2net_copies_the_source_in_every_group():
    model = _grouped_model()
    grown = darn.add_units(model, {"g": 4}, init="net2net", sources={"g": [1]}, seed=0)
    old_kernel = model.get_layer("g").get_weights()[0]
    kernel = grown.get_layer("g").get_weights()[0]
    for group in range(4):
        np.testing.assert_array_equal(kernel[..., group * 4 + 3], old_kernel[..., group * 3 + 1])


def test_grown_grouped_conv_saves_loads_and_trains(tmp_path):
    model = _grouped_model()
    x = _x(model)
    grown = darn.add_units(model, {"g": 4, "a": 8}, init="zeros_out", seed=0)
    path = str(tmp_path / "grown.keras")
    grown.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("g").groups == 4
    np.testing.assert_array_equal(loaded(x).numpy(), grown(x).numpy())
    loaded.compile(optimizer="sgd", loss="mse")
    before = loaded.get_layer("g").get_weights()[0]
    loss = loaded.train_on_batch(x, np.zeros((2, 2), dtype="float32"))
    assert np.isfinite(loss)
    assert not np.array_equal(before, loaded.get_layer("g").get_weights()[0])


@pytest.mark.parametrize("layer_name", ["g", "a"])
def test_grouped_conv_growth_that_breaks_the_groups_is_refused_with_a_clear_error(layer_name):
    with pytest.raises(
        ValueError,
        match=rf"Cannot add 3 units to layer '{layer_name}'.*grouped convolution 'g' "
        r"\(4 sets\).*a multiple of 4\. Received: 3",
    ):
        darn.add_units(_grouped_model(), {layer_name: 3})


def test_group_normalization_keeps_its_groups_consistent():
    inputs = keras.Input((6, 6, 3))
    a = L.Conv2D(8, 1, name="a")(inputs)
    x = L.GroupNormalization(groups=4, name="gn")(a)
    y = L.GroupNormalization(groups=-1, name="instance")(L.Conv2D(6, 1, name="c")(x))
    model = _randomize(keras.Model(inputs, L.Dense(2, name="out")(L.Flatten()(y))))
    groups = {tuple(g.layers): g for g in darn.unit_groups(model)}
    assert groups[("a",)].size == 2 and groups[("a",)].resizable
    smaller = darn.remove_units(model, {"a": [1], "c": [0, 5]})
    assert smaller.get_layer("gn").groups == 4 and smaller.get_layer("a").filters == 4
    assert smaller.get_layer("instance").groups == 4
    np.testing.assert_array_equal(
        smaller.get_layer("gn").get_weights()[0],
        model.get_layer("gn").get_weights()[0][[0, 2, 4, 6]],
    )
    # One channel per group: removing channels is exact, as for BatchNormalization.
    x = _x(model)
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    kernel, bias = reference.get_layer("out").get_weights()
    kernel = kernel.reshape(36, 6, 2)
    kernel[:, [0, 5]] = 0.0
    reference.get_layer("out").set_weights([kernel.reshape(216, 2), bias])
    only_c = darn.remove_units(model, {"c": [0, 5]})
    np.testing.assert_allclose(only_c(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-5)


def test_an_ungrouped_conv_on_one_input_channel_is_no_depthwise_conv():
    inputs = keras.Input((6, 6, 1))
    x = L.Conv2D(6, 3, name="c1")(inputs)
    model = _randomize(keras.Model(inputs, L.Dense(2, name="out")(L.Flatten()(x))))
    smaller = darn.remove_units(model, {"c1": [0, 1]})
    assert smaller.get_layer("c1").filters == 4 and smaller.get_layer("c1").groups == 1

"""grow_units: function preservation, the paper's naive baseline, optimizer state."""

import keras
import numpy as np
import pytest
from support import model_zoo

from keras_darn.methods.growth.grow import grow_units


def _mlp():
    inputs = keras.Input((8,))
    x = keras.layers.Dense(6, activation="relu", name="h1")(inputs)
    x = keras.layers.Dense(5, activation="relu", name="h2")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x))


def _cnn():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="conv2")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x))


def _compiled(model, optimizer=None):
    model.compile(
        optimizer or keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _data(model, n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    return x, rng.integers(0, 3, n)


def _loss(model, x, y):
    # Eager, in inference mode: no traced function per model.
    logits = model(x, training=False)
    return float(np.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)))


CASES = [
    ("mlp", _mlp, {"h1": 3, "h2": 2}),
    ("cnn", _cnn, {"conv1": 3, "conv2": 2}),
]


@pytest.mark.parametrize("name,build,plan", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("init", ["zeros_out", "net2net", "pair_average"])
def test_function_preserving_inits_keep_the_loss(name, build, plan, init):
    model = model_zoo.randomize_normalization(build())
    x, y = _data(model)
    before = _loss(model, x, y)
    sources = None
    if init == "pair_average":
        sources = {layer: [(0, 1)] * count for layer, count in plan.items()}
    grown = grow_units(model, plan, init=init, sources=sources, seed=0, compile=False)
    for layer, count in plan.items():
        old, new = model.get_layer(layer), grown.get_layer(layer)
        assert new.kernel.shape[-1] == old.kernel.shape[-1] + count
    after = _loss(grown, x, y)
    assert abs(after - before) / abs(before) <= 1e-5
    np.testing.assert_allclose(grown(x), model(x), rtol=1e-5, atol=1e-5)


def test_pair_average_sets_incoming_weights_to_the_mean():
    model = _mlp()
    grown = grow_units(model, {"h1": 2}, init="pair_average", sources={"h1": [(0, 4), (2, 3)]}, compile=False)
    kernel, bias = model.get_layer("h1").get_weights()
    new_kernel, new_bias = grown.get_layer("h1").get_weights()
    np.testing.assert_allclose(new_kernel[:, 6], 0.5 * (kernel[:, 0] + kernel[:, 4]))
    np.testing.assert_allclose(new_kernel[:, 7], 0.5 * (kernel[:, 2] + kernel[:, 3]))
    np.testing.assert_allclose(new_bias[6:], [0.5 * (bias[0] + bias[4]), 0.5 * (bias[2] + bias[3])])
    np.testing.assert_array_equal(grown.get_layer("h2").get_weights()[0][6:], 0.0)


@pytest.mark.parametrize("name,build,plan", CASES, ids=[c[0] for c in CASES])
def test_incoming_norm_sets_new_units_norm_and_keeps_outputs(name, build, plan):
    model = build()
    x, _ = _data(model)
    grown = grow_units(model, plan, incoming_norm=2.0, seed=0, compile=False)
    for layer, count in plan.items():
        old = np.asarray(model.get_layer(layer).kernel)
        new = np.asarray(grown.get_layer(layer).kernel)
        old_norms = np.linalg.norm(old.reshape(-1, old.shape[-1]), axis=0)
        new_norms = np.linalg.norm(new.reshape(-1, new.shape[-1]), axis=0)
        np.testing.assert_allclose(new_norms[-count:], 2.0 * old_norms.mean(), rtol=1e-5)
        np.testing.assert_array_equal(new[tuple(slice(0, n) for n in old.shape)], old)
    np.testing.assert_allclose(grown(x), model(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="incoming_norm"):
        grow_units(model, plan, init="net2net", incoming_norm=2.0)
    with pytest.raises(ValueError, match="positive `incoming_norm`"):
        grow_units(model, plan, incoming_norm=-1.0)


def test_naive_copies_without_dividing_outgoing_weights():
    model = _mlp()
    grown = grow_units(model, {"h1": 3}, init="naive", sources={"h1": [1, 3, 1]}, compile=False)
    k1, b1 = model.get_layer("h1").get_weights()
    k2, b2 = model.get_layer("h2").get_weights()
    g1, gb1 = grown.get_layer("h1").get_weights()
    g2, gb2 = grown.get_layer("h2").get_weights()
    # Built independently: copies of columns 1, 3, 1 and of their outgoing rows, undivided.
    np.testing.assert_allclose(g1, np.concatenate([k1, k1[:, [1, 3, 1]]], axis=1))
    np.testing.assert_allclose(gb1, np.concatenate([b1, b1[[1, 3, 1]]]))
    np.testing.assert_allclose(g2, np.concatenate([k2, k2[[1, 3, 1]]], axis=0), rtol=1e-6)
    np.testing.assert_allclose(gb2, b2)
    x, _ = _data(model)
    assert not np.allclose(grown(x), model(x), atol=1e-3)


def test_naive_noise_touches_sources_and_copies():
    model = _mlp()
    grown = grow_units(model, {"h1": 2}, init="naive", sources={"h1": [2, 4]}, noise=0.1, seed=3, compile=False)
    k1 = model.get_layer("h1").get_weights()[0]
    g1 = grown.get_layer("h1").get_weights()[0]
    untouched = [0, 1, 3, 5]
    np.testing.assert_array_equal(g1[:, untouched], k1[:, untouched])
    for column in (2, 4, 6, 7):
        original = k1[:, 2 if column in (2, 6) else 4]
        assert not np.allclose(g1[:, column], original)
        np.testing.assert_allclose(g1[:, column], original, atol=0.1 * np.std(k1) * 6)


def test_noisy_net2net_is_close_but_not_equal():
    model = _mlp()
    x, _ = _data(model)
    grown = grow_units(model, {"h1": 3}, init="net2net", noise=0.01, seed=0, compile=False)
    delta = np.abs(np.asarray(grown(x)) - np.asarray(model(x))).max()
    assert 0 < delta < 0.05


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_optimizer_slots_carried_exactly(optimizer):
    opt = keras.optimizers.Adam(0.01) if optimizer == "adam" else keras.optimizers.SGD(0.1, momentum=0.9)
    model = _compiled(_mlp(), opt)
    x, y = _data(model)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    grown = grow_units(model, {"h1": 2}, init="net2net", noise=0.05, seed=1)
    old_opt, new_opt = model.optimizer, grown.optimizer
    assert int(new_opt.iterations) == int(old_opt.iterations) == 8
    slot_lists = ["_momentums", "_velocities"] if optimizer == "adam" else ["momentums"]
    for attribute in slot_lists:
        old_slots, new_slots = getattr(old_opt, attribute), getattr(new_opt, attribute)
        for layer_name in ("h1", "h2", "out"):
            for old_var, new_var in zip(
                model.get_layer(layer_name).trainable_weights,
                grown.get_layer(layer_name).trainable_weights,
            ):
                old = np.asarray(old_slots[old_opt._get_variable_index(old_var)])
                new = np.asarray(new_slots[new_opt._get_variable_index(new_var)])
                assert np.abs(old).sum() > 0
                if layer_name == "h1":  # new units are the last 2 outputs
                    np.testing.assert_array_equal(new[..., :6], old)
                    np.testing.assert_array_equal(new[..., 6:], 0.0)
                elif layer_name == "h2" and old_var.name == "kernel":  # their rows
                    np.testing.assert_array_equal(new[:6], old)
                    np.testing.assert_array_equal(new[6:], 0.0)
                else:
                    np.testing.assert_array_equal(new, old)


def test_learning_rate_schedule_continues_after_growth():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    model = _compiled(_mlp(), keras.optimizers.SGD(schedule))
    x, y = _data(model)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    grown = grow_units(model, {"h2": 2})
    assert float(grown.optimizer.learning_rate) == pytest.approx(float(schedule(8)))
    grown.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert int(grown.optimizer.iterations) == 12
    assert float(grown.optimizer.learning_rate) == pytest.approx(float(schedule(12)))


def test_argument_errors():
    model = _mlp()
    with pytest.raises(ValueError, match="init"):
        grow_units(model, {"h1": 1}, init="copy")
    with pytest.raises(ValueError, match="only used by"):
        grow_units(model, {"h1": 1}, init="zeros_out", sources={"h1": [0]})
    with pytest.raises(ValueError, match="needs `sources`"):
        grow_units(model, {"h1": 1}, init="pair_average")
    with pytest.raises(ValueError, match=r"1 source indices in \[0, 6\)"):
        grow_units(model, {"h1": 1}, init="naive", sources={"h1": [6]})
    with pytest.raises(ValueError, match="pairs"):
        grow_units(model, {"h1": 1}, init="pair_average", sources={"h1": [(0, 9)]})


def test_new_slots_mean_fills_only_new_second_moments():
    model = _compiled(_mlp())
    x, y = _data(model)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    grown = grow_units(model, {"h1": 2}, seed=1, new_slots="mean")
    old_opt, new_opt = model.optimizer, grown.optimizer
    for attribute in ("_momentums", "_velocities"):
        old_slots, new_slots = getattr(old_opt, attribute), getattr(new_opt, attribute)
        pairs = [  # (old, new, index of the new units' entries)
            (model.get_layer("h1").kernel, grown.get_layer("h1").kernel, (Ellipsis, slice(6, None))),
            (model.get_layer("h2").kernel, grown.get_layer("h2").kernel, (slice(6, None),)),
        ]
        for old_var, new_var, new_index in pairs:
            old = np.asarray(old_slots[old_opt._get_variable_index(old_var)])
            new = np.asarray(new_slots[new_opt._get_variable_index(new_var)])
            kept = np.ones(new.shape, dtype=bool)
            kept[new_index] = False
            np.testing.assert_array_equal(new[kept], old.reshape(-1))  # surviving slots exact
            expected = old.mean() if attribute == "_velocities" else 0.0
            np.testing.assert_allclose(new[~kept], expected, rtol=1e-6)
            if attribute == "_velocities":
                assert expected > 0
    with pytest.raises(ValueError, match="new_slots"):
        grow_units(model, {"h1": 2}, new_slots="ones")


def test_adam_step_inflation_of_new_weights():
    from keras_darn.methods.growth.grow import adam_step_inflation

    np.testing.assert_allclose(adam_step_inflation(0, [1, 10, 100]), 1.0)  # fresh weights: none
    late = adam_step_inflation(470, np.array([1, 10, 50]))
    assert late[1] > 3.0 and late[2] > late[0] > 1.0  # several x a fresh optimizer's step
    assert adam_step_inflation(470, 10) > adam_step_inflation(188, 10)  # later growths: larger


def _gradmax_mlp(batch_norm=False):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, name="h")(inputs)
    if batch_norm:
        h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_gradmax_new_units_follow_the_gradients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, size=64)
    model = _gradmax_mlp()
    grown = grow_units(model, {"h": 2}, init="gradmax", gradient_data=(x, y), seed=0)
    assert grown.get_layer("h").units == 7
    out = keras.ops.convert_to_numpy(grown.get_layer("out").kernel)
    old_norm = np.linalg.norm(out[:5], axis=1).mean()
    np.testing.assert_allclose(np.linalg.norm(out[5:], axis=1), old_norm, rtol=1e-5)
    np.testing.assert_allclose(out[5] @ out[6], 0.0, atol=1e-5)  # orthogonal directions
    incoming = keras.ops.convert_to_numpy(grown.get_layer("h").kernel)
    in_norm = np.linalg.norm(incoming[:, :5], axis=0).mean()
    np.testing.assert_allclose(np.linalg.norm(incoming[:, 5:], axis=0), 0.01 * in_norm, rtol=1e-4)
    # Nearly the same outputs: the new units start with a small first step.
    np.testing.assert_allclose(grown.predict(x, verbose=0), model.predict(x, verbose=0), atol=0.05)
    with pytest.raises(ValueError, match="gradient_data"):
        grow_units(model, {"h": 2}, init="gradmax")
    with pytest.raises(ValueError, match="gradient_data"):
        grow_units(model, {"h": 2}, init="zeros_out", gradient_data=(x, y))
    with pytest.raises(ValueError, match="activation layers only"):
        grow_units(_gradmax_mlp(batch_norm=True), {"h": 2}, init="gradmax", gradient_data=(x, y))

"""Pruning during `fit` through the front door, on real architectures.

`darn.prepare(model, "magnitude", darn.Target(flops=0.5))`, one epoch of
`fit`, `callback.finish()`: a plain Keras model (no keras_darn layer, loads
without keras_darn's registrations) with FLOPs in [0.48, 0.50] of the
original, whose outputs equal the masked model's (in float64 where the
untrained float32 net amplifies rounding). Every `keras.applications`
architecture (random weights, small inputs) is marked slow; one runs by
default. Attention and recurrent models prune their Dense and recurrent units
during fit and say which groups they leave to `darn.resize`.
"""

import json
import warnings
import zipfile

import keras
import numpy as np
import pytest
from support import model_zoo

import keras_darn as darn

L = keras.layers
FAST_SAMPLE = ["MobileNetV3Small"]


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


def _has_no_keras_darn_layer(model, tmp_path):
    path = str(tmp_path / "small.keras")
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
    assert "keras_darn" not in config
    json.loads(config)
    return path


def check_in_fit(name, tmp_path):
    model = model_zoo.application(name)
    x = model_zoo.sample_input(model, batch=4)
    pruned, callback = darn.prepare(model, "magnitude", darn.Target(flops=0.5))
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, np.arange(4), epochs=1, batch_size=4, verbose=0, callbacks=[callback])
    result = callback.finish()
    small = result.model
    assert all(type(layer).__module__.startswith("keras.") for layer in small._flatten_layers())
    _has_no_keras_darn_layer(small, tmp_path)
    share = darn.count_flops(small) / darn.count_flops(model)
    assert 0.48 <= share <= 0.50, share
    assert result.target_check()["met"]
    # Where the untrained float32 net amplifies rounding end to end
    # (EfficientNetV2L: by about 1e14, even in float64), node by node in float64.
    diff32, diff64, by_layer64 = model_zoo.masked_vs_finished(name, pruned, small, x)
    assert diff32 <= 1e-4 or by_layer64 <= 1e-10, (diff32, diff64, by_layer64)


@pytest.mark.parametrize("name", FAST_SAMPLE)
def test_application_sample_in_fit(name, tmp_path):
    check_in_fit(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", model_zoo.APPLICATIONS)
def test_application_zoo_in_fit(name, tmp_path):
    check_in_fit(name, tmp_path)


def _attention_lstm():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10, 12))
    x = L.Dense(32, activation="relu", name="embed")(inputs)
    attended = L.MultiHeadAttention(4, 8, name="mha")(x, x)
    x = L.LayerNormalization(name="ln")(L.Add()([x, attended]))
    x = L.LSTM(24, name="lstm")(x)
    x = L.Dense(64, activation="relu", name="hidden")(x)
    return keras.Model(inputs, L.Dense(5, name="out")(x))


def _bidirectional_gru():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10, 12))
    x = L.Bidirectional(L.GRU(16, return_sequences=True), name="bigru")(inputs)
    x = L.SimpleRNN(20, name="rnn")(x)
    x = L.Dense(32, activation="relu", name="hidden")(x)
    return keras.Model(inputs, L.Dense(5, name="out")(x))


def _sequences(count):
    """`count` random sequences of 10 steps of 12 features, and labels of 5 classes."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(count, 10, 12)).astype("float32"), rng.integers(0, 5, count)


def _widths(model):
    widths = {}
    for layer in model.layers:
        if isinstance(layer, L.MultiHeadAttention):
            widths[layer.name] = (layer.num_heads, layer.key_dim, layer.value_dim)
        elif isinstance(layer, L.Bidirectional):
            widths[layer.name] = (layer.forward_layer.units, layer.backward_layer.units)
        elif hasattr(layer, "units"):
            widths[layer.name] = layer.units
    return widths


@pytest.mark.parametrize("make, expected, left_out", [
    (_attention_lstm, {"embed": 32, "mha": (2, 4, 4), "lstm": 12, "hidden": 32, "out": 5},
     ["embed"]),
    (_bidirectional_gru, {"bigru": (8, 8), "rnn": 10, "hidden": 16, "out": 5}, []),
])
def test_every_group_kind_is_pruned_during_fit(make, expected, left_out, tmp_path):
    x, y = _sequences(64)
    pruned, callback = darn.prepare(make(), "magnitude", darn.Target(fraction=0.5))
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    result = callback.finish()
    small = result.model
    # Heads and head sizes, recurrent units (both directions) and Dense units.
    assert _widths(small) == expected
    _has_no_keras_darn_layer(small, tmp_path)
    np.testing.assert_allclose(small.predict(x, verbose=0), pruned.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    # What is not pruned during fit (the residual stream a LayerNormalization
    # normalizes) is said, with the reason.
    assert sorted(result.notes) == left_out
    for name in left_out:
        assert "LayerNormalization" in result.notes[name] and f"'{name}'" in result.summary()


def test_criteria_that_read_outputs_leave_heads_and_say_so():
    x, y = _sequences(64)
    pruned, callback = darn.prepare(_attention_lstm(), "activation_variance",
                                    darn.Target(fraction=0.5), validation_data=(x, y))
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    result = callback.finish()
    assert _widths(result.model)["mha"] == (4, 8, 8)
    assert _widths(result.model)["lstm"] == 12
    for name in ("mha/heads", "mha/key_dim", "mha/value_dim"):
        assert "'magnitude', 'magnitude_l1' and 'bn_scale' prune them" in result.notes[name]


def test_counters_count_attention_and_recurrent_layers():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an uncounted layer warns
        counts = darn.metrics.flops_by_layer(_attention_lstm())
        bidirectional = darn.metrics.flops_by_layer(_bidirectional_gru())
    # LSTM(24) on 32 features, 10 steps: kernels 2 * (32 + 24) * 96, bias
    # 96, 3 sigmoids (4 each) and 2 tanh (1 each), 4 updates per unit.
    assert counts["lstm"] == 10 * (2 * (32 + 24) * 96 + 96 + 24 * (3 * 4 + 2 + 4))
    # SimpleRNN(20) on 32 features (both GRU directions concatenated).
    assert bidirectional["rnn"] == 10 * (2 * (32 + 20) * 20 + 20 + 20)
    # Projections (4 einsum kernels with biases) and the attention itself.
    projections = 10 * (3 * (2 * 32 * 32 + 32) + 2 * 32 * 32 + 32)
    assert counts["mha"] == projections + 10 * 32 + 2 * 10 * 10 * 4 * 16 + 5 * 10 * 10 * 4
    assert bidirectional["bigru"] > 2 * 10 * 2 * (12 + 16) * 48


def _keras_hub_backbones():
    keras_hub = pytest.importorskip("keras_hub")
    small = dict(vocabulary_size=50, num_layers=2, hidden_dim=16, intermediate_dim=32)
    return {
        "bert": lambda: keras_hub.models.BertBackbone(num_heads=4, max_sequence_length=12,
                                                      **small),
        "gpt2": lambda: keras_hub.models.GPT2Backbone(num_heads=4, max_sequence_length=12,
                                                      **small),
        "gemma": lambda: keras_hub.models.GemmaBackbone(num_query_heads=4, num_key_value_heads=2,
                                                        head_dim=8, **small),
    }


@pytest.mark.parametrize("name", ["bert", "gpt2", "gemma"])
def test_keras_hub_backbone_heads_and_feedforward_units_are_pruned_during_fit(name, tmp_path):
    backbone = _keras_hub_backbones()[name]()
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(0, 50, (16, 12)).astype("int32"),
         "padding_mask": np.ones((16, 12), "int32")}
    if name == "bert":
        x["segment_ids"] = np.zeros((16, 12), "int32")
    outputs = backbone(x)
    targets = keras.tree.map_structure(
        lambda t: rng.normal(size=t.shape).astype("float32"), outputs)
    pruned, callback = darn.prepare(backbone, "magnitude", darn.Target(fraction=0.5))
    pruned.compile("adam", keras.tree.map_structure(lambda _: "mse", outputs))
    pruned.fit(x, targets, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    result = callback.finish()
    before, after = result.before["widths"], result.after["widths"]
    heads = [k for k in before if k.endswith("/heads")]
    feedforward = [k for k in before if k not in heads and "/" in k]
    assert heads and feedforward
    for key in heads + feedforward:
        assert after[key] < before[key], key
    assert not result.notes  # the residual stream is not resizable at all
    # keras-hub's encoder and decoder blocks derive the head size from the
    # width and the head count, so with fewer heads they come out written as
    # the plain Keras layers they are made of; Gemma's block takes a head
    # size and stays itself.
    layers = result.model._flatten_layers()
    assert not [layer for layer in layers if type(layer).__module__.startswith("keras_darn")]
    attention = [layer for layer in result.model.layers
                 if type(layer) is keras.layers.MultiHeadAttention]
    assert len(attention) == (0 if name == "gemma" else 2)
    assert all(layer.num_heads < 4 and layer.key_dim == 4 for layer in attention)
    path = _has_no_keras_darn_layer(result.model, tmp_path)
    masked = keras.tree.flatten(pruned(x))
    for finished in (result.model, keras.saving.load_model(path)):
        for a, b in zip(masked, keras.tree.flatten(finished(x))):
            assert model_zoo.relative_diff(keras.ops.convert_to_numpy(b),
                                           keras.ops.convert_to_numpy(a)) <= 1e-4


def test_net2net_grows_the_layers_of_an_attention_and_recurrent_model():
    x, y = _sequences(64)
    model = _attention_lstm()
    model.compile("adam", "sparse_categorical_crossentropy")
    result = darn.resize(model, "net2net", darn.Target(units=96), x=x, y=y, epochs=2,
                         schedule=darn.schedules.Constant(0.5, start=0))
    # Layers with `units` grow (the LSTM too); the heads inside the attention
    # layer are not grown.
    widths = _widths(result.model)
    assert widths["lstm"] > 24 and widths["hidden"] > 64
    assert widths["mha"] == (4, 8, 8)


def test_taylor2_refuses_a_recurrent_model_before_scoring():
    x, y = _sequences(32)
    model = _attention_lstm()
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="recurrent layer 'lstm'"):
        darn.resize(model, "taylor2", darn.Target(fraction=0.3), validation_data=(x, y))


def test_a_target_out_of_reach_names_the_groups_left_out_before_training():
    inputs = keras.Input((6,))
    x = L.LayerNormalization(name="ln")(L.Dense(32, name="a")(inputs))
    x = L.Dense(16, activation="relu", name="b")(x)
    model = keras.Model(inputs, L.Dense(2, name="out")(x))
    pruned, callback = darn.prepare(model, "magnitude", darn.Target(flops=0.2))
    pruned.compile("adam", "mse")
    x = np.zeros((8, 6), "float32")
    with pytest.raises(ValueError, match=r"cannot be reached(.|\n)*'a': not pruned during fit"):
        pruned.fit(x, np.zeros((8, 2)), epochs=1, verbose=0, callbacks=[callback])
    assert pruned.optimizer.iterations.numpy() == 0


def test_a_layer_called_twice_is_refused_before_training():
    inputs = keras.Input((8,))
    shared = L.Dense(16, activation="relu", name="shared")
    joined = L.Concatenate()([shared(inputs), shared(L.Dense(8, name="pre")(inputs))])
    model = keras.Model(inputs, L.Dense(2, name="out")(joined))
    with pytest.raises(ValueError, match=r"Layer 'shared' is called 2 times .* a layer of its own"):
        darn.prepare(model, "magnitude", darn.Target(fraction=0.5))


def test_a_masked_model_saved_during_fit_loads_without_keras_darn(tmp_path):
    import subprocess
    import sys

    x, y = _sequences(32)
    pruned, callback = darn.prepare(_bidirectional_gru(), "magnitude", darn.Target(fraction=0.5))
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    path = str(tmp_path / "masked.keras")
    pruned.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", pruned.predict(x, verbose=0))
    script = (
        "import sys, numpy as np, keras\n"
        f"model = keras.saving.load_model({path!r})\n"
        "assert not any(m.startswith('keras_darn') for m in sys.modules)\n"
        f"x, expected = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'expected.npy')!r})\n"
        "np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]

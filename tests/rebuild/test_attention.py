"""MultiHeadAttention heads and features, the FFN of a transformer block, LayerNormalization."""

import warnings

import keras
import numpy as np
import pytest

import keras_darn as darn

L = keras.layers


def _block(key_dim=6, value_dim=5):
    ids = keras.Input((5,), dtype="int32")
    x = L.Embedding(30, 8, name="embed")(ids)
    attention = L.MultiHeadAttention(4, key_dim, value_dim=value_dim, name="mha")(x, x)
    x = L.LayerNormalization(name="ln1")(L.Add()([x, attention]))
    hidden = L.Dense(16, activation="relu", name="ffn1")(x)
    x = L.LayerNormalization(name="ln2")(L.Add()([x, L.Dense(8, name="ffn2")(hidden)]))
    model = keras.Model(ids, L.Dense(3, name="logits")(L.GlobalAveragePooling1D()(x)))
    return model, np.random.default_rng(0).integers(0, 30, (4, 5))


def test_a_model_with_attention_rebuilds_and_keeps_every_weight():
    # The query, key and value projections hold weights of the same names
    # and different shapes: they must not be mixed up.
    model, x = _block()
    grown = darn.add_units(model, {"ffn1": 1})
    np.testing.assert_array_equal(grown(x).numpy(), model(x).numpy())
    for a, b in zip(model.get_layer("mha").weights, grown.get_layer("mha").weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_groups_of_a_transformer_block():
    model, _ = _block()
    groups = {tuple(g.layers): g for g in darn.unit_groups(model)}
    assert groups[("embed", "mha", "ffn2")].resizable
    for part, size in (("mha/heads", 4), ("mha/key_dim", 6), ("mha/value_dim", 5), ("ffn1", 16)):
        assert groups[(part,)].resizable and groups[(part,)].size == size


def test_removing_a_head_removes_its_slices():
    model, x = _block()
    smaller = darn.remove_units(model, {"mha/heads": [1]})
    old, new = model.get_layer("mha"), smaller.get_layer("mha")
    assert new.num_heads == 3
    for position in range(6):  # query, key, value kernels and biases: heads on axis 1 / 0
        axis = 1 if position % 2 == 0 else 0
        expected = np.delete(old.weights[position].numpy(), 1, axis=axis)
        np.testing.assert_array_equal(new.weights[position].numpy(), expected)
    np.testing.assert_array_equal(new.weights[6].numpy(), np.delete(old.weights[6].numpy(), 1, axis=0))
    np.testing.assert_array_equal(new.weights[7].numpy(), old.weights[7].numpy())
    assert smaller(x).shape == (4, 3)


@pytest.mark.parametrize(
    "plan, undo",
    [
        ({"mha/heads": 2}, {"mha/heads": [4, 5]}),
        ({"mha/value_dim": 3}, {"mha/value_dim": [5, 6, 7]}),
        ({"ffn1": 4}, {"ffn1": [16, 17, 18, 19]}),
        ({"mha/key_dim": 3}, None),
    ],
)
def test_growth_is_exact_and_undone_bit_for_bit(plan, undo):
    model, x = _block()
    grown = darn.add_units(model, plan, seed=0)
    assert grown.count_params() > model.count_params()
    np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), atol=1e-6)
    if undo is not None:
        restored = darn.remove_units(grown, undo)
        for a, b in zip(model.get_weights(), restored.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_key_dim_growth_rescales_the_query_to_keep_the_scores():
    model, _ = _block(key_dim=4)
    grown = darn.add_units(model, {"mha/key_dim": 5}, seed=0)
    old, new = model.get_layer("mha"), grown.get_layer("mha")
    assert new.key_dim == 9
    np.testing.assert_allclose(new.weights[0].numpy()[..., :4], old.weights[0].numpy() * 1.5, rtol=1e-6)
    np.testing.assert_array_equal(new.weights[2].numpy()[..., 4:], 0.0)  # new key columns


def test_cross_attention_keeps_query_and_value_streams_apart():
    query_in, value_in = keras.Input((4, 6)), keras.Input((7, 10))
    q = L.Dense(6, name="q_proj")(query_in)
    v = L.Dense(10, name="v_proj")(value_in)
    out = L.MultiHeadAttention(2, 3, name="cross")(q, v)
    model = keras.Model([query_in, value_in], L.Dense(2)(L.Flatten()(out)))
    rng = np.random.default_rng(0)
    x = [rng.random((2, 4, 6)).astype("float32"), rng.random((2, 7, 10)).astype("float32")]
    grown = darn.add_units(model, {"v_proj": 2, "q_proj": 1, "cross": 2}, seed=0)
    np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), atol=1e-6)
    smaller = darn.remove_units(model, {"v_proj": [0, 9]})
    expected = np.delete(model.get_layer("cross").weights[2].numpy(), [0, 9], axis=0)
    np.testing.assert_array_equal(smaller.get_layer("cross").weights[2].numpy(), expected)
    # Nothing in the value stream is folded away by shrink: it is read by the attention.
    assert darn.shrink(model).count_params() == model.count_params()


def test_growing_the_residual_stream_through_layer_normalization_warns():
    model, x = _block()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grown = darn.add_units(model, {"embed": 2})
    messages = [str(w.message) for w in caught if "does not compute the same function" in str(w.message)]
    assert any("'ln1'" in m for m in messages)
    assert grown.get_layer("embed").output_dim == 10 and grown.get_layer("mha").num_heads == 4
    # Removal from the stream slices the normalization weights.
    smaller = darn.remove_units(model, {"embed": [3]})
    gamma = np.delete(model.get_layer("ln1").gamma.numpy(), 3)
    np.testing.assert_array_equal(smaller.get_layer("ln1").gamma.numpy(), gamma)
    assert smaller(x).shape == (4, 3)


def test_a_training_step_after_removing_heads_and_ffn_units():
    model, x = _block()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    y = np.array([0, 1, 2, 1])
    model.fit(x, y, epochs=1, verbose=0)
    smaller = darn.remove_units(model, {"mha/heads": [0], "ffn1": [2, 5]})
    assert smaller.get_layer("ffn1").units == 14
    history = smaller.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_grouped_query_attention_heads_go_with_their_query_group():
    inputs = keras.Input((5, 8))
    x = L.Dense(8, name="d")(inputs)
    x = L.Add()([x, L.GroupQueryAttention(4, 4, 2, name="gqa")(x, x)])
    model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling1D()(x)))
    data = np.random.default_rng(0).random((2, 5, 8)).astype("float32")
    grown = darn.add_units(model, {"gqa/heads": 1, "d": 2}, seed=0)
    assert (grown.get_layer("gqa").num_key_value_heads, grown.get_layer("gqa").num_query_heads) == (3, 6)
    np.testing.assert_allclose(grown(data).numpy(), model(data).numpy(), atol=1e-6)
    restored = darn.remove_units(grown, {"gqa/heads": [2], "d": [8, 9]})
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)
    smaller = darn.remove_units(model, {"gqa/heads": [0]})
    old, new = model.get_layer("gqa").weights, smaller.get_layer("gqa").weights
    np.testing.assert_array_equal(new[0].numpy(), old[0].numpy()[:, 2:])  # query heads 0 and 1
    np.testing.assert_array_equal(new[2].numpy(), old[2].numpy()[:, 1:])  # key head 0
    np.testing.assert_array_equal(new[6].numpy(), old[6].numpy()[2:])  # their output rows


def test_resized_attention_model_saves_and_loads(tmp_path):
    model, x = _block()
    smaller = darn.remove_units(model, {"mha/heads": [3], "mha/key_dim": [0], "ffn1": [1]})
    path = str(tmp_path / "small.keras")
    smaller.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded(x).numpy(), smaller(x).numpy())

"""keras-hub backbones built from small configs: FFN units change, the rest stays exact."""

import keras
import numpy as np
import pytest

import keras_darn as darn

keras_hub = pytest.importorskip("keras_hub")

SEQUENCE = 12


def _bert():
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=SEQUENCE,
    )
    return backbone, {"segment_ids": np.zeros((2, SEQUENCE), "int32")}


def _gpt2():
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=SEQUENCE,
    )
    return backbone, {}


def _mistral():
    # Grouped-query attention: 4 query heads share 2 key/value heads.
    backbone = keras_hub.models.MistralBackbone(
        vocabulary_size=50, num_layers=2, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=16, intermediate_dim=32,
    )
    return backbone, {}


BACKBONES = {
    "bert": _bert,
    "gpt2": pytest.param(_gpt2, marks=pytest.mark.slow),
    "mistral": pytest.param(_mistral, marks=pytest.mark.slow),
}


def _inputs(extra):
    rng = np.random.default_rng(0)
    return {
        "token_ids": rng.integers(0, 50, (2, SEQUENCE)).astype("int32"),
        "padding_mask": np.ones((2, SEQUENCE), "int32"),
        **extra,
    }


def _sequence(outputs):
    outputs = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
    return keras.ops.convert_to_numpy(outputs)


def _ffn(model, block):
    layer = model.get_layer(f"transformer_layer_{block}")
    return layer._feedforward_intermediate_dense, layer._feedforward_output_dense


@pytest.mark.parametrize("build", list(BACKBONES.values()), ids=list(BACKBONES))
def test_backbone_feedforward_units_are_removable_and_growable(build):
    backbone, extra = build()
    x = _inputs(extra)
    before = _sequence(backbone(x))
    groups = {tuple(g.layers): g for g in darn.unit_groups(backbone)}
    ffn = groups[("transformer_layer_0/feedforward",)]
    assert ffn.resizable and ffn.size == _ffn(backbone, 0)[0].units
    # Nothing queued: bit for bit.
    np.testing.assert_array_equal(_sequence(darn.Rebuilder(backbone).build()(x)), before)
    # zeros_out growth is exact, and removing the new units gives the weights back.
    grown = darn.add_units(backbone, {"transformer_layer_0/feedforward": 3, "transformer_layer_1/feedforward": 2}, seed=0)
    np.testing.assert_allclose(_sequence(grown(x)), before, atol=1e-6)
    width = ffn.size
    restored = darn.remove_units(grown, {
        "transformer_layer_0/feedforward": [width, width + 1, width + 2],
        "transformer_layer_1/feedforward": [width, width + 1],
    })
    for a, b in zip(backbone.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Removal slices the intermediate projection's columns and the output's rows.
    smaller = darn.remove_units(backbone, {"transformer_layer_1/feedforward": [0, 5]})
    old_in, old_out = _ffn(backbone, 1)
    new_in, new_out = _ffn(smaller, 1)
    np.testing.assert_array_equal(new_in.kernel.numpy(), np.delete(old_in.kernel.numpy(), [0, 5], axis=1))
    np.testing.assert_array_equal(new_out.kernel.numpy(), np.delete(old_out.kernel.numpy(), [0, 5], axis=0))
    assert smaller.get_layer("transformer_layer_1").intermediate_dim == width - 2
    assert smaller.count_params() < backbone.count_params()


@pytest.mark.slow
@pytest.mark.parametrize("build", [_bert, _gpt2, _mistral], ids=["bert", "gpt2", "mistral"])
def test_a_training_step_after_removing_feedforward_units(build):
    backbone, extra = build()
    x = _inputs(extra)
    smaller = darn.remove_units(backbone, {"transformer_layer_0/feedforward": [1, 2, 3]})
    outputs = smaller(x)
    targets = keras.tree.map_structure(lambda t: np.zeros(t.shape, "float32"), outputs)
    smaller.compile(optimizer="adam", loss=keras.tree.map_structure(lambda _: "mse", outputs))
    history = smaller.fit(x, targets, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_gemma_grouped_query_heads_and_feedforward_units():
    # Gemma sets head_dim itself: a unit of "heads" is one key/value head with
    # the two query heads of its group.
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=50, num_layers=2, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=16, intermediate_dim=32, head_dim=8,
    )
    x = _inputs({})
    before = _sequence(backbone(x))
    sizes = {tuple(g.layers): g.size for g in darn.unit_groups(backbone, resizable_only=True)}
    assert sizes[("decoder_block_0/heads",)] == 2 and sizes[("decoder_block_0/feedforward",)] == 16
    plan = {"decoder_block_0/heads": 1, "decoder_block_1/feedforward": 3}
    grown = darn.add_units(backbone, plan, seed=0)
    block = grown.get_layer("decoder_block_0")
    assert (block.num_key_value_heads, block.num_query_heads) == (3, 6)
    np.testing.assert_allclose(_sequence(grown(x)), before, atol=1e-6)
    restored = darn.remove_units(grown, {"decoder_block_0/heads": [2], "decoder_block_1/feedforward": [16, 17, 18]})
    for a, b in zip(backbone.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)
    smaller = darn.remove_units(backbone, {"decoder_block_1/heads": [0]})
    old = backbone.get_layer("decoder_block_1").attention
    new = smaller.get_layer("decoder_block_1").attention
    np.testing.assert_array_equal(new.query_dense.kernel.numpy(), old.query_dense.kernel.numpy()[2:])
    np.testing.assert_array_equal(new.key_dense.kernel.numpy(), old.key_dense.kernel.numpy()[1:])
    np.testing.assert_array_equal(new.output_dense.kernel.numpy(), old.output_dense.kernel.numpy()[2:])
    targets = np.zeros(before.shape, "float32")
    smaller.compile(optimizer="adam", loss="mse")
    assert np.isfinite(smaller.fit(x, targets, epochs=1, verbose=0).history["loss"][0])


def test_attention_heads_and_stream_of_keras_hub_blocks_are_fixed_with_a_reason():
    backbone, _ = _bert()
    with pytest.raises(ValueError, match="hidden_dim // num_heads"):
        darn.remove_units(backbone, {"token_embedding": [0]})


def test_token_and_position_embedding_and_reversible_embedding():
    ids = keras.Input((6,), dtype="int32")
    x = keras_hub.layers.TokenAndPositionEmbedding(20, 6, 5, name="embed")(ids)
    x = keras.layers.Dense(7, name="mix")(x)
    reversible = keras_hub.layers.ReversibleEmbedding(20, 4, tie_weights=False, name="rev")
    y = reversible(ids)
    y = keras_hub.layers.PositionEmbedding(6, name="pos")(y) + y
    x = keras.layers.Concatenate()([x, keras.layers.Dense(3, name="proj")(y)])
    model = keras.Model(ids, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    data = np.random.default_rng(0).integers(0, 20, (3, 6))
    grown = darn.add_units(model, {"embed": 2, "rev": 3}, seed=0)
    assert grown.get_layer("embed").embedding_dim == 7 and grown.get_layer("rev").output_dim == 7
    np.testing.assert_allclose(grown(data).numpy(), model(data).numpy(), atol=1e-6)
    smaller = darn.remove_units(model, {"embed": [1], "rev": [0]})
    old = model.get_layer("embed").token_embedding.embeddings.numpy()
    new = smaller.get_layer("embed").token_embedding.embeddings.numpy()
    np.testing.assert_array_equal(new, np.delete(old, 1, axis=1))
    reverse = np.delete(model.get_layer("rev").reverse_embeddings.numpy(), 0, axis=0)
    np.testing.assert_array_equal(smaller.get_layer("rev").reverse_embeddings.numpy(), reverse)
    position = np.delete(model.get_layer("pos").position_embeddings.numpy(), 0, axis=1)
    np.testing.assert_array_equal(smaller.get_layer("pos").position_embeddings.numpy(), position)

"""keras-hub backbones built from small configs: heads and FFN units change, the rest stays exact."""

import subprocess
import sys

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


def test_the_residual_stream_of_keras_hub_blocks_is_fixed_with_a_reason():
    backbone, _ = _bert()
    with pytest.raises(ValueError, match="residual stream keeps its width"):
        darn.remove_units(backbone, {"token_embedding": [0]})


def test_llama_heads_keep_their_count():
    # Llama derives its head size from hidden_dim // num_query_heads.
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=50, num_layers=1, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=16, intermediate_dim=32,
    )
    names = [name for g in darn.unit_groups(backbone) for name in g.layers]
    assert "transformer_layer_0/feedforward" in names
    assert not [name for name in names if name.endswith("/heads")]
    with pytest.raises(ValueError, match="No layer named 'transformer_layer_0/heads'"):
        darn.remove_units(backbone, {"transformer_layer_0/heads": [0]})


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


# ---- Attention heads ---------------------------------------------------
# (build, block, heads removed, query heads per key/value head)
HEADS = {
    "bert": (_bert, 1, [0], 1),
    "gpt2": (_gpt2, 0, [1], 1),
    "mistral": (_mistral, 1, [0], 2),
}


def _attention(model, block):
    return model.get_layer(f"transformer_layer_{block}")._self_attention_layer


def _zeroed_heads(model, block, heads, group):
    """A copy of `model` whose `heads` write nothing: their rows of the
    output projection (with their whole query group) are zero."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    kernel = _attention(copy, block)._output_dense.kernel
    value = kernel.numpy()
    for head in heads:
        value[head * group:(head + 1) * group] = 0
    kernel.assign(value)
    return copy


@pytest.mark.parametrize("case", list(HEADS.values()), ids=list(HEADS))
def test_backbone_heads_are_removable_exactly(case, tmp_path):
    build, block, heads, group = case
    backbone, extra = build()
    x = _inputs(extra)
    name = f"transformer_layer_{block}/heads"
    width = next(g.size for g in darn.unit_groups(backbone, resizable_only=True) if g.layers == [name])
    smaller = darn.remove_units(backbone, {name: heads})
    # Removing heads equals silencing them in the original.
    expected = _sequence(_zeroed_heads(backbone, block, heads, group)(x))
    np.testing.assert_allclose(_sequence(smaller(x)), expected, atol=1e-6)
    # The kept heads' slices travel exactly; the head size stays.
    old, new = _attention(backbone, block), _attention(smaller, block)
    query_rows = [h * group + k for h in heads for k in range(group)]
    for dense, removed in (("_query_dense", query_rows), ("_key_dense", heads), ("_value_dense", heads)):
        old_kernel, new_kernel = getattr(old, dense).kernel.numpy(), getattr(new, dense).kernel.numpy()
        np.testing.assert_array_equal(new_kernel, np.delete(old_kernel, removed, axis=1))
    output = np.delete(old._output_dense.kernel.numpy(), query_rows, axis=0)
    np.testing.assert_array_equal(new._output_dense.kernel.numpy(), output)
    assert new._output_dense.kernel.shape[1] == old._output_dense.kernel.shape[1]
    assert smaller.count_params() < backbone.count_params()
    # The other block is untouched: keras-hub's own class.
    other = smaller.get_layer(f"transformer_layer_{1 - block}")
    assert type(other) is type(backbone.get_layer(f"transformer_layer_{1 - block}"))
    assert width - len(heads) == next(
        g.size for g in darn.unit_groups(smaller, resizable_only=True) if g.layers == [name]
    )
    # .keras round trip.
    path = str(tmp_path / "smaller.keras")
    smaller.save(path)
    loaded = keras.saving.load_model(path)
    changed = f"transformer_layer_{block}"
    assert type(loaded.get_layer(changed)) is type(smaller.get_layer(changed))
    np.testing.assert_array_equal(_sequence(loaded(x)), _sequence(smaller(x)))
    # A training step.
    outputs = smaller(x)
    targets = keras.tree.map_structure(lambda t: np.zeros(t.shape, "float32"), outputs)
    smaller.compile(optimizer="adam", loss=keras.tree.map_structure(lambda _: "mse", outputs))
    assert np.isfinite(smaller.fit(x, targets, epochs=1, verbose=0).history["loss"][0])


@pytest.mark.parametrize("case", list(HEADS.values()), ids=list(HEADS))
@pytest.mark.parametrize("init", ["zeros_out", "net2net"])
def test_backbone_heads_grow_exactly_and_removal_undoes_it(case, init):
    build, block, _, group = case
    backbone, extra = build()
    x = _inputs(extra)
    before = _sequence(backbone(x))
    name = f"transformer_layer_{block}/heads"
    width = next(g.size for g in darn.unit_groups(backbone, resizable_only=True) if g.layers == [name])
    grown = darn.add_units(backbone, {name: 2}, init=init, seed=0)
    np.testing.assert_allclose(_sequence(grown(x)), before, atol=1e-5)
    old, new = _attention(backbone, block), _attention(grown, block)
    assert new._query_dense.kernel.shape[1] == old._query_dense.kernel.shape[1] + 2 * group
    assert new._query_dense.kernel.shape[2] == old._query_dense.kernel.shape[2]
    if init == "zeros_out":
        # New heads have zero output rows; removing them gives the original back.
        np.testing.assert_array_equal(new._output_dense.kernel.numpy()[-2 * group:], 0)
        restored = darn.remove_units(grown, {name: [width, width + 1]})
        for a, b in zip(backbone.get_weights(), restored.get_weights()):
            np.testing.assert_array_equal(a, b)
        original = backbone.get_layer(f"transformer_layer_{block}")
        assert type(restored.get_layer(f"transformer_layer_{block}")) is type(original)


def test_decoder_cross_attention_heads_go_with_self_attention_heads():
    decoder, encoder = keras.Input((5, 8)), keras.Input((4, 8))
    x = keras_hub.layers.TransformerDecoder(intermediate_dim=16, num_heads=2, name="dec")(decoder, encoder)
    model = keras.Model([decoder, encoder], keras.layers.Dense(3)(x))
    rng = np.random.default_rng(0)
    data = [rng.normal(size=(2, 5, 8)).astype("float32"), rng.normal(size=(2, 4, 8)).astype("float32")]
    smaller = darn.remove_units(model, {"dec/heads": [1]})
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    block = reference.get_layer("dec")
    for attention in (block._self_attention_layer, block._cross_attention_layer):
        value = attention._output_dense.kernel.numpy()
        value[1] = 0
        attention._output_dense.kernel.assign(value)
    np.testing.assert_allclose(smaller(data).numpy(), reference(data).numpy(), atol=1e-6)
    new = smaller.get_layer("dec")
    assert new.num_heads == 1 and new.head_dim == 4
    assert new._cross_attention_layer._value_dense.kernel.shape == (8, 1, 4)


def test_more_heads_than_stream_channels_is_refused():
    backbone, _ = _bert()
    with pytest.raises(ValueError, match="at most as many heads as channels"):
        darn.add_units(backbone, {"transformer_layer_0/heads": 7})


@pytest.mark.slow
def test_a_model_with_head_sized_blocks_loads_with_only_keras_darn_imported(tmp_path):
    backbone, extra = _gpt2()
    smaller = darn.remove_units(backbone, {"transformer_layer_0/heads": [0]})
    path = str(tmp_path / "smaller.keras")
    smaller.save(path)
    script = (
        "import sys, keras, keras_darn\n"
        "assert 'keras_darn.graph.keras_hub_blocks' not in sys.modules\n"
        f"model = keras.saving.load_model({path!r})\n"
        "print(type(model.get_layer('transformer_layer_0')).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("HeadSizedTransformerDecoder")


@pytest.mark.slow
def test_a_backbone_with_removed_heads_converts_to_tflite():
    backbone, extra = _gpt2()
    smaller = darn.remove_units(backbone, {"transformer_layer_1/heads": [0]})
    x = _inputs(extra)
    tflite = darn.export.to_tflite(smaller)
    np.testing.assert_allclose(darn.export.tflite_predict(tflite, x), _sequence(smaller(x)), atol=1e-4)


@pytest.mark.parametrize("make", [_bert, _gpt2])
def test_head_sized_blocks_unfold_into_plain_keras_layers(make, tmp_path):
    backbone, extra = make()
    smaller = darn.remove_units(backbone, {"transformer_layer_0/heads": [1]}, compile=False)
    plain = darn.rebuild.unfold_blocks(smaller)
    assert not [layer for layer in plain.layers if type(layer).__module__.startswith("keras_darn")]
    attention = plain.get_layer("transformer_layer_0")
    assert type(attention) is keras.layers.MultiHeadAttention
    assert (attention.num_heads, attention.key_dim) == (1, 4)
    # Padded positions are masked as the block masked them.
    x = _inputs(extra)
    x["padding_mask"] = np.array([[1] * 9 + [0] * 3, [1] * 5 + [0] * 7], "int32")
    np.testing.assert_allclose(_sequence(plain(x)), _sequence(smaller(x)), rtol=1e-6, atol=1e-6)
    # A model without such a block is handed back as it is.
    assert darn.rebuild.unfold_blocks(backbone) is backbone
    # The Rebuilder reads the unfolded model: its heads are a group again.
    groups = {g.layers[0]: g.size for g in darn.unit_groups(plain) if g.resizable}
    assert groups["transformer_layer_0/heads"] == 1


def test_a_block_with_cross_attention_stays_head_sized_and_says_so():
    decoder_in, encoder_in = keras.Input((5, 8)), keras.Input((7, 8))
    block = keras_hub.layers.TransformerDecoder(intermediate_dim=16, num_heads=2, name="dec")
    model = keras.Model([decoder_in, encoder_in], block(decoder_in, encoder_in))
    smaller = darn.remove_units(model, {"dec/heads": [0]}, compile=False)
    with pytest.warns(UserWarning, match=r"'dec' stays a HeadSizedTransformerDecoder .*"
                                         r"cross-attention"):
        plain = darn.rebuild.unfold_blocks(smaller)
    assert type(plain.get_layer("dec")).__name__ == "HeadSizedTransformerDecoder"

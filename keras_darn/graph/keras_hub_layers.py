"""Unit handlers of keras-hub's layers (an optional extra: `pip install keras_darn[hub]`).

keras-hub is never imported by keras_darn itself: these registrations are
made the first time the graph meets a layer from the `keras_hub` package.

- `TransformerEncoder`, `TransformerDecoder` (BERT, GPT-2, ...) and the
  gated decoders of Llama and Mistral (grouped-query attention): the hidden
  units of the feed-forward network are units, named
  `"<block>/feedforward"` (the gate and intermediate projections of a gated
  network change together). A new unit gets random incoming and zero
  outgoing weights, so the block computes the same function. The residual
  stream and the attention heads keep their width: these blocks derive their
  head size from `hidden_dim // num_heads`, so one head fewer would resize
  every other head.
- `GemmaDecoderBlock`: Gemma sets `head_dim` itself, so its heads are
  units too: `"<block>/heads"` (one key/value head with the query heads of
  its group, for grouped-query attention) and `"<block>/feedforward"`.
- `PositionEmbedding`: passes the channels of its input (its embeddings are
  sliced along the feature axis).
- `ReversibleEmbedding` (Keras' and keras-hub's): a producer like `Embedding`; called with
  `reverse=True` (the projection back onto the vocabulary) its units are
  fixed, since the reverse projection reads the same matrix.
- `TokenAndPositionEmbedding`: a producer of `embedding_dim` units (token
  and position embeddings sliced together).
"""

import keras

from keras_darn.graph.composite import CompositeHandler
from keras_darn.graph.handlers import IN
from keras_darn.graph.handlers import LayerHandler
from keras_darn.graph.handlers import PassThroughHandler
from keras_darn.graph.handlers import ProducerHandler
from keras_darn.graph.registry import register_layer
from keras_darn.graph.registry import register_lazily
from keras_darn.graph.unit_axes import OWN
from keras_darn.graph.unit_axes import UnitAxis
from keras_darn.graph.unit_axes import part_of

_FEEDFORWARD = "part:feedforward"
_STREAM_REASON = (
    "keras-hub derives its attention head size from hidden_dim // num_heads, so its "
    "residual stream and its heads keep their width"
)


def transformer_block_handler(gated=False):
    """The handler of a keras-hub transformer block with a feed-forward network."""
    producers = ["_feedforward_gate_dense"] if gated else []
    producers.append("_feedforward_intermediate_dense")
    parts = [(name, "in", _FEEDFORWARD) for name in producers]
    parts.append(("_feedforward_output_dense", _FEEDFORWARD, None))
    return CompositeHandler(parts, {_FEEDFORWARD: "intermediate_dim"}, _STREAM_REASON)


class ReversibleEmbeddingHandler(ProducerHandler):
    """`ReversibleEmbedding`: an `Embedding`, fixed where it projects back."""

    def __init__(self):
        super().__init__("output_dim", {"embeddings": {1: "out"}}, consumes_channels=False)

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        if len(output_shapes[0]) == len(input_shapes[0]) + 1:
            return super().propagate(layer, inputs, input_shapes, output_shapes, trace)
        reason = (
            f"layer '{layer.name}' (ReversibleEmbedding) projects back onto the vocabulary "
            "with its own matrix"
        )
        trace.fix(trace.space(layer, layer.output_dim), reason)
        return self.fix_all(inputs, output_shapes, trace, reason)

    def variable_axes(self, layer):
        return _embedding_axes(layer)


def _embedding_axes(layer):
    pairs = [(layer.embeddings, {1: OWN})]
    if not layer.tie_weights:
        pairs.append((layer.reverse_embeddings, {0: UnitAxis(OWN, role="outgoing")}))
    return pairs


class TokenAndPositionEmbeddingHandler(ProducerHandler):
    """`TokenAndPositionEmbedding`: `embedding_dim` units of both tables."""

    def __init__(self):
        super().__init__("embedding_dim", {}, consumes_channels=False)

    def variable_axes(self, layer):
        position = layer.position_embedding.position_embeddings
        return _embedding_axes(layer.token_embedding) + [(position, {1: OWN})]


class GemmaBlockHandler(LayerHandler):
    """Gemma's decoder block: key/value heads and feed-forward units.

    Gemma sets `head_dim` in its config, so heads can go or come without
    resizing the others. With grouped-query attention a unit of
    `"<block>/heads"` is one key/value head together with the
    `num_query_heads // num_key_value_heads` query heads that read it (their
    query, key and value kernels, and their rows of the output projection);
    a unit of `"<block>/feedforward"` is one hidden unit of the gated
    feed-forward network (both gate projections and the output projection).
    """

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        reason = (
            f"layer '{layer.name}' ({type(layer).__name__}): its residual stream keeps its "
            "width (its config's hidden_dim sizes its normalizations and projections)"
        )
        for channels in inputs:
            trace.fix(channels, reason)
        trace.consume(layer, inputs[0])
        trace.space(part_of(layer, "heads"), layer.num_key_value_heads)
        trace.space(part_of(layer, "feedforward"), layer.intermediate_dim // 2)
        return [inputs[0]] + [trace.fixed_channels(s[-1], reason) for s in output_shapes[1:]]

    def variable_axes(self, layer):
        attention = layer.attention
        group = layer.num_query_heads // layer.num_key_value_heads
        query = UnitAxis("part:heads", repeat=group, role="incoming")
        shared = UnitAxis("part:heads", role="incoming")
        hidden = UnitAxis(_FEEDFORWARD, role="incoming")
        return [
            (attention.query_dense.kernel, {0: query}),
            (attention.key_dense.kernel, {0: shared}),
            (attention.value_dense.kernel, {0: shared}),
            (attention.output_dense.kernel, {0: UnitAxis("part:heads", repeat=group, role="outgoing")}),
            (layer.gating_ffw.kernel, {1: hidden}),
            (layer.gating_ffw_2.kernel, {1: hidden}),
            (layer.ffw_linear.kernel, {0: UnitAxis(_FEEDFORWARD, role="outgoing")}),
        ]

    def planned_config(self, layer, config, plan):
        group = layer.num_query_heads // layer.num_key_value_heads
        heads, hidden = plan.width("part:heads"), plan.width(_FEEDFORWARD)
        if heads is not None:
            config["num_key_value_heads"] = heads
            config["num_query_heads"] = heads * group
        if hidden is not None:
            config["intermediate_dim"] = 2 * hidden
        return config


def register():
    """Registers the handlers of keras-hub's layers (imports keras_hub)."""
    import keras_hub

    layers = keras_hub.layers
    for block in (layers.TransformerEncoder, layers.TransformerDecoder):
        register_layer(block, handler=transformer_block_handler())
    from keras_hub.src.models.llama.llama_decoder import LlamaTransformerDecoder
    from keras_hub.src.models.mistral.mistral_transformer_decoder import MistralTransformerDecoder

    for block in (LlamaTransformerDecoder, MistralTransformerDecoder):
        register_layer(block, handler=transformer_block_handler(gated=True))
    from keras_hub.src.models.gemma.gemma_decoder_block import GemmaDecoderBlock

    register_layer(GemmaDecoderBlock, handler=GemmaBlockHandler())
    register_layer(
        layers.PositionEmbedding,
        handler=PassThroughHandler({"position_embeddings": {1: IN}}, constant_rule="none"),
    )
    register_layer(layers.TokenAndPositionEmbedding, handler=TokenAndPositionEmbeddingHandler())


# Keras' own ReversibleEmbedding (keras-hub's subclasses it) needs no keras-hub.
register_layer(keras.layers.ReversibleEmbedding, handler=ReversibleEmbeddingHandler())
register_lazily("keras_hub", register)

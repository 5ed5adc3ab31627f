"""Unit handlers of keras-hub's layers (an optional extra: `pip install keras_darn[hub]`).

This module does not import keras-hub: the handlers are registered by
`keras_darn.graph.keras_hub_blocks`, which imports it, the first time the
graph meets a layer from the `keras_hub` package.

- `TransformerEncoder`, `TransformerDecoder` (BERT, GPT-2, ...): whole
  attention heads are units, named `"<block>/heads"` (a head is its slices
  of the query, key and value kernels and biases and its rows of the output
  projection; a decoder's self- and cross-attention share `num_heads`, so
  head `i` of both is one unit), and so are the hidden units of the
  feed-forward network, `"<block>/feedforward"`. A new head or unit gets
  random incoming and zero outgoing weights, so the block computes the same
  function. These blocks derive their head size as `hidden_dim // num_heads`:
  a block whose heads change keeps its head size by coming back as
  `HeadSizedTransformerEncoder` / `HeadSizedTransformerDecoder`
  (`keras_darn.graph.keras_hub_blocks`), the same block with `head_dim` in
  its config. A model holding one saves to `.keras` and loads with
  `keras.saving.load_model` once `keras_darn` is imported (keras-hub
  installed), with no `custom_objects`; blocks whose heads keep their count
  stay keras-hub's own classes.
- The gated decoders of Mistral and Llama (grouped-query attention): the
  hidden units of the feed-forward network are units (the gate and
  intermediate projections change together). Mistral sets `head_dim` in its
  config, so its heads are units too: `"<block>/heads"`, one key/value head
  with the `num_query_heads // num_key_value_heads` query heads of its group
  (the group size is kept). Llama derives its head size from
  `hidden_dim // num_query_heads`, so its heads keep their count.
- The residual stream of every block keeps its width: keras-hub sizes a
  block's normalizations and output projections from its input.
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

import importlib

import keras

from keras_darn.graph.composite import CompositeHandler
from keras_darn.graph.handlers import LayerHandler
from keras_darn.graph.handlers import ProducerHandler
from keras_darn.graph.registry import register_layer
from keras_darn.graph.registry import register_lazily
from keras_darn.graph.unit_axes import OWN
from keras_darn.graph.unit_axes import UnitAxis
from keras_darn.graph.unit_axes import part_of

_FEEDFORWARD = "part:feedforward"
_HEADS = "part:heads"
_STREAM_REASON = (
    "its residual stream keeps its width (keras-hub sizes the block's normalizations "
    "and output projections from its input)"
)
# Where keras-hub's blocks keep their attention layers.
_ATTENTION_ATTRIBUTES = ("_self_attention_layer", "_cross_attention_layer")


def transformer_block_handler(gated=False):
    """The handler of a keras-hub transformer block with a feed-forward network."""
    producers = ["_feedforward_gate_dense"] if gated else []
    producers.append("_feedforward_intermediate_dense")
    parts = [(name, "in", _FEEDFORWARD) for name in producers]
    parts.append(("_feedforward_output_dense", _FEEDFORWARD, None))
    return CompositeHandler(parts, {_FEEDFORWARD: "intermediate_dim"}, _STREAM_REASON)


def _head_axes(attention, group=1):
    """`[(variable, axes)]` of the heads of an attention layer whose query,
    key, value and output projections keep heads on axes 1, 1, 1 and 0
    (`group` query heads per key/value head)."""
    pairs = []
    for dense, repeat in ((attention._query_dense, group), (attention._key_dense, 1),
                          (attention._value_dense, 1)):
        pairs.append((dense.kernel, {1: UnitAxis(_HEADS, repeat=repeat, role="incoming")}))
        if dense.bias is not None:
            pairs.append((dense.bias, {0: UnitAxis(_HEADS, repeat=repeat, role="vector")}))
    output = UnitAxis(_HEADS, repeat=group, role="outgoing")
    return pairs + [(attention._output_dense.kernel, {0: output})]


class TransformerBlockHandler(CompositeHandler):
    """keras-hub's `TransformerEncoder`/`TransformerDecoder`: heads and FFN units.

    A unit of `"<block>/heads"` is one head of the block's self-attention
    (with the same head of its cross-attention, if any); a unit of
    `"<block>/feedforward"` a hidden unit of its feed-forward network. A
    block whose head size no longer follows from `hidden_dim // num_heads`
    is rebuilt as the class `head_sized` maps its keras-hub class to, which
    takes `head_dim` in its config and builds the same variables.

    Args:
        head_sized: `{keras-hub block class: its head-sized subclass}`.
    """

    def __init__(self, head_sized):
        base = transformer_block_handler()
        super().__init__(base.parts, base.config_widths, base.stream_reason)
        self.head_sized = dict(head_sized)

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        outputs = super().propagate(layer, inputs, input_shapes, output_shapes, trace)
        trace.space(part_of(layer, "heads"), layer.num_heads)
        return outputs

    def variable_axes(self, layer):
        pairs = super().variable_axes(layer)
        for name in _ATTENTION_ATTRIBUTES:
            if getattr(layer, name, None) is not None:
                pairs += _head_axes(getattr(layer, name))
        return pairs

    def planned_config(self, layer, config, plan):
        config = super().planned_config(layer, config, plan)
        heads = plan.width(_HEADS)
        if heads is None:
            return config
        attention = layer._self_attention_layer
        hidden, head_dim = attention._output_dense.kernel.shape[-1], attention.key_dim
        if heads > hidden:
            raise ValueError(
                f"Layer '{layer.name}' ({type(layer).__name__}) would get {heads} attention "
                f"heads on a stream of {hidden} channels; keras-hub's block allows at most "
                "as many heads as channels."
            )
        config["num_heads"] = heads
        config.pop("head_dim", None)
        if hidden // heads != head_dim:
            config["head_dim"] = head_dim
        return config

    def planned_class(self, layer, cls, config):
        """keras-hub's class, or its head-sized subclass where `head_dim` is set."""
        base = next(c for c in type(layer).__mro__ if c in self.head_sized)
        return self.head_sized[base] if "head_dim" in config else base


class GatedDecoderHandler(CompositeHandler):
    """Mistral's decoder block: key/value heads (with their query heads) and
    gated feed-forward units. Mistral's config holds `head_dim`, so its
    heads change without resizing the others."""

    def __init__(self):
        base = transformer_block_handler(gated=True)
        super().__init__(base.parts, base.config_widths, base.stream_reason)

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        outputs = super().propagate(layer, inputs, input_shapes, output_shapes, trace)
        trace.space(part_of(layer, "heads"), layer.num_key_value_heads)
        return outputs

    def variable_axes(self, layer):
        group = layer.num_query_heads // layer.num_key_value_heads
        return super().variable_axes(layer) + _head_axes(layer._self_attention_layer, group)

    def planned_config(self, layer, config, plan):
        config = super().planned_config(layer, config, plan)
        heads = plan.width(_HEADS)
        if heads is not None:
            group = layer.num_query_heads // layer.num_key_value_heads
            config["num_key_value_heads"] = heads
            config["num_query_heads"] = heads * group
            config["head_dim"] = layer._self_attention_layer._head_dim
        return config


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


# The module that imports keras-hub and registers its layers' handlers.
KERAS_HUB_REGISTRATIONS = "keras_darn.graph.keras_hub_blocks"


class _HeadSizedBlockLoader:
    """Stands in Keras' registry for a head-sized block until its module
    (which imports keras-hub) is imported, so `.keras` files holding one load
    with keras_darn imported; the module's own registration replaces it."""

    block_name = None

    @classmethod
    def from_config(cls, config):
        blocks = importlib.import_module(KERAS_HUB_REGISTRATIONS)
        return getattr(blocks, cls.block_name).from_config(config)


for _name in ("HeadSizedTransformerEncoder", "HeadSizedTransformerDecoder"):
    keras.saving.get_custom_objects().setdefault(
        f"keras_darn>{_name}", type(_name, (_HeadSizedBlockLoader,), {"block_name": _name})
    )

# Keras' own ReversibleEmbedding (keras-hub's subclasses it) needs no keras-hub.
register_layer(keras.layers.ReversibleEmbedding, handler=ReversibleEmbeddingHandler())
register_lazily("keras_hub", KERAS_HUB_REGISTRATIONS)

"""keras-hub transformer blocks with an explicit attention head size.

keras-hub's `TransformerEncoder` and `TransformerDecoder` (BERT, GPT-2, ...)
derive their head size as `hidden_dim // num_heads` when they are built, so
a block with a head removed or added cannot be written in their own config
without resizing every other head. Where the Rebuilder changes a block's
heads (and the head size would no longer follow from the count), the block
comes back as `HeadSizedTransformerEncoder` or `HeadSizedTransformerDecoder`:
the same layer, with the same variables in the same order, whose config
also holds `head_dim`. Blocks whose heads do not change stay keras-hub's own
classes.

These classes are registered as `keras_darn>HeadSizedTransformerEncoder`
and `keras_darn>HeadSizedTransformerDecoder`: a `.keras` file holding one
loads with `keras.saving.load_model` once `keras_darn` is imported (keras-hub
must be installed; it is imported when such a file is read).

`unfold_head_sized_blocks(model)` writes each such block out as the plain
Keras layers it is made of (its `MultiHeadAttention`, normalizations,
dropouts, feed-forward `Dense` layers and the residual `Add`s), with the
same weights and outputs: the methods hand back that model, which loads
without keras_darn.

This module imports keras-hub and registers the handlers of its layers
(`keras_darn.graph.keras_hub_layers`) when imported; keras_darn imports it
only when a model holds keras-hub layers or a `.keras` file names one of
these classes.
"""

import warnings

import keras
from keras_hub.layers import PositionEmbedding
from keras_hub.layers import TokenAndPositionEmbedding
from keras_hub.layers import TransformerDecoder
from keras_hub.layers import TransformerEncoder
from keras_hub.src.models.gemma.gemma_decoder_block import GemmaDecoderBlock
from keras_hub.src.models.llama.llama_decoder import LlamaTransformerDecoder
from keras_hub.src.models.mistral.mistral_transformer_decoder import MistralTransformerDecoder

from keras_darn.graph import registry
from keras_darn.graph.handlers import IN
from keras_darn.graph.handlers import PassThroughHandler
from keras_darn.graph.keras_hub_layers import GatedDecoderHandler
from keras_darn.graph.keras_hub_layers import GemmaBlockHandler
from keras_darn.graph.keras_hub_layers import TokenAndPositionEmbeddingHandler
from keras_darn.graph.keras_hub_layers import TransformerBlockHandler
from keras_darn.graph.keras_hub_layers import transformer_block_handler

# The attributes the blocks build their attention layers into.
_ATTENTION_ATTRIBUTES = ("_self_attention_layer", "_cross_attention_layer")


class _HeadSized:
    """Builds the block's attention layers with `head_dim` per head."""

    def __init__(self, *args, head_dim, **kwargs):
        if not isinstance(head_dim, int) or isinstance(head_dim, bool) or head_dim < 1:
            raise ValueError(
                "Received an invalid value for `head_dim`, expected a positive integer. "
                f"Received: head_dim={head_dim!r}"
            )
        # Set before the base class's __init__, which may build the layer.
        self.head_dim = head_dim
        super().__init__(*args, **kwargs)

    def __setattr__(self, name, value):
        # The base class's `build` makes each attention layer with
        # `key_dim=hidden_dim // num_heads` and builds it on the next line;
        # the unbuilt layer is swapped here for one with the explicit size,
        # so the rest of keras-hub's `build` (and `call`) runs unchanged.
        if (
            name in _ATTENTION_ATTRIBUTES
            and isinstance(value, keras.layers.MultiHeadAttention)
            and not value.built
        ):
            config = value.get_config()
            config["key_dim"] = config["value_dim"] = self.head_dim
            value = type(value).from_config(config)
        super().__setattr__(name, value)

    def get_config(self):
        return {**super().get_config(), "head_dim": self.head_dim}


@keras.saving.register_keras_serializable(package="keras_darn")
class HeadSizedTransformerEncoder(_HeadSized, TransformerEncoder):
    """keras-hub's `TransformerEncoder` with `head_dim` channels per head.

    Args:
        intermediate_dim: the hidden size of the feed-forward network.
        num_heads: the number of attention heads.
        head_dim: the query, key and value size of every head (keras-hub's
            own block uses `hidden_dim // num_heads`).
        **kwargs: the other arguments of `keras_hub.layers.TransformerEncoder`.

    Example:

    ```python
    block = HeadSizedTransformerEncoder(intermediate_dim=16, num_heads=3, head_dim=4)
    outputs = block(np.zeros((2, 5, 8), "float32"))  # 3 heads of 4 on 8 channels
    ```
    """


@keras.saving.register_keras_serializable(package="keras_darn")
class HeadSizedTransformerDecoder(_HeadSized, TransformerDecoder):
    """keras-hub's `TransformerDecoder` with `head_dim` channels per head.

    Its self-attention and cross-attention (if any) both have `num_heads`
    heads of `head_dim` channels.

    Args:
        intermediate_dim: the hidden size of the feed-forward network.
        num_heads: the number of attention heads.
        head_dim: the query, key and value size of every head (keras-hub's
            own block uses `hidden_dim // num_heads`).
        **kwargs: the other arguments of `keras_hub.layers.TransformerDecoder`.

    Example:

    ```python
    block = HeadSizedTransformerDecoder(intermediate_dim=16, num_heads=3, head_dim=4)
    outputs = block(np.zeros((2, 5, 8), "float32"))
    ```
    """


_UNFOLDED = ("_self_attention_layer_norm", "_self_attention_dropout", "_feedforward_layer_norm",
             "_feedforward_intermediate_dense", "_feedforward_output_dense", "_feedforward_dropout")


def unfold_head_sized_blocks(model):
    """`model` with every head-sized block written as plain Keras layers.

    A `HeadSizedTransformerEncoder` or `HeadSizedTransformerDecoder` called
    on the top-level graph becomes its attention layer (a
    `keras.layers.MultiHeadAttention` with the block's name and its heads of
    `head_dim`, its padding mask passed as `value_mask`, causal in a
    decoder), its `LayerNormalization`, `Dropout` and `Dense` layers (named
    `<block>_<part>`) and two `Add` layers for the residuals, in the order
    the block computes them, with the block's weights. The other layers are
    reused, not copied. A block called with what plain layers cannot take
    (a custom attention mask, cross-attention, a cache) is kept, with a
    warning.

    Args:
        model: a functional `keras.Model`, typically a rebuilt one.

    Returns:
        `model` itself when it holds no head-sized block, else a new
        functional model with the same outputs.

    Example:

    ```python
    small = unfold_head_sized_blocks(darn.remove_units(bert, {"transformer_layer_0/heads": [0]}))
    ```
    """
    if isinstance(model, keras.Sequential) or not isinstance(model, keras.Function):
        return model
    if not any(isinstance(layer, _HeadSized) for layer in model.layers):
        return model

    def call(layer, *args, **kwargs):
        if isinstance(layer, _HeadSized):
            unfolded = _unfolded_call(layer, args, kwargs)
            if unfolded is not None:
                return unfolded
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)


def _unfolded_call(block, args, kwargs):
    """The block's computation on `args` with plain layers, or `None` where it cannot be."""
    kwargs = dict(kwargs)
    kwargs.pop("training", None)
    decoder = isinstance(block, TransformerDecoder)
    sequence = args[0] if args else kwargs.pop("decoder_sequence" if decoder else "inputs")
    mask_name = "decoder_padding_mask" if decoder else "padding_mask"
    padding_mask = kwargs.pop(mask_name, None)
    causal = bool(kwargs.pop("use_causal_mask", True)) if decoder else False
    given = [name for name, value in kwargs.items() if value is not None and value is not False]
    if len(args) > 1 or (decoder and block._cross_attention_layer is not None):
        given.append("cross-attention")
    if given:
        warnings.warn(
            f"Layer '{block.name}' stays a {type(block).__name__} (a keras_darn class: a .keras "
            f"file holding it loads once keras_darn is imported): it is called with {given}, "
            "which its plain Keras layers do not take.", stacklevel=3)
        return None

    def copy(layer, name, cls=None):
        config = {**layer.get_config(), "name": name}
        return (cls or type(layer)).from_config(config)

    attention = copy(block._self_attention_layer, block.name, keras.layers.MultiHeadAttention)
    parts = {attribute: copy(getattr(block, attribute), f"{block.name}{attribute}")
             for attribute in _UNFOLDED}
    first = block.normalize_first
    x = sequence
    residual = x
    if first:
        x = parts["_self_attention_layer_norm"](x)
    x = attention(query=x, value=x, value_mask=padding_mask, use_causal_mask=causal)
    x = parts["_self_attention_dropout"](x)
    x = keras.layers.Add(name=f"{block.name}_self_attention_residual")([x, residual])
    if not first:
        x = parts["_self_attention_layer_norm"](x)
    residual = x
    if first:
        x = parts["_feedforward_layer_norm"](x)
    x = parts["_feedforward_intermediate_dense"](x)
    x = parts["_feedforward_output_dense"](x)
    x = parts["_feedforward_dropout"](x)
    x = keras.layers.Add(name=f"{block.name}_feedforward_residual")([x, residual])
    if not first:
        x = parts["_feedforward_layer_norm"](x)
    attention.set_weights(block._self_attention_layer.get_weights())
    for attribute, layer in parts.items():
        layer.set_weights(getattr(block, attribute).get_weights())
    return x


HEAD_SIZED = {
    TransformerEncoder: HeadSizedTransformerEncoder,
    TransformerDecoder: HeadSizedTransformerDecoder,
}



def _register_keras_hub_layers():
    """Registers the handlers of keras-hub's layers."""
    for block in (TransformerEncoder, TransformerDecoder):
        registry.register_layer(block, handler=TransformerBlockHandler(HEAD_SIZED))
    registry.register_layer(LlamaTransformerDecoder, handler=transformer_block_handler(gated=True))
    registry.register_layer(MistralTransformerDecoder, handler=GatedDecoderHandler())
    registry.register_layer(GemmaDecoderBlock, handler=GemmaBlockHandler())
    registry.register_layer(
        PositionEmbedding,
        handler=PassThroughHandler({"position_embeddings": {1: IN}}, constant_rule="none"),
        flops=lambda layer, inputs, outputs: 0,  # a slice of its table: no arithmetic
    )
    registry.register_layer(TokenAndPositionEmbedding, handler=TokenAndPositionEmbeddingHandler())


_register_keras_hub_layers()

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

This module imports keras-hub; keras_darn imports it only when a model holds
keras-hub layers or a `.keras` file names one of these classes.
"""

import keras
from keras_hub.layers import TransformerDecoder
from keras_hub.layers import TransformerEncoder

from keras_darn.graph import registry

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


HEAD_SIZED = {
    TransformerEncoder: HeadSizedTransformerEncoder,
    TransformerDecoder: HeadSizedTransformerDecoder,
}

# A model holding these blocks is described by keras-hub's registrations
# (made lazily, the first time a keras-hub class is described).
registry.describe(TransformerEncoder)

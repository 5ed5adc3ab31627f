"""Plain Keras equivalents of masked layers, for export."""

from keras_darn.graph import registry


def plain_equivalent(layer):
    """`(plain_class, config)` for a layer registered with a plain form, else None.

    See `keras_darn.graph.register_layer(..., plain_layer=...)`.
    """
    plain_layer = registry.describe(layer).plain_layer
    return None if plain_layer is None else plain_layer(layer)

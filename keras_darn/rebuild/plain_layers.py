"""Plain Keras equivalents of keras_darn's masked layers, for export."""

import inspect


def _equivalents():
    from keras_darn.layers import PrunableConv2D
    from keras_darn.layers import PrunableDense

    import keras

    return {PrunableDense: keras.layers.Dense, PrunableConv2D: keras.layers.Conv2D}


def plain_equivalent(layer):
    """`(plain_class, config)` for a prunable layer, or None for others.

    The config keeps every argument the plain class accepts and drops the
    mask options.
    """
    try:
        equivalents = _equivalents()
    except ImportError:
        return None
    plain = equivalents.get(type(layer))
    if plain is None:
        return None
    extra = set(inspect.signature(type(layer).__init__).parameters) - set(
        inspect.signature(plain.__init__).parameters
    )
    config = {k: v for k, v in layer.get_config().items() if k not in extra}
    return plain, config

"""What the core knows about each layer type, from one registration per class.

A layer type describes itself to the core with `register_layer`, next to the
layer's own code:

- its unit handler (`keras_darn.graph.handlers`): how unit indices move
  through it and which axes of which weights index units, so that the graph
  couples its units and the Rebuilder slices or grows its weights;
- its bookkeeping weights: weights that record state for a method (masks,
  accumulated statistics) and are no parameters of the function, so that
  `count_params` leaves them out;
- the plain Keras layer it becomes when `shrink` exports a model;
- its FLOP count per example, for `count_flops`;
- what it outputs (`keras_darn.graph.output_bounds`): a bound of its output
  given its inputs' bounds, and whether it is 0 for every input <= 0.

Lookups search the layer's class hierarchy, so a subclass inherits what its
nearest registered base says, field by field.
"""

import dataclasses
import importlib

import keras

from keras_darn.graph.handlers import LayerHandler


@dataclasses.dataclass(frozen=True)
class LayerDescription:
    """What a layer type tells the core about itself (see `register_layer`)."""

    handler: LayerHandler = None
    bookkeeping_weights: tuple = None
    plain_layer: object = None
    flops: object = None
    output_bound: object = None
    zeroes_nonpositive: object = None


_REGISTRY = {}
_FIELDS = tuple(field.name for field in dataclasses.fields(LayerDescription))
_UNKNOWN_HANDLER = LayerHandler()


def register_layer(
    layer_class, handler=None, bookkeeping_weights=None, plain_layer=None, flops=None,
    output_bound=None, zeroes_nonpositive=None,
):
    """Describes a layer type to the core (its subclasses included).

    Fields left `None` keep what an earlier registration of the same class
    said, or what its base classes say.

    Args:
        layer_class: a `keras.layers.Layer` subclass.
        handler: a `keras_darn.graph.handlers.LayerHandler` telling how unit
            indices move through the layer. Defaults to `None`.
        bookkeeping_weights: names of the layer's weights that are
            bookkeeping (masks, statistics), not parameters. Defaults to
            `None`.
        plain_layer: a callable `plain_layer(layer) -> (class, config)`
            giving the plain Keras layer it becomes on export. Defaults to
            `None`.
        flops: a callable `flops(layer, input_shapes, output_shapes)`
            returning the FLOPs of one call per example (shapes include the
            batch axis). Defaults to `None`.
        output_bound: a callable `output_bound(layer, known)` returning `s`
            when the layer's output lies in [0, s] given the bounds `known`
            of its inputs (`None` for an input not known to be bounded), or
            `None` (see `keras_darn.graph.output_bounds`).
            Defaults to `None`.
        zeroes_nonpositive: a callable `zeroes_nonpositive(layer)` returning
            whether the layer maps every input value v <= 0 to exactly 0,
            element by element, as ReLU does (see
            `keras_darn.graph.output_bounds.zeroes_nonpositive`). Defaults
            to `None`.

    Raises:
        ValueError: if `layer_class` is not a layer class, or a field has
            the wrong type.

    Example:

    ```python
    darn.graph.register_layer(
        MyDense,
        handler=darn.graph.ProducerHandler(
            "units", {"kernel": {0: "in", 1: "out"}, "bias": {0: "out"}}),
        flops=lambda layer, inputs, outputs: 2 * inputs[0][-1] * outputs[0][-1],
    )
    ```
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise ValueError(
            "Expected `layer_class` to be a subclass of keras.layers.Layer. "
            f"Received: layer_class={layer_class!r}"
        )
    if handler is not None and not isinstance(handler, LayerHandler):
        raise ValueError(f"Expected `handler` to be a LayerHandler. Received: handler={handler!r}")
    for name, value in (("plain_layer", plain_layer), ("flops", flops),
                        ("output_bound", output_bound),
                        ("zeroes_nonpositive", zeroes_nonpositive)):
        if value is not None and not callable(value):
            raise ValueError(f"Expected `{name}` to be callable. Received: {name}={value!r}")
    if bookkeeping_weights is not None:
        if isinstance(bookkeeping_weights, str) or not all(
            isinstance(n, str) for n in bookkeeping_weights
        ):
            raise ValueError(
                "Expected `bookkeeping_weights` to be a list of weight names. "
                f"Received: bookkeeping_weights={bookkeeping_weights!r}"
            )
        bookkeeping_weights = tuple(bookkeeping_weights)
    old = _REGISTRY.get(layer_class, LayerDescription())
    new = dict(
        handler=handler,
        bookkeeping_weights=bookkeeping_weights,
        plain_layer=plain_layer,
        flops=flops,
        output_bound=output_bound,
        zeroes_nonpositive=zeroes_nonpositive,
    )
    _REGISTRY[layer_class] = LayerDescription(
        **{k: (v if v is not None else getattr(old, k)) for k, v in new.items()}
    )


_LAZY = {}


def register_lazily(module_prefix, module_name):
    """Imports `module_name` the first time a layer from `module_prefix` is described.

    Registrations for an optional package (keras-hub) live in a module that
    imports it and registers its layers when imported; that module is
    imported only once a model holds one of the package's layers, so the
    package is never imported before.
    """
    _LAZY[module_prefix] = module_name


def _load_lazy(cls):
    for prefix in [p for p in _LAZY if cls.__module__.startswith(p)]:
        importlib.import_module(_LAZY.pop(prefix))


def describe(layer):
    """The `LayerDescription` of a layer (or layer class), field by field
    from its nearest registered class."""
    cls = layer if isinstance(layer, type) else type(layer)
    if _LAZY:
        _load_lazy(cls)
    found = {}
    for base in cls.__mro__:
        description = _REGISTRY.get(base)
        if description is None:
            continue
        for field in _FIELDS:
            value = getattr(description, field)
            if field not in found and value is not None:
                found[field] = value
    return LayerDescription(**found)


def get_handler(layer):
    """The unit handler registered for the layer's class or its nearest base."""
    return describe(layer).handler or _UNKNOWN_HANDLER


def fresh_copy(layer):
    """A new, unbuilt layer like `layer`, for cloning a model.

    Lambda layers and op nodes are carried by their handler (the same
    function, never a round trip through a config, which Keras' safe mode
    refuses for a Lambda); other layers are made from their config.
    """
    carry = getattr(get_handler(layer), "carry", None)
    carried = None if carry is None else carry(layer, None)
    if carried is not None:
        return carried
    return type(layer).from_config(layer.get_config())


def bookkeeping_weight_ids(layers):
    """`id`s of the bookkeeping weights of `layers` (see `register_layer`)."""
    ids = set()
    for layer in layers:
        names = describe(layer).bookkeeping_weights or ()
        ids.update(id(w) for w in layer.weights if w.name in names)
    return ids

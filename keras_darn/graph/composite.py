"""Layers that hold sublayers, described in terms of their parts' handlers.

A composite layer (a wrapper such as `TimeDistributed`, a `Bidirectional`
pair, keras-hub's transformer blocks) runs the handlers of its sublayers on
the channels that flow inside it. Three adapters make a sublayer's handler
speak about the composite's unit spaces:

- `SubTrace` hands a sublayer's handler the running trace, with the
  sublayer's own units (and its parts) renamed to unit spaces of the
  composite, so they are traced, grouped and named as the composite's;
- `renamed_axes` turns the sublayer's weight-axis map into the composite's;
- `PlanView` shows a sublayer's handler the composite's rebuild plan under
  the sublayer's own space names, so it can write the sublayer's config.

A space map `{sublayer space: composite space}` links the two; the default
map names a sublayer's units `"part:<sublayer name>"` and its parts
`"part:<sublayer name>/<part>"`, so they read `"<composite>/<sublayer>"` in
plans and `unit_groups`.
"""

from keras_darn.graph import registry
from keras_darn.graph.handlers import LayerHandler
from keras_darn.graph.unit_axes import OWN
from keras_darn.graph.unit_axes import UnitAxis
from keras_darn.graph.unit_axes import UnitPart
from keras_darn.graph.unit_axes import as_unit_axis
from keras_darn.graph.unit_axes import axis_role
from keras_darn.graph.unit_axes import part_of


def owner_space(owner, space):
    """The object a trace keys the composite's `space` by."""
    if space == OWN:
        return owner
    if space.startswith("part:"):
        return part_of(owner, space[5:])
    raise ValueError(f"Space {space!r} of layer '{owner.name}' is not a unit space of its own.")


def _mapped_space(sublayer, spaces, space):
    if space in spaces:
        return spaces[space]
    if space.startswith("part:"):
        base = spaces.get(OWN, f"part:{sublayer.name}")
        prefix = "" if base == OWN else base[5:] + "/"
        return f"part:{prefix}{space[5:]}"
    return None


class SubTrace:
    """The running trace, seen by the handler of one sublayer of `owner`.

    Args:
        trace: the trace of the whole model.
        owner: the composite layer.
        sublayer: the sublayer whose handler runs.
        spaces: `{sublayer space: composite space}`; a space it does not
            name is the sublayer's part `"part:<sublayer name>/..."`.
    """

    def __init__(self, trace, owner, sublayer, spaces):
        self.trace = trace
        self.owner = owner
        self.sublayer = sublayer
        self.spaces = spaces

    def _key(self, obj):
        if obj is self.sublayer:
            space = self.spaces.get(OWN, f"part:{self.sublayer.name}")
        elif isinstance(obj, UnitPart) and obj.owner is self.sublayer:
            space = _mapped_space(self.sublayer, self.spaces, f"part:{obj.key}")
        else:
            return obj
        return owner_space(self.owner, space)

    def space(self, layer, width):
        return self.trace.space(self._key(layer), width)

    def consume(self, layer, channels):
        # A sublayer reading the composite's first input is a use by the
        # composite (whose input constants the trace knows); others are parts.
        reads_input = layer is self.sublayer and self.spaces.get("in") == "in"
        self.trace.consume(self.owner if reads_input else self._key(layer), channels)

    def couple(self, first, second, layer):
        self.trace.couple(first, second, self.owner)

    def fix(self, channels, reason):
        self.trace.fix(channels, reason)

    def fixed_channels(self, width, reason):
        return self.trace.fixed_channels(width, reason)


def run_sublayer(sublayer, trace, owner, spaces, inputs, input_shapes, output_shapes):
    """Runs the handler of `sublayer` on `inputs`; returns its output `Channels`."""
    handler = registry.get_handler(sublayer)
    sub_trace = SubTrace(trace, owner, sublayer, spaces)
    return handler.propagate(sublayer, inputs, input_shapes, output_shapes, sub_trace)


def renamed_axes(sublayer, spaces):
    """The sublayer's `[(variable, axes)]` with spaces renamed for the composite."""
    handler = registry.get_handler(sublayer)
    pairs = []
    for variable, axes in handler.variable_axes(sublayer):
        kinds = {axis: as_unit_axis(kind, sublayer) for axis, kind in axes.items()}
        new_axes = {}
        for axis, kind in kinds.items():
            # The role is the sublayer's: its input may be a part of the composite.
            new_axes[axis] = UnitAxis(
                _mapped_space(sublayer, spaces, kind.space) or kind.space,
                kind.blocks, kind.repeat, axis_role(kind, list(kinds.values())),
            )
        pairs.append((variable, new_axes))
    return pairs


class PlanView:
    """The composite's rebuild plan under a sublayer's space names."""

    def __init__(self, plan, sublayer, spaces):
        self.plan = plan
        self.sublayer = sublayer
        self.spaces = spaces

    def channels(self, space):
        mapped = _mapped_space(self.sublayer, self.spaces, space)
        return None if mapped is None else self.plan.channels(mapped)

    def width(self, space=OWN):
        channels = self.channels(space)
        return None if channels is None else len(channels)


def sublayer_config(sublayer, config, plan, spaces):
    """The sublayer's config (its `get_config()` form) at the planned widths."""
    handler = registry.get_handler(sublayer)
    return handler.planned_config(sublayer, dict(config), PlanView(plan, sublayer, spaces))


def serialized_sublayer(serialized, sublayer, plan, spaces):
    """A sublayer's serialized form (`{"class_name", "config", ...}`) at the
    planned widths, without its `build_config`: it is built again on the new
    input shapes."""
    serialized = {k: v for k, v in serialized.items() if k != "build_config"}
    serialized["config"] = sublayer_config(sublayer, serialized["config"], plan, spaces)
    return serialized


class CompositeHandler(LayerHandler):
    """A layer holding sublayers, described by the handlers of its parts.

    The layer's stream (its first input, and its outputs) keeps its width,
    with `stream_reason` as the reason; inside, the sublayers named in
    `parts` run their own handlers, so their units (e.g. the hidden units of
    a transformer block's feed-forward network) are traced, grouped,
    removed and grown like a `Dense` layer's, under the names
    `"<layer>/<sublayer>"`.

    Args:
        parts: `[(attribute, reads, space)]` in call order: the attribute
            holding a sublayer, the space its input carries ("in" for the
            layer's stream, or an earlier part's space) and the space of its
            units (`"part:<name>"`), or None where its output joins the
            stream again (those units stay fixed). Parts sharing a space are
            coupled (e.g. the gate and intermediate projections of a gated
            feed-forward network).
        config_widths: `{space: config argument}` holding each space's width.
        stream_reason: why the stream's channels stay fixed.

    Example:

    ```python
    handler = CompositeHandler(
        parts=[("_feedforward_intermediate_dense", "in", "part:ffn"),
               ("_feedforward_output_dense", "part:ffn", None)],
        config_widths={"part:ffn": "intermediate_dim"},
        stream_reason="the block derives its head size from its input width",
    )
    darn.graph.register_layer(MyTransformerBlock, handler=handler)
    ```
    """

    def __init__(self, parts, config_widths, stream_reason):
        self.parts = [tuple(p) for p in parts]
        self.config_widths = dict(config_widths)
        self.stream_reason = stream_reason

    def _spaces(self, layer, attribute, reads, space):
        sublayer = getattr(layer, attribute)
        return sublayer, {OWN: space or f"part:{sublayer.name}", "in": reads}

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        reason = f"layer '{layer.name}' ({type(layer).__name__}): {self.stream_reason}"
        for channels in inputs:
            trace.fix(channels, reason)
        trace.consume(layer, inputs[0])
        flowing = {"in": inputs[0]}
        lead = tuple(input_shapes[0][:-1])
        for attribute, reads, space in self.parts:
            sublayer, spaces = self._spaces(layer, attribute, reads, space)
            channels = flowing[reads]
            in_shape = lead + (len(channels),)
            out_shape = tuple(sublayer.compute_output_shape(in_shape))
            out = run_sublayer(sublayer, trace, layer, spaces, [channels], [in_shape], [out_shape])[0]
            if space is None:
                trace.fix(out, reason)
            else:
                flowing[space] = out
        outputs = [inputs[0]]
        outputs += [trace.fixed_channels(shape[-1], reason) for shape in output_shapes[1:]]
        return outputs

    def variable_axes(self, layer):
        pairs = []
        for part in self.parts:
            sublayer, spaces = self._spaces(layer, *part)
            pairs += renamed_axes(sublayer, spaces)
        return pairs

    def planned_config(self, layer, config, plan):
        for space, argument in self.config_widths.items():
            width = plan.width(space)
            if width is not None:
                config[argument] = width
        return config

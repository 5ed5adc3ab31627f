"""Units of grouped convolutions (`Conv1D`/`Conv2D`/`Conv3D` with `groups > 1`).

A convolution with `groups=G` splits its `C_in` input channels into `G`
groups of `a = C_in / G` and its `C_out` filters into `G` groups of
`b = C_out / G`; filter `g * b + k` reads input group `g` only, through
kernel rows `0 .. a - 1` (the kernel has shape `(..., a, C_out)`).

- **Depthwise written as a grouped convolution** (`a == 1`, e.g.
  `Conv2D(C, 7, groups=C)` in ConvNeXt): filter `c * b + k` reads input
  channel `c` only, so the layer passes units through like
  `DepthwiseConv2D` with depth multiplier `b`: removing input channel `c`
  removes its `b` filters and one group, `groups` follows the width.
- **Other grouped convolutions** (`a > 1`): a unit of the layer's input is
  the in-group position `j` of every group (channels `g * a + j` for all
  `g`), and a unit of its output the position `k` of every filter group
  (filters `g * b + k`): removing a unit removes one channel from each
  group, evenly, and `groups` stays. The in-group positions are a part of
  the layer (`"<layer>/in_group"`) that the kernel's input axis follows.
  Adding works the same way: a new unit is a new channel at the end of
  every group (a new filter in each filter group, or a new input channel
  in each input group when the producer grows), so a layer grows by a
  multiple of `groups` channels, and other counts are refused.
"""

import numpy as np

from keras_darn.graph.channels import Channels
from keras_darn.graph.nodes import GraphError
from keras_darn.graph.unit_axes import OWN
from keras_darn.graph.unit_axes import UnitAxis
from keras_darn.graph.unit_axes import part_of
from keras_darn.graph.unit_axes import part_space

IN_GROUP = "in_group"


def groups_of(layer):
    return int(getattr(layer, "groups", 1) or 1)


def layout(layer):
    """`(groups, a, b)`: groups, input channels and filters per group."""
    groups = groups_of(layer)
    kernel = getattr(layer, "kernel", None)
    a = int(kernel.shape[-2]) if kernel is not None else 1
    b = int(layer.filters) // groups
    return groups, a, b


def is_depthwise(layer):
    """Whether a grouped convolution is a depthwise one (one input channel per group)."""
    groups, a, _ = layout(layer)
    return groups > 1 and a == 1


def _slice(channels, start, stop, shift):
    """Positions `start:stop` of a record, origins and sources shifted by `-shift`."""
    part = slice(start, stop)

    def moved(positions):
        return np.where(positions >= 0, positions - shift, -1)

    return Channels(channels.ids[part], moved(channels.origin[part]), moved(channels.source[part]))


def couple_groups(channels, groups, old_size, layer, trace, first=None, what="grouped convolution"):
    """Couples position `j` of every group with position `j` of the first.

    `old_size` is the group size in the original model, which the origins
    of a planned layout refer to.
    """
    if len(channels) % groups:
        raise GraphError(
            f"The plan gives {what} '{layer.name}' (groups={groups}) {len(channels)} "
            f"channels, which do not split into {groups} equal groups; its units are "
            "removed or added in every group at once (multiples of groups)."
        )
    size = len(channels) // groups
    first = _slice(channels, 0, size, 0) if first is None else first
    for g in range(groups):
        trace.couple(first, _slice(channels, g * size, (g + 1) * size, g * old_size), layer)
    return first


def grouped_convs_of(graph, root):
    """Names of the grouped convolutions whose groups couple unit `root`.

    Args:
        graph: a `keras_darn.graph.UnitGraph`.
        root: a coupled-unit id (`graph.root(unit)`).
    """
    names = []
    for key, channels in graph.spaces.items():
        layer = graph.layer_of_space(key)
        conv = layer.owner if getattr(layer, "key", None) == IN_GROUP else layer
        if groups_of(conv) > 1 and root in graph.roots(channels) and conv.name not in names:
            names.append(conv.name)
    return names


def propagate(layer, inputs, output_shapes, trace, producer_propagate):
    """Output channels of a grouped convolution (see the module docstring)."""
    groups, a, b = layout(layer)
    if a == 1:
        return [inputs[0].repeat(b) if b > 1 else inputs[0] for _ in output_shapes]
    # The input is read only through the in-group part (never as a plain
    # consumer: a constant channel cannot be folded across groups).
    in_group = trace.space(part_of(layer, IN_GROUP), a)
    couple_groups(inputs[0], groups, a, layer, trace, first=in_group)
    outputs = producer_propagate(layer, [inputs[0]], output_shapes, trace)
    couple_groups(outputs[0], groups, b, layer, trace)
    return outputs


def weight_axes(layer, plain_axes):
    """The plain convolution's axis map, rewritten for the layer's groups."""
    groups, a, b = layout(layer)
    new = {}
    for name, axes in plain_axes.items():
        mapped = {}
        for axis, kind in axes.items():
            if a == 1:
                # Depthwise: the filter axis follows the input channels.
                if kind == OWN:
                    mapped[axis] = UnitAxis("in", repeat=b)
            elif kind == OWN:
                mapped[axis] = kind
            else:
                mapped[axis] = UnitAxis(part_space(IN_GROUP), role="outgoing")
        new[name] = mapped
    return new


def adapt_config(layer, config, input_width):
    """Depthwise: `groups` and `filters` follow the new input width."""
    if is_depthwise(layer):
        _, _, b = layout(layer)
        config = {**config, "groups": int(input_width), "filters": int(input_width) * b}
    return config


def constants(layer, input_constant, kernel, bias, activation):
    """Output constants of a depthwise grouped convolution (NaN: not constant)."""
    _, _, b = layout(layer)
    constant = np.repeat(np.asarray(input_constant, dtype=np.float64), b)
    out = constant * kernel.reshape(-1, kernel.shape[-1]).sum(0)
    if bias is not None:
        out = out + bias
    if activation is not None:
        out = np.asarray(activation(out.astype("float32")), dtype=np.float64)
    if layer.padding != "valid":
        out = np.where(constant == 0, out, np.nan)
    return out

"""Which unit space indexes an axis of a weight, and the unit spaces of layer parts.

A handler describes each weight of a layer as `{axis: kind}`. The simple
kinds are strings (`"in"`, `"out"`, `"in_x_m"`, see
`keras_darn.graph.handlers`); `UnitAxis` says more:

- `space`: `"out"` (the layer's own units), `"in"` or `"in:<k>"` (the
  channels of its first or k-th input tensor), or `"part:<name>"` (a unit
  space of a part of the layer: the heads of a `MultiHeadAttention`, the
  backward layer of a `Bidirectional`, a sublayer of a composite layer);
- `blocks`: the axis holds `blocks` consecutive copies of the space, as the
  gates of an `LSTM` kernel (`[i, f, c, o]`, each `units` wide);
- `repeat`: every channel `c` spreads over `repeat` positions `c * repeat +
  k` (a depth multiplier);
- `role`: how new positions are filled when units are added ("incoming",
  "outgoing", "vector" or "channel", see `keras_darn.rebuild.weight_transfer`);
  by default an own-unit axis is "incoming" (or "vector" for a weight with
  no other unit axis) and an input axis is "outgoing" (or "channel").

A part's units are traced like a layer's: `part_of(layer, "heads")` is a
stable stand-in object, named `"<layer name>/heads"`, that the trace gives a
unit space of its own, so the part appears in `unit_groups` and plans name it.
"""

import dataclasses
import weakref

OWN = "out"


@dataclasses.dataclass(frozen=True)
class UnitAxis:
    """One unit-indexed axis of a weight, in a handler's axis map.

    Args:
        space: the unit space indexing the axis: "out" (the layer's own
            units), "in" or "in:<k>" (its first or k-th input's channels), or
            "part:<name>" (a part's units). Defaults to "out".
        blocks: the axis holds this many consecutive copies of the space
            (an LSTM's four gates). Defaults to `1`.
        repeat: channel `c` spreads over positions `c * repeat + k`.
            Defaults to `1`.
        role: how new positions are filled ("incoming", "outgoing",
            "vector", "channel"); None derives it from the other axes.
            Defaults to `None`.

    Example:

    ```python
    # An LSTM cell's recurrent kernel: rows read the units' states, columns
    # are the four gates of every unit.
    {0: UnitAxis("out", role="outgoing"), 1: UnitAxis("out", blocks=4)}
    ```
    """

    space: str = OWN
    blocks: int = 1
    repeat: int = 1
    role: str = None

    def is_own(self):
        """Whether the axis is indexed by units the layer (or a part) makes."""
        return self.space == OWN or self.space.startswith("part:")

    def renamed(self, spaces):
        """The same axis with its space renamed by `spaces` (old -> new)."""
        return dataclasses.replace(self, space=spaces.get(self.space, self.space))


def axis_role(kind, kinds):
    """The growth role of `kind` on a weight whose unit axes are `kinds`."""
    if kind.role:
        return kind.role
    if kind.is_own():
        return "incoming" if len(kinds) > 1 else "vector"
    return "outgoing" if any(k.is_own() for k in kinds) else "channel"


def as_unit_axis(kind, layer=None):
    """A `UnitAxis` for a kind string ("in", "out", "in_x_m") or `UnitAxis`."""
    if isinstance(kind, UnitAxis):
        return kind
    if kind == "in_x_m":
        return UnitAxis("in", repeat=int(getattr(layer, "depth_multiplier", 1) or 1))
    if kind in ("in", "out"):
        return UnitAxis(kind)
    raise ValueError(
        f"Unknown weight-axis kind {kind!r}; expected 'in', 'out', 'in_x_m' or a UnitAxis."
    )


def part_space(name):
    """The `UnitAxis.space` of a part named `name`."""
    return f"part:{name}"


class UnitPart:
    """Stand-in for a part of a layer that has a unit space of its own.

    Attributes:
        owner: the layer the part belongs to.
        key: the part's name inside the owner ("heads", "backward", ...).
        name: `"<owner name>/<key>"`, how plans and `unit_groups` name it.
    """

    def __init__(self, owner, key):
        self._owner = weakref.ref(owner)
        self.key = key
        self.name = f"{owner.name}/{key}"

    @property
    def owner(self):
        return self._owner()

    def __repr__(self):
        return f"<UnitPart {self.name}>"


_PARTS = weakref.WeakKeyDictionary()


def part_of(owner, key):
    """The one `UnitPart` of `owner` named `key` (the same object every call)."""
    parts = _PARTS.setdefault(owner, {})
    if key not in parts:
        parts[key] = UnitPart(owner, key)
    return parts[key]


def parts_of(owner):
    """`{key: UnitPart}` of the parts of `owner` traced so far."""
    return dict(_PARTS.get(owner, {}))

"""Per-channel bookkeeping carried along the edges of a Keras graph.

Every tensor in a traced model gets a `Channels` record for its last (channel)
axis. Three integer arrays of the channel axis' length describe it:

- `ids`: the unit each channel belongs to. Units are the output units of
  resizable layers (a `Dense` neuron, a `Conv2D` filter); channels of model
  inputs and of layers that mix channels get ids of fixed units.
- `origin`: the position of the channel on the same tensor of the original
  model, or -1 for a channel that belongs to a newly added unit.
- `source`: for a new channel, the position on the original tensor of the
  channel it copies (Net2WiderNet), or -1.

The original model is traced with `origin == arange(n)` and `source == -1`;
the rebuilt model's channels are traced with the same handlers, so every
layer learns which rows and columns of its weights to keep, copy or create.
"""

import numpy as np


class Channels:
    """Channel ids, origins and copy sources of one tensor's last axis.

    Args:
        ids: integer array, the unit id of every channel.
        origin: integer array, position on the original tensor or -1.
            Defaults to `arange(len(ids))`.
        source: integer array, position copied by a new channel or -1.
            Defaults to all -1.
    """

    __slots__ = ("ids", "origin", "source")

    def __init__(self, ids, origin=None, source=None):
        self.ids = np.asarray(ids, dtype=np.int64)
        n = len(self.ids)
        self.origin = (
            np.arange(n, dtype=np.int64)
            if origin is None
            else np.asarray(origin, dtype=np.int64)
        )
        self.source = (
            np.full(n, -1, dtype=np.int64)
            if source is None
            else np.asarray(source, dtype=np.int64)
        )

    def __len__(self):
        return len(self.ids)

    def repeat(self, times):
        """Each channel `c` becomes channels `c * times + k`, k < `times`.

        This is how `DepthwiseConv2D` and `SeparableConv2D` with a depth
        multiplier lay out their intermediate channels.
        """
        offsets = np.tile(np.arange(times), len(self))

        def spread(positions):
            repeated = np.repeat(positions, times)
            return np.where(repeated >= 0, repeated * times + offsets, -1)

        return Channels(
            np.repeat(self.ids, times), spread(self.origin), spread(self.source)
        )

    def tile(self, positions, old_width):
        """Flatten: position `p` and channel `c` become `p * width + c`."""
        offsets = np.repeat(np.arange(positions) * old_width, len(self))
        return Channels(
            np.tile(self.ids, positions),
            _offset(np.tile(self.origin, positions), offsets),
            _offset(np.tile(self.source, positions), offsets),
        )

    @staticmethod
    def concatenate(parts, old_widths):
        """Concatenate channel records; positions shift by the old widths."""
        starts = np.concatenate([[0], np.cumsum(old_widths)[:-1]]).astype(np.int64)
        return Channels(
            np.concatenate([p.ids for p in parts]),
            np.concatenate([_offset(p.origin, s) for p, s in zip(parts, starts)]),
            np.concatenate([_offset(p.source, s) for p, s in zip(parts, starts)]),
        )

    def same_layout(self, other):
        """Whether two records describe the same channels in the same order."""
        return np.array_equal(self.ids, other.ids) and np.array_equal(
            self.origin, other.origin
        )


def _offset(positions, offset):
    """Adds `offset` to positions, leaving the -1 markers alone."""
    return np.where(positions >= 0, positions + offset, -1)


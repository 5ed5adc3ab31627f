"""Slicing and growing weight arrays along unit axes.

A weight axis is resized from a `Channels` record: positions with an
`origin` keep the original slice, new positions are filled according to the
weight's role and the growth initialisation:

| role       | example                     | zeros_out        | net2net                  | random          |
|------------|-----------------------------|------------------|--------------------------|-----------------|
| `incoming` | kernel column of a new unit | random, scaled   | copy of source (+ noise) | random, scaled  |
| `outgoing` | kernel row fed by new unit  | 0                | source / copies          | random, scaled  |
| `vector`   | bias of a new unit          | 0                | copy of source           | 0               |
| `channel`  | BN gamma, depthwise kernel  | neutral default  | copy of source           | neutral default |

"Random, scaled" draws a normal slice and scales it to half the mean norm of
the existing slices (incoming norm ~ 0.5 x the mean norm), so new
units start small but alive. Optimizer slots use `fill="zeros"`.
"""

import numpy as np

INITS = ("zeros_out", "net2net", "random")

_ONES = ("gamma", "moving_variance", "variance", "unit_mask", "kernel_mask")


def resize_axis(array, axis, channels, role, name, growth, rng, fill=None):
    """Resizes `array` along `axis` to the layout of `channels`.

    Args:
        array: numpy array, the original weight.
        axis: the axis indexed by units.
        channels: `Channels` of the new layout (origin/source per position).
        role: "incoming", "outgoing", "vector" or "channel" (see module doc).
        name: the weight's name ("kernel", "gamma", ...), for neutral values.
        growth: `{new unit id: (init, noise)}`: the initialisation (one of
            `INITS`) of each new unit, and the relative noise added to
            Net2WiderNet copies of its incoming weights.
        rng: a `numpy.random.Generator`.
        fill: "zeros" to fill every new position with 0 (optimizer slots).

    Returns:
        The resized array.
    """
    moved = np.moveaxis(array, axis, 0)
    origin = channels.origin
    kept = origin >= 0
    if kept.all() and len(origin) == len(moved) and np.array_equal(origin, np.arange(len(moved))):
        return array
    out = np.zeros((len(origin),) + moved.shape[1:], dtype=array.dtype)
    out[kept] = moved[origin[kept]]
    new = ~kept
    if fill == "zeros":
        return np.moveaxis(out, 0, axis)
    new_positions = np.flatnonzero(new)
    settings = [growth.get(int(channels.ids[p]), ("zeros_out", 0.0)) for p in new_positions]
    for init, noise in sorted(set(settings)):
        chosen = new_positions[[s == (init, noise) for s in settings]]
        out[chosen] = _new_slices(moved, channels.source[chosen], role, name, init, rng, noise)
    if role == "outgoing" and (channels.source >= 0).any():
        out = _divide_among_copies(out, channels)
    return np.moveaxis(out, 0, axis)


def _new_slices(moved, sources, role, name, init, rng, noise):
    shape = (len(sources),) + moved.shape[1:]
    if name in ("unit_mask", "kernel_mask"):
        return np.ones(shape, dtype=moved.dtype)
    if init == "net2net":
        if (sources < 0).any():
            raise ValueError("Net2WiderNet growth needs a source unit for every new unit.")
        copies = moved[sources].astype(moved.dtype)
        if noise and role == "incoming":
            scale = noise * (np.std(moved) or 1.0)
            copies = copies + rng.normal(0.0, scale, size=shape).astype(moved.dtype)
        return copies
    if role == "incoming" or (role == "outgoing" and init == "random"):
        return _scaled_random(moved, shape, rng)
    if role == "outgoing":
        return np.zeros(shape, dtype=moved.dtype)
    if role == "channel":
        if name in _ONES:
            return np.ones(shape, dtype=moved.dtype)
        if "kernel" in name:
            std = float(np.std(moved)) or 0.05
            return rng.normal(0.0, std, size=shape).astype(moved.dtype)
    return np.zeros(shape, dtype=moved.dtype)


def _scaled_random(moved, shape, rng):
    draws = rng.normal(size=shape)
    norms = np.sqrt((moved.reshape(len(moved), -1).astype(np.float64) ** 2).sum(axis=1))
    target = 0.5 * float(norms.mean()) if len(norms) and norms.mean() > 0 else 0.05
    draw_norms = np.sqrt((draws.reshape(len(draws), -1) ** 2).sum(axis=1)).reshape(
        (-1,) + (1,) * (len(shape) - 1)
    )
    return (draws / np.maximum(draw_norms, 1e-12) * target).astype(moved.dtype)


def _divide_among_copies(out, channels):
    """Net2WiderNet: a unit and its copies share its outgoing weights."""
    counts = {}
    for src in channels.source[channels.source >= 0]:
        counts[int(src)] = counts.get(int(src), 1) + 1
    for position, (origin, source) in enumerate(zip(channels.origin, channels.source)):
        key = int(origin) if origin >= 0 else int(source)
        if key in counts:
            out[position] = out[position] / counts[key]
    return out

"""Weight magnitude: the connection-level criterion of Han et al.'s pruning.

A connection (one kernel entry) is as important as its absolute value; a
pruning step switches off the live connections with the smallest |w|. This
module holds the per-connection side shared by connection pruning
(`keras_darn.methods.connection.pruning`) and the energy estimate
(`keras_darn.metrics.energy`): which layers have kernels, what their
effective kernel is once the masks are applied, and which entries a given
pruning rate removes.
"""

import keras
import numpy as np

from keras_darn.graph.nodes import is_graph_model
from keras_darn.graph.nodes import leaf_layers


def kernel_layers(model):
    """The built layers of `model` that have a `kernel`, nested models included.

    Args:
        model: a `keras.Model` (Functional or Sequential) or a single layer.

    Returns:
        A list of layers, each once, in `model.layers` order (depth first
        into nested models).
    """
    if not is_graph_model(model):
        return [model] if model.built and getattr(model, "kernel", None) is not None else []
    return [
        layer for layer in leaf_layers(model)
        if layer.built and getattr(layer, "kernel", None) is not None
    ]


def connection_mask(layer):
    """The 0/1 multiplier of `layer`'s kernel: `kernel_mask * unit_mask`.

    Layers without masks (plain `Dense`/`Conv2D`) get all ones. The unit mask
    is broadcast along the kernel's last (output) axis.

    Args:
        layer: a built layer with a `kernel`.

    Returns:
        A float32 NumPy array of the kernel's shape.
    """
    shape = tuple(layer.kernel.shape)
    mask = np.ones(shape, dtype="float32")
    kernel_mask = getattr(layer, "kernel_mask", None)
    if kernel_mask is not None:
        mask = mask * keras.ops.convert_to_numpy(kernel_mask)
    unit_mask = getattr(layer, "unit_mask", None)
    if unit_mask is not None and unit_mask.shape[0] == shape[-1]:
        mask = mask * keras.ops.convert_to_numpy(unit_mask)
    return mask


def effective_kernel(layer):
    """The kernel the layer computes with: raw kernel times its masks.

    Args:
        layer: a built layer with a `kernel` (masked or plain).

    Returns:
        A float32 NumPy array of the kernel's shape, exactly 0 where a
        connection or unit is masked off.
    """
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype("float32")
    return kernel * connection_mask(layer)


def live_connections(layer):
    """Boolean array: which kernel entries are live connections.

    In a layer with masks (`kernel_mask` or `unit_mask`), an entry is live
    when its masks are 1, whatever its value (a live weight that is 0 now
    can train away from 0). A plain layer has no masks; there an entry is
    live when it is non-zero, which is where `keras_darn.shrink` and
    `from_prunable` leave the masked entries. So a masked model and its
    shrunk plain version have the same live connections.

    Args:
        layer: a built layer with a `kernel`.

    Returns:
        A boolean NumPy array of the kernel's shape.
    """
    if getattr(layer, "kernel_mask", None) is None and getattr(layer, "unit_mask", None) is None:
        return keras.ops.convert_to_numpy(layer.kernel) != 0
    return connection_mask(layer) != 0


def smallest_magnitude(weights, live, rate):
    """Chooses the fraction `rate` of the live weights with the smallest |w|.

    `floor(rate * live.sum())` entries are chosen; ties are broken by
    position (row-major order), so the choice is deterministic.

    Args:
        weights: array of weights.
        live: boolean array of `weights`' shape, the candidates.
        rate: fraction in [0, 1].

    Returns:
        A boolean array of `weights`' shape, True for the entries to prune.

    Example:

    >>> smallest_magnitude(np.array([0.5, -0.1, 0.3, 2.0]),
    ...                    np.array([True, True, False, True]), 0.5)
    array([False,  True, False, False])
    """
    weights = np.asarray(weights)
    live = np.asarray(live, dtype=bool)
    candidates = np.flatnonzero(live.ravel())
    count = int(np.floor(rate * candidates.size + 1e-9))
    chosen = np.zeros(weights.size, dtype=bool)
    if count > 0:
        magnitudes = np.abs(weights.ravel()[candidates])
        order = np.argsort(magnitudes, kind="stable")
        chosen[candidates[order[:count]]] = True
    return chosen.reshape(weights.shape)


def below_threshold(weights, live, threshold):
    """Chooses the live weights with |w| < `threshold` (Han et al.'s rule).

    Args:
        weights: array of weights.
        live: boolean array of `weights`' shape, the candidates.
        threshold: non-negative magnitude threshold.

    Returns:
        A boolean array of `weights`' shape, True for the entries to prune.

    Example:

    >>> below_threshold(np.array([0.5, -0.1, 0.3]), np.array([True, True, True]), 0.4)
    array([False,  True,  True])
    """
    return np.asarray(live, dtype=bool) & (np.abs(np.asarray(weights)) < threshold)

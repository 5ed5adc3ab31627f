"""Connection masks of layers: which kernel entries a layer computes with.

A layer with masks (`kernel_mask`, `unit_mask`: the prunable layers) computes
with its kernel times those masks; a plain layer with its kernel as it is.
Connection pruning and the energy estimate read kernels through these.
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

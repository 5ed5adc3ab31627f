"""Whether a layer grows: the effective rank of its activations.

The effective-rank trigger (after Maile et al. 2022, "When, where and how to
add new neurons to ANNs") says *whether* a layer should grow: when the
numerical rank of its activations approaches its width, every unit carries
independent information and the layer is saturated. Which units the new
ones copy is the criteria's choice (`keras_darn.methods.growth.sources`).

Activations are read after the layer's activation: when a Dense/Conv2D layer
feeds a single chain of normalization/activation layers, the end of that
chain is used. Convolution outputs count every spatial position as one row.
"""

import keras
import numpy as np

from keras_darn.graph.activations import activation_chain
from keras_darn.graph.activations import layer_width
from keras_darn.graph.nodes import functional_of

def collect_activations(model, x, layer_names, batch_size=256, max_rows=4096, seed=0):
    """Activations of the units of some layers, one row per example/position.

    Args:
        model: a functional or Sequential Keras model.
        x: model inputs (an array or a list of arrays), a few hundred
            examples are enough.
        layer_names: names of the Dense/Conv layers to read.
        batch_size: batch size of the forward pass. Defaults to `256`.
        max_rows: at most this many rows per layer (convolution positions are
            subsampled, seeded). Defaults to `4096`.
        seed: seed of the row subsampling. Defaults to `0`.

    Returns:
        `{layer_name: float64 array of shape (rows, units)}`.

    Raises:
        ValueError: unknown layer names, or `max_rows` < 2.

    Example:

    ```python
    acts = collect_activations(model, x_train[:512], ["dense", "dense_1"])
    unit_variance(acts["dense"])
    ```
    """
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 2:
        raise ValueError(f"Expected `max_rows` to be an integer >= 2. Received: max_rows={max_rows!r}")
    layer_names = list(layer_names)
    functional = functional_of(model)
    tensors = []
    for name in layer_names:
        layer_width(model, name)
        tensors.append(_activation_tensor(functional, model.get_layer(name)))
    inputs = functional.inputs[0] if len(functional.inputs) == 1 else functional.inputs
    probe = keras.Model(inputs, tensors)
    # Eager calls: a `predict` would trace a new function for every probe.
    count = len(keras.tree.flatten(x)[0])
    chunks = []
    for start in range(0, count, batch_size):
        batch = keras.tree.map_structure(lambda a: a[start : start + batch_size], x)
        result = probe(batch, training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        chunks.append([keras.ops.convert_to_numpy(r) for r in result])
    outputs = [np.concatenate(parts) for parts in zip(*chunks)]
    rng = np.random.default_rng(seed)
    result = {}
    for name, array in zip(layer_names, outputs):
        rows = np.asarray(array, dtype=np.float64).reshape(-1, array.shape[-1])
        if len(rows) > max_rows:
            rows = rows[np.sort(rng.choice(len(rows), size=max_rows, replace=False))]
        result[name] = rows
    return result


def _activation_tensor(functional, layer):
    """The output of `layer`, after a single following chain of per-unit layers."""
    return activation_chain(functional, layer)[0]


def _check_activations(activations):
    array = np.asarray(activations, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2 or array.shape[1] < 1:
        raise ValueError(
            "Expected activations of shape (rows >= 2, units >= 1). "
            f"Received: shape={array.shape}"
        )
    return array


def effective_rank(activations, tolerance=0.01):
    """Numerical rank of the centred activations.

    The number of singular values of the centred activation matrix that are
    at least `tolerance` times the largest one. Dead and duplicated units do
    not add to it; it is at most the layer's width.

    Args:
        activations: `(rows, units)` array.
        tolerance: relative threshold on singular values. Defaults to `0.01`.

    Returns:
        An `int` in `[0, units]`.
    """
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"Expected `tolerance` in (0, 1). Received: tolerance={tolerance!r}")
    array = _check_activations(activations)
    centred = array - array.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    if not singular.size or singular[0] <= 0:
        return 0
    return int((singular >= tolerance * singular[0]).sum())


class EffectiveRankTrigger:
    """Grow a layer when the numerical rank of its activations nears its width.

    After Maile et al. 2022: a layer whose activations span (almost) as many
    dimensions as it has units uses all of them, so it may need more; a layer
    with dead or redundant units does not. The trigger fires when
    `effective_rank(activations, tolerance) >= saturation * width`.

    Args:
        saturation: fraction of the width the rank must reach, in (0, 1].
            Defaults to `0.9`.
        tolerance: relative singular-value threshold of `effective_rank`.
            Defaults to `0.01`.

    Example:

    ```python
    trigger = EffectiveRankTrigger(saturation=0.9)
    if trigger(acts["dense"]):
        model = grow_units(model, {"dense": 8})
    ```
    """

    def __init__(self, saturation=0.9, tolerance=0.01):
        if isinstance(saturation, bool) or not isinstance(saturation, (int, float)) or not (
            0.0 < saturation <= 1.0
        ):
            raise ValueError(
                f"Expected `saturation` in (0, 1]. Received: saturation={saturation!r}"
            )
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
            0.0 < tolerance < 1.0
        ):
            raise ValueError(f"Expected `tolerance` in (0, 1). Received: tolerance={tolerance!r}")
        self.saturation = float(saturation)
        self.tolerance = float(tolerance)

    def rank(self, activations):
        """The effective rank of `activations`."""
        return effective_rank(activations, self.tolerance)

    def __call__(self, activations):
        """Whether the layer should grow."""
        width = _check_activations(activations).shape[1]
        return self.rank(activations) >= self.saturation * width

    def units_to_add(self, activations):
        """How far the rank exceeds the saturation level, in units (>= 0).

        `max(0, rank - floor(saturation * width))`, Maile et al.'s amount of
        growth: a fully used layer of width w asks for about
        `(1 - saturation) * w` new units, a partly used one for none.
        """
        width = _check_activations(activations).shape[1]
        return max(0, self.rank(activations) - int(np.floor(self.saturation * width)))

    def get_config(self):
        return {"saturation": self.saturation, "tolerance": self.tolerance}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"EffectiveRankTrigger(saturation={self.saturation}, tolerance={self.tolerance})"

"""Where to grow: activation statistics, DARN's three growth rules, effective rank.

DARN (Dynamically Adding and Removing Neurons) picks the units to split by the
statistics of their activations: high variance, high L1 (mean absolute
activation), and pairs of units with low correlation (a new unit takes the
average of the pair's weights). The effective-rank trigger (after Maile et
al. 2022, "When, where and how to add new neurons to ANNs") says *whether* a
layer should grow: when the numerical rank of its activations approaches its
width, every unit carries independent information and the layer is
saturated.

Activations are read after the layer's activation: when a Dense/Conv2D layer
feeds a single chain of normalization/activation layers, the end of that
chain is used. Convolution outputs count every spatial position as one row.

The statistics here (variance, L1, correlation) are small numpy functions on
an activation array already in memory (float64, two-pass). They measure the
same quantities as `keras_darn.criteria.activation_statistics` (used by the
pruning criteria) but are not merged with it on purpose: that one runs a
`ProbedModel` over batches and replicas and streams float32 sums (variance
as E[a^2] - E[a]^2, zero-variance units found by an exact zero), so the
numbers, and which units count as constant, differ slightly.
"""

import abc

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


def unit_variance(activations):
    """Variance of each unit's activation. Returns shape `(units,)`."""
    return _check_activations(activations).var(axis=0)


def unit_l1(activations):
    """Mean absolute activation of each unit (L1 per row). Returns `(units,)`."""
    return np.abs(_check_activations(activations)).mean(axis=0)


def activation_correlation(activations):
    """Pearson correlation between units; constant units correlate 0.

    Returns:
        `(units, units)` array with ones on the diagonal of live units.
    """
    array = _check_activations(activations)
    centred = array - array.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    live = norms > 1e-12 * max(1.0, float(norms.max()) if norms.size else 1.0)
    safe = np.where(live, norms, 1.0)
    correlation = (centred.T @ centred) / np.outer(safe, safe)
    correlation[~live, :] = 0.0
    correlation[:, ~live] = 0.0
    return np.clip(correlation, -1.0, 1.0)


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


class GrowthCriterion(abc.ABC):
    """Chooses the source units of new units from a layer's activations.

    A criterion is called as `criterion(activations, count)` and returns
    `count` tuples of unit indices: one index per new unit for splitting
    rules (the unit copied), two for pair rules (the units averaged);
    `arity` says which.
    """

    arity = 1

    @abc.abstractmethod
    def __call__(self, activations, count):
        """Returns `count` tuples of `arity` unit indices."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}()"


class UnitScoreCriterion(GrowthCriterion):
    """Splits the units with the highest `scores(activations)` first."""

    @abc.abstractmethod
    def scores(self, activations):
        """One score per unit, shape `(units,)`; higher is split first."""

    def __call__(self, activations, count):
        count = _check_count(count)
        order = np.argsort(-self.scores(activations), kind="stable")
        # More new units than units: split the best ones again, in order.
        return [(int(i),) for i in np.resize(order, count)] if count else []


class HighVariance(UnitScoreCriterion):
    """DARN rule 1: split the units with the highest activation variance.

    Example:

    >>> HighVariance()(acts, 3)   # [(7,), (2,), (11,)]
    """

    def scores(self, activations):
        return unit_variance(activations)


class HighL1(UnitScoreCriterion):
    """DARN rule 3: split the units with the highest mean |activation|."""

    def scores(self, activations):
        return unit_l1(activations)


class LowCorrelation(GrowthCriterion):
    """DARN rule 2: a new unit for each of the least correlated pairs.

    Pairs of live units (non-zero variance) are ranked by |correlation|,
    lowest first; each pair gives one new unit, initialised by `grow_units`
    with `init="pair_average"` to the average of the pair's incoming
    weights. When there are fewer pairs than new units, pairs are reused.

    Example:

    >>> LowCorrelation()(acts, 2)   # [(3, 9), (0, 5)]
    """

    arity = 2

    def __call__(self, activations, count):
        count = _check_count(count)
        array = _check_activations(activations)
        width = array.shape[1]
        if width < 2:
            return [(0, 0)] * count
        correlation = np.abs(activation_correlation(array))
        live = unit_variance(array) > 0
        rows, cols = np.triu_indices(width, k=1)
        usable = live[rows] & live[cols]
        if usable.any():
            rows, cols = rows[usable], cols[usable]
        order = np.argsort(correlation[rows, cols], kind="stable")
        pairs = [(int(rows[i]), int(cols[i])) for i in order]
        return [pairs[i % len(pairs)] for i in range(count)]


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


CRITERIA = {"variance": HighVariance, "l1": HighL1, "correlation": LowCorrelation}


def get(identifier):
    """Returns a `GrowthCriterion` from a name ("variance", "l1", "correlation"),
    an instance, or `None` (returns `None`).

    Raises:
        ValueError: for anything else.
    """
    if identifier is None or isinstance(identifier, GrowthCriterion):
        return identifier
    if isinstance(identifier, str) and identifier in CRITERIA:
        return CRITERIA[identifier]()
    raise ValueError(
        f"Received an invalid value for `criterion`, expected one of {sorted(CRITERIA)}, "
        f"a GrowthCriterion or None. Received: criterion={identifier!r}"
    )


def _check_count(count):
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"Expected a non-negative integer `count`. Received: count={count!r}")
    return int(count)

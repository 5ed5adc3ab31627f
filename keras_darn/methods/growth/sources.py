"""Where new units come from: the core criteria's scores and activation statistics.

Growth reads the units it may split through the same criteria as pruning
(`keras_darn.criteria`): DARN's growth rules (Gandhi and Bandaru,
*Dynamically Adding and Removing Neurons from Neural Networks*) are the
pruning scores read the other way round. A split init ("net2net",
"naive") copies the units with the *highest* scores of any registered
criterion (`"variance"` by default, DARN's rule 1; `"l1"` is its rule 3);
the pair init ("pair_average") averages the *least* correlated pairs of
live units (DARN's rule 2), from the `"correlation"` criterion's
statistics. The statistics are the criteria's own, read at the probed
model's gates (after normalization, activation and pooling) over all the
probe data, every spatial position of a convolution one sample.
"""

import numpy as np

from keras_darn import criteria
from keras_darn.criteria import ActivationCorrelation
from keras_darn.criteria import ProbedModel
from keras_darn.criteria import activation_statistics
from keras_darn.criteria.base import group_mean
from keras_darn.criteria.correlation import group_correlations

SPLIT_INITS = ("net2net", "naive")
PAIR_INITS = ("pair_average",)


def source_criterion(init, criterion):
    """The criterion that chooses the source units of `init`'s new units.

    Args:
        init: the initialisation of new units (see `grow_units`).
        criterion: `None` (the init's default: `"variance"` for a split
            init, `"correlation"` for the pair init), or anything
            `keras_darn.criteria.get` takes.

    Returns:
        A `keras_darn.criteria.Criterion`, or `None` for inits that copy no
        unit.

    Raises:
        ValueError: a criterion for an init that copies no unit, or a pair
            init with a criterion other than `"correlation"`.
    """
    if init not in SPLIT_INITS + PAIR_INITS:
        if criterion is not None:
            raise ValueError(
                f"A `criterion` chooses source units, which init={init!r} does not use; "
                f"use one of {SPLIT_INITS + PAIR_INITS}. Received: criterion={criterion!r}"
            )
        return None
    pairs = init in PAIR_INITS
    if criterion is None:
        criterion = "correlation" if pairs else "variance"
    criterion = criteria.get(criterion)
    if pairs and not isinstance(criterion, ActivationCorrelation):
        raise ValueError(
            f"init={init!r} averages the least correlated pairs of units: its criterion is "
            f"'correlation'. Received: criterion={criterion!r}"
        )
    return criterion


def layer_statistics(model, x, layer_names, conv_mode="positions"):
    """Activation statistics of the units of some layers, in each layer's own unit order.

    Args:
        model: a Keras model.
        x: probe inputs (a few hundred examples).
        layer_names: layers whose units are read, one per unit group.
        conv_mode: see `keras_darn.criteria.activation_statistics`.
            Defaults to `"positions"`.

    Returns:
        `{layer_name: {"mean_abs", "variance", "correlation"}}`, float64.
    """
    probed = ProbedModel(model, layers=list(layer_names))
    stats = activation_statistics(probed, x, conv_mode, covariance=True)
    per_group = {
        "mean_abs": group_mean(probed, {n: s["mean_abs"] for n, s in stats.items()}),
        "variance": group_mean(probed, {n: s["variance"] for n, s in stats.items()}),
        "correlation": group_correlations(probed, stats),
    }
    return {
        name: {key: _own_order(probed, name, values) for key, values in per_group.items()}
        for name in layer_names
    }


def unit_scores(criterion, model, x, y, layer_names):
    """`{layer_name: criterion scores}` in each layer's own unit order."""
    probed = ProbedModel(model, layers=list(layer_names))
    scores = criterion(probed, x, y)
    return {name: _own_order(probed, name, scores) for name in layer_names}


def _own_order(probed, name, per_group):
    """A group-order vector (or square matrix) as `name`'s own unit order."""
    group = probed.group(name)
    order = np.argsort(group.indices(name))
    values = np.asarray(per_group[group.key], dtype=np.float64)
    return values[np.ix_(order, order)] if values.ndim == 2 else values[order]


def split_sources(scores, count):
    """The `count` units to split, highest score first.

    More new units than units split the best ones again, in order.

    Returns:
        A list of `count` one-element tuples of unit indices.

    Example:

    >>> split_sources(np.array([0.1, 3.0, 2.0]), 4)
    [(1,), (2,), (0,), (1,)]
    """
    count = _check_count(count)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    order = np.argsort(-scores, kind="stable")
    return [(int(i),) for i in np.resize(order, count)] if count else []


def pair_sources(correlation, variance, count):
    """The `count` least correlated pairs of live units (non-zero variance).

    Pairs are ranked by |correlation|, lowest first, and reused when there
    are fewer pairs than new units; with fewer than two live units, every
    pair is a candidate.

    Returns:
        A list of `count` `(i, j)` tuples of unit indices.

    Example:

    >>> pair_sources(np.array([[1, .9, .1], [.9, 1, .5], [.1, .5, 1]]), np.ones(3), 2)
    [(0, 2), (1, 2)]
    """
    count = _check_count(count)
    correlation = np.abs(np.asarray(correlation, dtype=np.float64))
    width = len(correlation)
    if width < 2:
        return [(0, 0)] * count
    live = np.asarray(variance) > 0
    rows, cols = np.triu_indices(width, k=1)
    usable = live[rows] & live[cols]
    if usable.any():
        rows, cols = rows[usable], cols[usable]
    order = np.argsort(correlation[rows, cols], kind="stable")
    pairs = [(int(rows[i]), int(cols[i])) for i in order]
    return [pairs[i % len(pairs)] for i in range(count)]


def choose_sources(criterion, model, x, y, plan):
    """The source units of each layer's new units.

    Args:
        criterion: from `source_criterion` (an `ActivationCorrelation`
            chooses pairs, any other criterion the units to split).
        model: the model whose units are read.
        x: probe inputs.
        y: probe targets (for criteria that need labels), or `None`.
        plan: `{layer_name: new units}`.

    Returns:
        `{layer_name: [tuples of unit indices]}`.

    Raises:
        ValueError: a criterion that needs labels, without `y`.
    """
    names = list(plan)
    if isinstance(criterion, ActivationCorrelation):
        stats = layer_statistics(model, x, names, criterion.conv_mode)
        return {
            name: pair_sources(stats[name]["correlation"], stats[name]["variance"], plan[name])
            for name in names
        }
    if criterion.needs_labels and y is None:
        raise ValueError(
            f"Criterion '{criterion.name}' needs targets to choose source units: give probe "
            "data with labels. Received: y=None"
        )
    scores = unit_scores(criterion, model, x, y, names)
    return {name: split_sources(scores[name], plan[name]) for name in names}


def _check_count(count):
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"Expected a non-negative integer `count`. Received: count={count!r}")
    return int(count)

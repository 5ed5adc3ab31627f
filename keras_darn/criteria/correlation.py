"""Correlation between units' activations, and which of a pair to drop.

DARN (Gandhi & Bandaru), Sections 3 and 7: units whose activations are
highly correlated do the same work, so one unit of each pair whose
correlation exceeds a threshold t (e.g. 0.98) can go. When unit j goes and
its partner i stays, j's activation is approximately `alpha * a_i + beta`
(least squares over the data), so j's outgoing weights can be folded into
i's (`alpha` times) and into the next layer's bias (`beta` times)
instead of being dropped; `keras_darn.methods.darn` (`fold=True`) does it.
"""

import numpy as np

from keras_darn.criteria.activation_statistics import activation_statistics
from keras_darn.criteria.activation_statistics import check_conv_mode
from keras_darn.criteria.base import Criterion
from keras_darn.criteria.base import group_mean
from keras_darn.criteria.base import register_criterion


def group_correlations(probed, stats):
    """`{key: correlation matrix in group order}` (mean over the group's gates)."""
    result = {}
    for group in probed.groups:
        mats = []
        for gate in probed.gates_of(group.key):
            order = group.indices(gate.layer.name)
            mats.append(stats[gate.name]["correlation"][np.ix_(order, order)])
        result[group.key] = np.mean(mats, axis=0)
    return result


def redundancy_scores(correlation, live):
    """`1 - max |r|` with any other live unit (low = redundant).

    Args:
        correlation: square correlation matrix of a group.
        live: boolean array of the units that count.

    Returns:
        A float64 array; `NaN` for units that are not live, 1 for a unit
        with no other live unit.
    """
    absolute = np.abs(np.asarray(correlation, dtype=np.float64))
    np.fill_diagonal(absolute, 0.0)
    absolute[:, ~live] = 0.0
    scores = 1.0 - absolute.max(axis=1) if len(absolute) else np.zeros(0)
    return np.where(live, scores, np.nan)


def correlated_pairs(correlation, threshold, live=None, keep_scores=None, max_remove=None):
    """Chooses one unit of each highly correlated pair to remove.

    Pairs with `|r| >= threshold` are visited from the most correlated down.
    A pair whose units are both still present loses one unit: the one with
    the lower `keep_scores` (by default the higher index); the other becomes
    a keeper, never removed in this call. So every removed unit has a
    partner that stays and is correlated with it at least `threshold`.

    Args:
        correlation: square correlation matrix.
        threshold: float in `(0, 1]`.
        live: boolean array of units that may take part. Defaults to all.
        keep_scores: per-unit values; of a pair the lower one is removed.
            Defaults to `None`.
        max_remove: most units to remove (at least one unit always stays).
            Defaults to `None`.

    Returns:
        A list of `(removed, partner, r)` tuples, in the order chosen.

    Raises:
        ValueError: if `threshold` is not in `(0, 1]`.

    Example:

    >>> correlated_pairs(np.array([[1, .99, 0], [.99, 1, 0], [0, 0, 1]]), 0.98)
    [(1, 0, 0.99)]
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(
            "Received an invalid value for `threshold`, expected a number in (0, 1]. "
            f"Received: threshold={threshold!r}"
        )
    correlation = np.asarray(correlation, dtype=np.float64)
    size = len(correlation)
    live = np.ones(size, dtype=bool) if live is None else np.asarray(live, dtype=bool)
    limit = int(live.sum()) - 1 if max_remove is None else min(max_remove, int(live.sum()) - 1)
    upper_i, upper_j = np.triu_indices(size, k=1)
    strength = np.abs(correlation[upper_i, upper_j])
    candidates = (strength >= threshold) & live[upper_i] & live[upper_j]
    order = np.argsort(-strength[candidates], kind="stable")
    pairs_i, pairs_j = upper_i[candidates][order], upper_j[candidates][order]
    removed, keepers, chosen = set(), set(), []
    for i, j in zip(pairs_i.tolist(), pairs_j.tolist()):
        if len(chosen) >= limit:
            break
        if i in removed or j in removed or (i in keepers and j in keepers):
            continue
        if i in keepers:
            drop, keep = j, i
        elif j in keepers:
            drop, keep = i, j
        elif keep_scores is not None and keep_scores[i] < keep_scores[j]:
            drop, keep = i, j
        else:
            drop, keep = j, i
        removed.add(drop)
        keepers.add(keep)
        chosen.append((drop, keep, float(correlation[i, j])))
    return chosen


def fold_coefficients(layer_stats, removed, partner):
    """Least-squares `a_removed ~ alpha * a_partner + beta` over the data.

    Args:
        layer_stats: one layer's `activation_statistics` entry computed
            with `covariance=True`.
        removed: unit index (the layer's own) of the removed unit.
        partner: unit index of the unit that stays.

    Returns:
        `(alpha, beta)` floats; `alpha = 0` when the partner is constant.
    """
    cov = layer_stats["covariance"]
    mean = layer_stats["mean"]
    variance = cov[partner, partner]
    alpha = float(cov[removed, partner] / variance) if variance > 0 else 0.0
    beta = float(mean[removed] - alpha * mean[partner])
    return alpha, beta


@register_criterion("correlation", "ActivationCorrelation")
class ActivationCorrelation(Criterion):
    """Scores each unit by `1 - max |r|` with any other live unit (DARN).

    A unit whose activations are almost a copy of another's scores near 0
    and is removed first. Ranking by this score alone would remove both
    units of a pair; `correlated_pairs` (used by DARN's threshold pruning)
    removes one of each.

    Args:
        conv_mode: `"positions"` or `"spatial_mean"`. Defaults to
            `"positions"`.
        batch_size: examples per batch. Defaults to `256`.

    Attributes:
        last_statistics: the `activation_statistics` of the last call (with
            covariance and correlation matrices).
        last_correlation: `{key: correlation matrix in group order}`.
        last_mean_abs: `{key: mean |activation| in group order}`.

    Example:

    ```python
    criterion = darn.criteria.ActivationCorrelation()
    scores = criterion(model, x_val)
    pairs = correlated_pairs(criterion.last_correlation["conv2d"], 0.98)
    ```
    """

    name = "correlation"

    def __init__(self, conv_mode="positions", batch_size=256):
        super().__init__(batch_size)
        check_conv_mode(conv_mode)
        self.conv_mode = conv_mode
        self.last_statistics = None
        self.last_correlation = None
        self.last_mean_abs = None

    def score(self, probed, x, y, strategy):
        self.last_statistics = activation_statistics(
            probed, x, self.conv_mode, True, self.batch_size, strategy
        )
        self.last_correlation = group_correlations(probed, self.last_statistics)
        self.last_mean_abs = group_mean(
            probed, {n: s["mean_abs"] for n, s in self.last_statistics.items()}
        )
        return {
            key: redundancy_scores(corr, probed.live[key])
            for key, corr in self.last_correlation.items()
        }

    def get_config(self):
        return {**super().get_config(), "conv_mode": self.conv_mode}

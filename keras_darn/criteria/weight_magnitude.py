"""Weight magnitude: the connection-level criterion of Han et al.'s pruning.

A connection (one kernel entry) is as important as its absolute value; a
pruning step switches off the live connections with the smallest |w|. This
module chooses the entries a pruning rate or threshold removes; which
entries are live is read from the layers' masks
(`keras_darn.layers.connection_masks`).
"""

import numpy as np


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

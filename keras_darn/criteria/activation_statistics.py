"""Activation statistics of units: mean, variance, mean |a|, covariance.

Gandhi & Bandaru (DARN), Section 3: a unit's activations, its outputs as
the next layer sees them, describe its "activity"; units with low variance or
a low mean absolute activation (L1) do little, and units whose activations
are highly correlated with another unit's are redundant. The statistics are
computed at the `ProbedModel` gates (after BatchNormalization, activation
and pooling), from sums that add up over batches and across the replicas of
a `tf.distribute` strategy (on TensorFlow).

For a convolution a unit is a channel. With `conv_mode="positions"` every
spatial position of every example is one sample of the channel; with
`conv_mode="spatial_mean"` the channel's activity in an example is the mean
of its feature map (one sample per example).
"""

import numpy as np
from keras import ops

from keras_darn.criteria.base import Criterion
from keras_darn.criteria.base import group_mean
from keras_darn.criteria.base import register_criterion
from keras_darn.validation import check_one_of

CONV_MODES = ("positions", "spatial_mean")


def check_conv_mode(conv_mode):
    check_one_of(conv_mode, "conv_mode", CONV_MODES)


def _statistics_fn(probed, conv_mode, covariance):
    cache_key = ("statistics", conv_mode, covariance)
    if cache_key not in probed._compiled:

        def batch_fn(x, y, gains):
            _, collected = probed.forward(x, gains, collect=True)
            sums = {}
            for name, value in collected.items():
                value = ops.cast(value, "float32")
                rank = len(value.shape)
                if rank > 2 and conv_mode == "spatial_mean":
                    value = ops.mean(value, axis=tuple(range(1, rank - 1)))
                value = ops.reshape(value, (-1, value.shape[-1]))
                sums[f"{name}/sum"] = ops.sum(value, axis=0)
                sums[f"{name}/sum_squares"] = ops.sum(ops.square(value), axis=0)
                sums[f"{name}/sum_abs"] = ops.sum(ops.abs(value), axis=0)
                sums[f"{name}/count"] = ops.cast(ops.shape(value)[0], "float32")
                if covariance:
                    sums[f"{name}/products"] = ops.matmul(ops.transpose(value), value)
            return sums

        probed._compiled[cache_key] = batch_fn
    return probed._compiled[cache_key]


def activation_statistics(
    probed, x, conv_mode="positions", covariance=False, batch_size=256, strategy=None
):
    """Per-unit statistics of the activations of every probed layer.

    Statistics are keyed by gate: a layer's name, with further gates
    `"name#1"`, ... when its output branches into several chains.

    Args:
        probed: a `keras_darn.criteria.ProbedModel`.
        x: inputs.
        conv_mode: `"positions"` or `"spatial_mean"` (see the module
            docstring). Defaults to `"positions"`.
        covariance: also compute the covariance and correlation matrices.
            Defaults to `False`.
        batch_size: examples per batch. Defaults to `256`.
        strategy: a `tf.distribute.Strategy` (TensorFlow only). Defaults to
            `None`.

    Returns:
        `{gate name: {"mean", "variance", "mean_abs", "count"}}` (arrays
        over the layer's own units; `count` is the number of samples), plus
        `"covariance"` and `"correlation"` matrices when asked for. The
        correlation of a unit with zero variance is 0 (1 with itself).

    Example:

    ```python
    stats = activation_statistics(ProbedModel(model), x_val)
    stats["dense"]["variance"]
    ```
    """
    check_conv_mode(conv_mode)
    sums = probed.accumulate(
        _statistics_fn(probed, conv_mode, bool(covariance)),
        x,
        None,
        batch_size,
        strategy,
        (probed.gain_tensors(),),
    )
    names = sorted({key.rsplit("/", 1)[0] for key in sums})
    result = {}
    for name in names:
        count = sums[f"{name}/count"]
        mean = sums[f"{name}/sum"] / count
        variance = np.maximum(sums[f"{name}/sum_squares"] / count - mean**2, 0.0)
        stats = {
            "mean": mean,
            "variance": variance,
            "mean_abs": sums[f"{name}/sum_abs"] / count,
            "count": count,
        }
        if covariance:
            cov = sums[f"{name}/products"] / count - np.outer(mean, mean)
            std = np.sqrt(np.maximum(np.diag(cov), 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                corr = cov / np.outer(std, std)
            corr[~np.isfinite(corr)] = 0.0
            corr = np.clip(corr, -1.0, 1.0)
            np.fill_diagonal(corr, 1.0)
            stats["covariance"] = cov
            stats["correlation"] = corr
        result[name] = stats
    return result


class _ActivationStatistic(Criterion):
    """Scores each unit by one per-unit statistic of its activations."""

    statistic = None

    def __init__(self, conv_mode="positions", batch_size=256):
        super().__init__(batch_size)
        check_conv_mode(conv_mode)
        self.conv_mode = conv_mode

    def score(self, probed, x, y, strategy):
        stats = activation_statistics(
            probed, x, self.conv_mode, False, self.batch_size, strategy
        )
        return group_mean(probed, {n: s[self.statistic] for n, s in stats.items()})

    def get_config(self):
        return {**super().get_config(), "conv_mode": self.conv_mode}


@register_criterion("variance", "ActivationVariance")
class ActivationVariance(_ActivationStatistic):
    """Scores each unit by the variance of its activations (DARN).

    Args:
        conv_mode: `"positions"` or `"spatial_mean"`. Defaults to
            `"positions"`.
        batch_size: examples per batch. Defaults to `256`.

    Example:

    ```python
    scores = darn.criteria.ActivationVariance()(model, x_val)
    ```
    """

    name = "variance"
    statistic = "variance"


@register_criterion("l1", "ActivationL1")
class ActivationL1(_ActivationStatistic):
    """Scores each unit by its mean absolute activation (DARN's L1).

    Args:
        conv_mode: `"positions"` or `"spatial_mean"`. Defaults to
            `"positions"`.
        batch_size: examples per batch. Defaults to `256`.

    Example:

    ```python
    scores = darn.criteria.ActivationL1()(model, x_val)
    ```
    """

    name = "l1"
    statistic = "mean_abs"

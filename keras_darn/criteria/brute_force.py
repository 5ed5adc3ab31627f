"""Brute-force unit ranking: the change in loss when exactly one unit is off.

*The Incredible Shrinking Neural Network*, Section 3.1: run the validation
set once per unit with that unit's output set to 0 and record the change in
error; rank by it. It is the ground truth the Taylor estimates approximate.

The paper's loop needs K forward passes of the whole network. Here the
batch is replicated at the unit's gate with a different unit zeroed in every
replica (`ProbedModel.evaluate_variants`): layers before the unit run once,
the rest of the network runs on all K replicas in one pass. `batched=False`
runs the paper's one-unit-at-a-time loop, which gives the same numbers.
"""

import numpy as np

from keras_darn import backend
from keras_darn.criteria.base import Criterion
from keras_darn.criteria.base import register_criterion
from keras_darn.validation import check_one_of
from keras_darn.validation import check_positive_int

_METRICS = ("loss", "accuracy")


def brute_force_effects(
    probed, x, y, batched=True, max_rows=16384, batch_size=256, strategy=None
):
    """Loss increase and accuracy drop when each live unit alone is switched off.

    Args:
        probed: a `keras_darn.criteria.ProbedModel`; its current gains are
            the starting point (removed units stay off).
        x: inputs.
        y: targets.
        batched: evaluate all units of a group in one replicated pass per
            batch (`True`) or one unit per pass (`False`, the paper's loop).
            Defaults to `True`.
        max_rows: rows per replicated pass (examples times units). Defaults
            to `16384`.
        batch_size: examples per batch of the loop and of the base
            evaluation. Defaults to `256`.
        strategy: a `tf.distribute.Strategy` (TensorFlow only). Defaults to
            `None`.

    Returns:
        `{key: {"loss": array, "accuracy": array, "base_loss": float,
        "base_accuracy": float}}`: `loss[k]` is the mean loss with unit `k`
        off minus the base loss, `accuracy[k]` the base accuracy minus the
        accuracy with unit `k` off; `NaN` for units that are not live.
    """
    dataset = backend.make_batches(x, y, batch_size)
    base_loss, base_accuracy = probed.evaluate(dataset, None, strategy=strategy)
    effects = {}
    for group in probed.groups:
        key = group.key
        live = np.flatnonzero(probed.live[key])
        losses = np.full(group.size, np.nan)
        accuracies = np.full(group.size, np.nan)
        if live.size:
            if batched:
                # All units, live or not, so the traced shapes never change.
                variants = np.tile(probed.gains[key], (group.size, 1))
                variants[np.arange(group.size), np.arange(group.size)] = 0.0
                all_losses, all_accuracies = probed.evaluate_variants(
                    key, variants, x, y, max_rows=max_rows, strategy=strategy
                )
                losses[live] = all_losses[live]
                accuracies[live] = all_accuracies[live]
            else:
                for unit in live:
                    gains = {k: v.copy() for k, v in probed.gains.items()}
                    gains[key][unit] = 0.0
                    losses[unit], accuracies[unit] = probed.evaluate(
                        dataset, None, gains=gains, strategy=strategy
                    )
        effects[key] = {
            "loss": losses - base_loss,
            "accuracy": base_accuracy - accuracies,
            "base_loss": base_loss,
            "base_accuracy": base_accuracy,
        }
    return effects


@register_criterion("brute_force", "BruteForce")
class BruteForce(Criterion):
    """Scores each unit by the change of loss (or accuracy) when it is off.

    Args:
        metric: `"loss"` (score = mean loss with the unit off minus the base
            loss; the paper's criterion) or `"accuracy"` (score = accuracy
            drop). Defaults to `"loss"`.
        batched: evaluate many units per forward pass. Defaults to `True`.
        max_rows: rows per replicated pass. Defaults to `16384`.
        batch_size: examples per batch. Defaults to `256`.

    Attributes:
        last_effects: the full `brute_force_effects` result of the last call
            (loss and accuracy changes, base loss and accuracy).

    Example:

    ```python
    scores = darn.criteria.BruteForce()(model, x_val, y_val)
    ```
    """

    name = "brute_force"
    needs_labels = True

    def __init__(self, metric="loss", batched=True, max_rows=16384, batch_size=256):
        super().__init__(batch_size)
        check_one_of(metric, "metric", _METRICS)
        check_positive_int(max_rows, "max_rows")
        self.metric = metric
        self.batched = bool(batched)
        self.max_rows = int(max_rows)
        self.last_effects = None

    def score(self, probed, x, y, strategy):
        self.last_effects = brute_force_effects(
            probed, x, y, self.batched, self.max_rows, self.batch_size, strategy
        )
        return {key: effect[self.metric] for key, effect in self.last_effects.items()}

    def get_config(self):
        return {
            **super().get_config(),
            "metric": self.metric,
            "batched": self.batched,
            "max_rows": self.max_rows,
        }

"""Scheduled pruning by any criterion during `fit`, through unit masks.

At the end of chosen epochs the callback scores the live units of the
model's prunable layers with a `keras_darn.criteria` criterion on held-out
data and masks the lowest-scored ones (`set_unit_mask`), until a target
fraction of every layer is off. Masked units stay off for the rest of
training; `keras_darn.shrink(model)` then returns the plain smaller model.
Under a `tf.distribute` strategy the criterion's statistics are computed by
all replicas and summed (`ProbedModel.accumulate`).
"""

import math

import keras
import numpy as np

from keras_darn.criteria import base as criteria_base
from keras_darn.criteria.probes import ProbedModel
from keras_darn.validation import check_one_of
from keras_darn.validation import check_positive_int

SCHEDULES = ("linear", "cubic")


def pruning_fraction(event, num_events, target_fraction, schedule="linear"):
    """Fraction of each layer's units off after pruning event `event`.

    Args:
        event: 1-based index of the pruning event.
        num_events: number of pruning events.
        target_fraction: fraction reached at the last event.
        schedule: `"linear"` (equal steps) or `"cubic"` (large steps first,
            `target * (1 - (1 - event / num_events) ** 3)`, as in Zhu &
            Gupta's gradual pruning). Defaults to `"linear"`.

    Returns:
        A float in `[0, target_fraction]`.

    Example:

    >>> pruning_fraction(1, 4, 0.5)
    0.125
    """
    check_one_of(schedule, "schedule", SCHEDULES)
    progress = min(max(event / num_events, 0.0), 1.0)
    if schedule == "cubic":
        progress = 1.0 - (1.0 - progress) ** 3
    return target_fraction * progress


class CriterionPruning(keras.callbacks.Callback):
    """Masks the lowest-scored units of prunable layers on a schedule.

    Pruning events happen at the end of epochs `start_epoch`,
    `start_epoch + frequency`, ... up to `end_epoch` (epochs counted from
    0 within this `fit`). At event i of n every probed group has
    `ceil(pruning_fraction(i, n) * units)` units masked: the live units with
    the lowest scores go, on every layer of the group. The model must use
    `PrunableDense`/`PrunableConv2D` (see `keras_darn.layers.to_prunable`).
    After every epoch `logs["live_units"]` holds the number of live units of
    the probed groups.

    Args:
        criterion: a `keras_darn.criteria.Criterion` or a registered name.
        x: held-out inputs the scores are computed on.
        y: their targets (for loss-based criteria). Defaults to `None`.
        target_fraction: fraction of each layer's units masked at the end,
            in `[0, 1)`. Defaults to `0.5`.
        start_epoch: epoch of the first pruning event. Defaults to `0`.
        end_epoch: epoch of the last event, `None` for `start_epoch` (one
            event). Defaults to `None`.
        frequency: epochs between events. Defaults to `1`.
        schedule: `"linear"` or `"cubic"` (see `pruning_fraction`).
            Defaults to `"linear"`.
        layers: names of layers whose groups are pruned. Defaults to
            `None` (every group made of prunable layers).
        min_units: units every group keeps. Defaults to `1`.
        verbose: 1 prints each event. Defaults to `0`.

    Attributes:
        events: list of dicts `{"epoch", "layer", "masked", "fraction",
            "live_units"}`, one per group and event (`masked`: the unit
            indices of the group's first layer switched off). Reset when
            training begins.

    Raises:
        ValueError: for invalid arguments, or at the start of training when
            no probed layer has a unit mask.

    Example:

    ```python
    model = darn.layers.to_prunable(model)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=6, callbacks=[
        darn.callbacks.CriterionPruning("taylor1", x_val, y_val,
                                        target_fraction=0.5, start_epoch=1,
                                        end_epoch=4)])
    small = darn.shrink(model)
    ```
    """

    def __init__(
        self,
        criterion,
        x,
        y=None,
        target_fraction=0.5,
        start_epoch=0,
        end_epoch=None,
        frequency=1,
        schedule="linear",
        layers=None,
        min_units=1,
        verbose=0,
    ):
        super().__init__()
        self.criterion = criteria_base.get(criterion)
        if not 0.0 <= target_fraction < 1.0:
            raise ValueError(
                "Received an invalid value for `target_fraction`, expected a number in "
                f"[0, 1). Received: target_fraction={target_fraction!r}"
            )
        for name, value in (("start_epoch", start_epoch), ("min_units", min_units)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"Received an invalid value for `{name}`, expected a non-negative "
                    f"integer. Received: {name}={value!r}"
                )
        check_positive_int(frequency, "frequency")
        end_epoch = start_epoch if end_epoch is None else end_epoch
        if not isinstance(end_epoch, int) or end_epoch < start_epoch:
            raise ValueError(
                "Received an invalid value for `end_epoch`, expected an integer >= "
                f"start_epoch={start_epoch}. Received: end_epoch={end_epoch!r}"
            )
        pruning_fraction(1, 1, target_fraction, schedule)  # validates `schedule`
        if self.criterion.needs_labels and y is None:
            raise ValueError(
                f"Criterion '{self.criterion.name}' needs targets: pass `y`. Received: y=None"
            )
        self.x = x
        self.y = y
        self.target_fraction = float(target_fraction)
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.frequency = frequency
        self.schedule = schedule
        self.layer_names = layers
        self.min_units = min_units
        self.verbose = verbose
        self.event_epochs = list(range(start_epoch, end_epoch + 1, frequency))
        self.events = []
        self._probed = None

    def on_train_begin(self, logs=None):
        self.events = []
        probed = ProbedModel(self.model, layers=self.layer_names)
        maskable = [
            g for g in probed.groups
            if all(hasattr(probed.member_layer(n), "set_unit_mask") for n in g.layers)
        ]
        if not maskable:
            raise ValueError(
                "CriterionPruning found no prunable layer to mask: convert the model "
                "with `keras_darn.layers.to_prunable(model)` before compiling it."
            )
        probed.groups = maskable
        self._probed = probed

    def on_epoch_end(self, epoch, logs=None):
        if epoch in self.event_epochs:
            event = self.event_epochs.index(epoch) + 1
            fraction = pruning_fraction(
                event, len(self.event_epochs), self.target_fraction, self.schedule
            )
            self._prune(epoch, fraction)
        if logs is not None and self._probed is not None:
            self._probed.refresh_from_masks()
            logs["live_units"] = int(sum(self._probed.live[k].sum() for k in self._probed.keys))

    def _prune(self, epoch, fraction):
        probed = self._probed
        probed.refresh_from_masks()
        scores = self.criterion(
            probed, self.x, self.y, strategy=self.model.distribute_strategy
        )
        for group in probed.groups:
            live = probed.live[group.key]
            target_off = min(math.ceil(fraction * group.size - 1e-9), group.size - self.min_units)
            count = target_off - int((~live).sum())
            if count <= 0:
                continue
            candidates = np.flatnonzero(live & np.isfinite(scores[group.key]))
            order = candidates[np.argsort(scores[group.key][candidates], kind="stable")]
            units = np.sort(order[:count])
            for name in group.layers:
                layer = probed.member_layer(name)
                mask = layer.get_unit_mask()
                mask[group.unit_group.indices(name)[units]] = 0.0
                layer.set_unit_mask(mask)
            probed.refresh_from_masks()
            self.events.append(
                {
                    "epoch": epoch,
                    "layer": group.key,
                    "masked": group.layer_indices(units).tolist(),
                    "fraction": fraction,
                    "live_units": int(probed.live[group.key].sum()),
                }
            )
            if self.verbose:
                print(
                    f"CriterionPruning: epoch {epoch}, masked {len(units)} units of "
                    f"'{group.key}' by {self.criterion.name}; "
                    f"{self.events[-1]['live_units']} live"
                )

"""Scheduled pruning by any criterion during `fit`, through unit masks.

At the end of the epochs a `Schedule` picks, the callback scores the live
units of the model's prunable layers with a `keras_darn.criteria` criterion
on held-out data and masks the lowest-scored ones (`set_unit_mask`), until
the `Target` is reached. Masked units stay off for the rest of training;
`keras_darn.shrink(model)` then returns the plain smaller model. Under a
`tf.distribute` strategy the criterion's statistics are computed by all
replicas and summed (`ProbedModel.accumulate`).
"""

import math

import keras
import numpy as np

from keras_darn.criteria import base as criteria_base
from keras_darn.criteria.probes import ProbedModel
from keras_darn.methods.pruning.budget import uniform_fraction
from keras_darn.resizing.schedules import Linear
from keras_darn.resizing.schedules import Schedule
from keras_darn.resizing.targets import Target


class CriterionPruning(keras.callbacks.Callback):
    """Masks the lowest-scored units of prunable layers on a schedule.

    Pruning events happen at the end of the epochs (counted from 0 within
    this `fit`) where `schedule(epoch)` is not `None`; the schedule's amount
    is the fraction of the target reached. At an event of amount a, every
    probed group has `ceil(a * f * units)` units masked, f being the
    target's fraction: the live units with the lowest scores go, on every
    layer of the group. A target in parameters or FLOPs is turned into the
    uniform fraction that reaches it when training begins. The model must
    use `PrunableDense`/`PrunableConv2D` (`darn.prepare` converts it). After
    every epoch `logs["live_units"]` holds the number of live units of the
    probed groups.

    Args:
        criterion: a `keras_darn.criteria.Criterion` or a registered name.
        x: held-out inputs the scores are computed on.
        y: their targets (for loss-based criteria). Defaults to `None`.
        target: a `keras_darn.Target` with `fraction`, `params` or `flops`
            (and `min_units`, `exclude`). Defaults to
            `Target(fraction=0.5)`.
        schedule: a `keras_darn.Schedule`. Defaults to `Linear(start=0)`
            (one event, at the end of the first epoch).
        layers: names of layers whose groups are pruned. Defaults to
            `None` (every group made of prunable layers).
        verbose: 1 prints each event. Defaults to `0`.

    Attributes:
        events: list of dicts `{"step", "action", "layer", "units",
            "fraction", "live_units"}`, one per group and event (`units`:
            the unit indices of the group's first layer switched off).
            Reset when training begins.
        fraction: the fraction of each group's units masked at the end
            (resolved from the target when training begins).

    Raises:
        ValueError: for invalid arguments, or at the start of training when
            no probed layer has a unit mask.

    Example:

    ```python
    model, callback = darn.prepare(model, "taylor1", darn.Target(fraction=0.5),
                                   validation_data=(x_val, y_val),
                                   schedule=darn.schedules.Linear(start=1, end=4))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=6, callbacks=[callback])
    small = callback.finish().model
    ```
    """

    def __init__(self, criterion, x, y=None, target=None, schedule=None, layers=None, verbose=0):
        super().__init__()
        self.criterion = criteria_base.get(criterion)
        self.target = Target.get(target) if target is not None else Target(fraction=0.5)
        self.target.check_supported("CriterionPruning", ("fraction", "params", "flops"), True)
        self.schedule = Schedule.get(schedule) if schedule is not None else Linear(start=0)
        if self.criterion.needs_labels and y is None:
            raise ValueError(
                f"Criterion '{self.criterion.name}' needs targets: pass `y`. Received: y=None"
            )
        self.x = x
        self.y = y
        self.layer_names = layers
        self.verbose = verbose
        self.events = []
        self.fraction = self.target.fraction
        self._probed = None

    def on_train_begin(self, logs=None):
        self.events = []
        probed = ProbedModel(self.model, layers=self.layer_names)
        maskable = [
            g for g in probed.groups
            if all(hasattr(probed.member_layer(n), "set_unit_mask") for n in g.layers)
            and not set(g.layers) & set(self.target.exclude)
        ]
        if not maskable:
            raise ValueError(
                "CriterionPruning found no prunable layer to mask: convert the model "
                "with `keras_darn.layers.to_prunable(model)` before compiling it."
            )
        probed.groups = maskable
        self._probed = probed
        if self.target.fraction is None:
            self.fraction = uniform_fraction(self.model, probed.groups, self.target)

    def on_epoch_end(self, epoch, logs=None):
        amount = self.schedule(epoch)
        if amount is not None:
            self._prune(epoch, self.fraction * amount)
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
            min_units = max(self.target.min_units_of(n) for n in group.layers)
            target_off = min(math.ceil(fraction * group.size - 1e-9), group.size - min_units)
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
                    "step": epoch,
                    "action": "remove",
                    "layer": group.key,
                    "units": group.layer_indices(units).tolist(),
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

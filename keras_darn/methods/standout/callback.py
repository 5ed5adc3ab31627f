"""Standout pruning: mask the units with the lowest retention on a schedule.

Dutta & Mitra, *A minimal gradient flow method for adaptive node pruning*,
Algorithm 1: every pruning period `P` epochs the pruning ratio grows as
`ratio <- ratio + gamma * (1 - ratio)` (`darn.schedules.Geometric(gamma,
every=P)`) and the units with the lowest retention probability (accumulated
over the training data of the epoch) are removed until `ratio * width` units
are gone, stopping at a target width.
"""

import math
import warnings

import keras
import numpy as np

from keras_darn.layers.standout_dense import StandoutDense
from keras_darn.resizing.method import ResumableCallback
from keras_darn.resizing.method import schedule_epochs
from keras_darn.resizing.schedules import Geometric
from keras_darn.resizing.schedules import Schedule
from keras_darn.validation import check_layer_names


def standout_units_to_remove(width, ratio, target_units):
    """Number of units gone once `ratio` is reached, never below the target.

    Units are removed one at a time while fewer than `ratio * width` are gone
    (the paper's inner loop), so the count is `ceil(ratio * width)`, capped so
    that `target_units` remain.

    Args:
        width: Positive integer, the layer's original number of units.
        ratio: Float in `[0, 1]`, the current pruning ratio.
        target_units: Integer in `[1, width]`, the width to stop at.

    Returns:
        Integer number of removed units.
    """
    # The small tolerance keeps 0.75 * 512 = 384 from becoming 385 after
    # floating-point accumulation of the recurrence.
    removed = math.ceil(ratio * width - 1e-9)
    return int(min(max(removed, 0), width - target_units))


@keras.saving.register_keras_serializable(package="keras_darn")
class StandoutPruning(ResumableCallback):
    """Prunes `StandoutDense` units with the lowest retention during `fit`.

    At the start of every epoch the callback resets each layer's retention
    accumulators; the layer adds its retention probabilities `p` over the
    epoch's training batches (summed across replicas under a
    `tf.distribute` strategy). At the end of every epoch where
    `schedule(epoch)` is not `None`, that amount is
    the pruning ratio (the fraction of the original width removed) and, in
    every tracked layer, the live units with the lowest mean retention are
    masked off until `ceil(ratio * units)` units are gone, never going below
    `target_units`. Masked units stay masked. The default schedule,
    `Geometric(0.5)`, is the paper's `ratio <- ratio + gamma * (1 - ratio)`
    with `gamma = 0.5` at the end of every epoch; the paper's own setting
    is `Geometric(0.5, every=25)`. After every epoch the number of live
    units is written to `logs["standout/<layer name>/live_units"]`.

    Epochs are Keras' absolute, 0-based epoch indices (the `epoch` that
    `fit` passes to callbacks), so `fit(initial_epoch=3)` starts at
    `schedule(3)`, and a run resumed by `keras.callbacks.BackupAndRestore`
    goes on with the schedule where it stopped. The callback warns when
    its schedule acts at no epoch of a `fit`. The event history, the
    ratio and the state of the layers' random draws are saved with the
    model's weights (list this callback before `BackupAndRestore`), and
    reset when training begins.

    Args:
        target_units: Positive integer, or dict mapping layer names to
            positive integers: the width at which pruning stops.
        schedule: A `keras_darn.Schedule` (or its `keras.saving` config)
            giving the pruning ratio, in `[0, 1]`, at the epochs that prune.
            Defaults to `None`: `darn.schedules.Geometric(rate=0.5,
            every=1)`.
        layers: Optional list of names of `StandoutDense` layers to prune.
            Defaults to `None`: the layers named in `target_units` if it is a
            dict, else every `StandoutDense` in the model (nested models
            included).
        verbose: Integer, 1 prints each pruning event. Defaults to `0`.

    Attributes:
        ratio: The current pruning ratio (it stays once every layer is at
            its target).
        events: List of dicts `{"step", "action": "remove", "layer",
            "units", "live_units", "ratio"}`, one per layer and event,
            `step` being the epoch and `units` the unit indices masked off
            at that event.

    Raises:
        ValueError: If an argument is out of range, or (at the start of
            `fit`) the model has no matching `StandoutDense` layer or a
            target exceeds a layer's width, or (at an event) the schedule
            gives a ratio outside `[0, 1]`.

    Example:

    ```python
    model, callback = darn.prepare(model, "standout", darn.Target(units=32),
                                   schedule=darn.schedules.Geometric(0.5, every=25))
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=100, callbacks=[callback])
    small = callback.finish().model
    ```
    """

    def __init__(self, target_units, schedule=None, layers=None, verbose=0):
        super().__init__()
        if isinstance(target_units, dict):
            for name, target in target_units.items():
                _check_target(target, None, name)
        else:
            _check_target(target_units, None, "every layer")
        schedule = Geometric(0.5) if schedule is None else Schedule.get(schedule)
        check_layer_names(layers, "layers", allow_none=True)
        if layers is not None:
            layers = list(layers)
        self.target_units = target_units
        self.schedule = schedule
        self.layer_names = layers
        self.verbose = verbose
        self.reset_state()

    def reset_state(self):
        self.ratio = 0.0
        self.events = []
        self._ratios = []
        self._layers = []

    def get_state(self):
        # Keras does not save a SeedGenerator's state with the weights; the
        # Bernoulli draws of a resumed run go on from it only if it is here.
        seeds = {
            layer.name: np.asarray(keras.ops.convert_to_numpy(layer.seed_generator.state)).tolist()
            for layer in self._standout_layers()
        }
        return {"events": self.events, "ratios": self._ratios, "seed_states": seeds}

    def set_state(self, state, epoch):
        self.events = [e for e in state.get("events", []) if e["step"] < epoch]
        self._ratios = [r for r in state.get("ratios", []) if r[0] < epoch]
        self.ratio = self._ratios[-1][1] if self._ratios else 0.0
        seeds = state.get("seed_states", {})
        for layer in self._standout_layers():
            if layer.name in seeds:
                variable = layer.seed_generator.state
                variable.assign(np.asarray(seeds[layer.name], dtype=variable.dtype))

    def schedule_summary(self, first_epoch, last_epoch):
        return f"schedule={self.schedule!r}", schedule_epochs(self.schedule, first_epoch, last_epoch)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._layers = self._find_layers()
        for layer in self._layers:
            _check_target(self._target_for(layer), layer.units, layer.name)

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        for layer in self._layers:
            layer.reset_retention()

    def on_epoch_end(self, epoch, logs=None):
        step = epoch
        pending = [
            layer
            for layer in self._layers
            if layer.active_units > self._target_for(layer)
        ]
        amount = self.schedule(step) if pending else None
        if amount is not None:
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not (
                0.0 <= amount <= 1.0
            ):
                raise ValueError(
                    "StandoutPruning: the schedule must give a pruning ratio in [0, 1]. "
                    f"Received: schedule({step})={amount!r} from schedule={self.schedule!r}"
                )
            self.ratio = float(amount)
            self._ratios.append([step, self.ratio])
            for layer in pending:
                self._prune_layer(layer, step)
        if logs is not None:
            for layer in self._layers:
                logs[f"standout/{layer.name}/live_units"] = layer.active_units
        super().on_epoch_end(epoch, logs)

    def _prune_layer(self, layer, step):
        count = float(keras.ops.convert_to_numpy(layer.retention_count))
        if count <= 0:
            warnings.warn(
                f"StandoutPruning: layer '{layer.name}' accumulated no "
                f"retention probabilities in epoch {step}, so it is not "
                "pruned now. Is it called with `training=True` during fit?",
                stacklevel=2,
            )
            return
        mask = layer.get_unit_mask()
        target = self._target_for(layer)
        removed_total = standout_units_to_remove(layer.units, self.ratio, target)
        to_remove = int(mask.sum()) - (layer.units - removed_total)
        if to_remove <= 0:
            return
        retention = layer.accumulated_retention()
        live = np.flatnonzero(mask)
        # Stable sort: equal retentions are removed lowest index first.
        order = live[np.argsort(retention[live], kind="stable")]
        removed = np.sort(order[:to_remove])
        mask[removed] = 0.0
        layer.set_unit_mask(mask)
        self.events.append(
            {
                "step": step,
                "action": "remove",
                "layer": layer.name,
                "units": removed.tolist(),
                "live_units": int(mask.sum()),
                "ratio": self.ratio,
            }
        )
        if self.verbose:
            print(
                f"\nEpoch {step + 1}: StandoutPruning ratio {self.ratio:.4f}, "
                f"layer '{layer.name}' -> {int(mask.sum())} live units."
            )

    def _target_for(self, layer):
        if isinstance(self.target_units, dict):
            return self.target_units[layer.name]
        return self.target_units

    def _standout_layers(self):
        if self.model is None:
            return []
        return [
            layer
            for layer in self.model._flatten_layers(include_self=False)
            if isinstance(layer, StandoutDense)
        ]

    def _find_layers(self):
        found = self._standout_layers()
        by_name = {layer.name: layer for layer in found}
        wanted = self.layer_names
        if wanted is None and isinstance(self.target_units, dict):
            wanted = list(self.target_units)
        if wanted is None:
            selected = found
        else:
            missing = [n for n in wanted if n not in by_name]
            if missing:
                raise ValueError(
                    f"StandoutPruning: layers {missing} are not StandoutDense "
                    "layers of the model. StandoutDense layers: "
                    f"{sorted(by_name)}"
                )
            selected = [by_name[n] for n in wanted]
        if not selected:
            raise ValueError(
                "StandoutPruning needs at least one StandoutDense layer "
                "(keras_darn.layers.StandoutDense) in the model; found none."
            )
        if isinstance(self.target_units, dict):
            names = {layer.name for layer in selected}
            unknown = sorted(set(self.target_units) - names)
            missing = sorted(names - set(self.target_units))
            if unknown or missing:
                raise ValueError(
                    "Received an invalid value for `target_units`: its keys "
                    f"must be the pruned layers {sorted(names)}. Unknown: "
                    f"{unknown}; missing: {missing}."
                )
        return selected

    def get_config(self):
        return {
            "target_units": self.target_units,
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "layers": self.layer_names,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_target(target, width, where):
    if isinstance(target, bool) or not isinstance(target, int) or target < 1:
        raise ValueError(
            "Received an invalid value for `target_units` "
            f"({where}), expected a positive integer. Received: "
            f"target_units={target!r}"
        )
    if width is not None and target > width:
        raise ValueError(
            f"Received an invalid value for `target_units` ({where}): it "
            f"exceeds the layer's {width} units. Received: "
            f"target_units={target}"
        )

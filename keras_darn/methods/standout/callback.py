"""Standout pruning: mask the units with the lowest retention every period.

Dutta & Mitra, *A minimal gradient flow method for adaptive node pruning*,
Algorithm 1: every pruning period `P` epochs the pruning ratio grows as
`ratio <- ratio + gamma * (1 - ratio)` and the units with the lowest retention
probability (accumulated over the training data of the epoch) are removed
until `ratio * width` units are gone, stopping at a target width.
"""

import math
import warnings

import keras
import numpy as np

from keras_darn.layers.standout_dense import StandoutDense
from keras_darn.validation import check_positive_int


def standout_pruning_ratio(num_events, gamma):
    """Pruning ratio after `num_events` pruning events (paper, Algorithm 1).

    Iterates `ratio <- ratio + gamma * (1 - ratio)` from `ratio = 0`, which
    equals `1 - (1 - gamma) ** num_events`.

    Args:
        num_events: Non-negative integer, number of pruning events so far.
        gamma: Float in `(0, 1]`, the pruning ratio `gamma`.

    Returns:
        Float in `[0, 1]`: the fraction of the original width to remove.

    Raises:
        ValueError: If `num_events` is negative or `gamma` is out of range.
    """
    _check_gamma(gamma)
    if isinstance(num_events, bool) or not isinstance(num_events, int):
        raise ValueError(
            "Received an invalid value for `num_events`, expected a "
            f"non-negative integer. Received: num_events={num_events!r}"
        )
    if num_events < 0:
        raise ValueError(
            "Received an invalid value for `num_events`, expected a "
            f"non-negative integer. Received: num_events={num_events}"
        )
    ratio = 0.0
    for _ in range(num_events):
        ratio = ratio + gamma * (1.0 - ratio)
    return ratio


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


def standout_pruning_schedule(width, gamma, target_units):
    """Live units after each pruning event, until the target is reached.

    Args:
        width: Positive integer, the layer's original number of units.
        gamma: Float in `(0, 1]`, the pruning ratio.
        target_units: Integer in `[1, width]`, the width to stop at.

    Returns:
        List of integers, the live units after event 1, 2, ...; its last
        entry is `target_units` and its length is the number of events
        (so pruning ends after `len(schedule) * pruning_period` epochs).

    Raises:
        ValueError: If an argument is out of range.

    Example:

    >>> standout_pruning_schedule(512, 0.5, 32)
    [256, 128, 64, 32]
    """
    _check_gamma(gamma)
    _check_target(target_units, width, "layer")
    schedule = []
    live = width
    events = 0
    while live > target_units:
        events += 1
        ratio = standout_pruning_ratio(events, gamma)
        live = width - standout_units_to_remove(width, ratio, target_units)
        schedule.append(live)
    return schedule


@keras.saving.register_keras_serializable(package="keras_darn")
class StandoutPruning(keras.callbacks.Callback):
    """Prunes `StandoutDense` units with the lowest retention during `fit`.

    At the start of every epoch the callback resets each layer's retention
    accumulators; the layer adds its retention probabilities `p` over the
    epoch's training batches (summed across replicas under a
    `tf.distribute` strategy). At the end of every `pruning_period`-th epoch
    (counted from the start of this `fit`) the ratio grows as
    `ratio <- ratio + gamma * (1 - ratio)` and, in every tracked layer, the
    live units with the lowest mean retention are masked off until
    `ceil(ratio * units)` units are gone, never going below `target_units`.
    Masked units stay masked. After every epoch the number of live units is
    written to `logs["standout/<layer name>/live_units"]`.

    Args:
        pruning_period: Positive integer, epochs between pruning events
            (the paper's `P`).
        gamma: Float in `(0, 1]`, the pruning ratio (the paper's `gamma`).
        target_units: Positive integer, or dict mapping layer names to
            positive integers: the width at which pruning stops.
        layers: Optional list of names of `StandoutDense` layers to prune.
            Defaults to `None`: the layers named in `target_units` if it is a
            dict, else every `StandoutDense` in the model (nested models
            included).
        verbose: Integer, 1 prints each pruning event. Defaults to `0`.

    Attributes:
        ratio: The current pruning ratio.
        pruning_events: List of dicts `{"epoch", "layer", "removed",
            "live_units"}`, one per layer and event, `removed` being the unit
            indices masked off at that event.

    Raises:
        ValueError: If an argument is out of range, or (at the start of
            `fit`) the model has no matching `StandoutDense` layer or a
            target exceeds a layer's width.

    Example:

    ```python
    model.fit(
        x, y, epochs=100,
        callbacks=[StandoutPruning(pruning_period=25, gamma=0.5,
                                   target_units=32)],
    )
    ```
    """

    def __init__(
        self, pruning_period, gamma, target_units, layers=None, verbose=0
    ):
        super().__init__()
        check_positive_int(pruning_period, "pruning_period")
        _check_gamma(gamma)
        if isinstance(target_units, dict):
            for name, target in target_units.items():
                _check_target(target, None, name)
        else:
            _check_target(target_units, None, "every layer")
        if layers is not None:
            if isinstance(layers, str) or not all(
                isinstance(name, str) for name in layers
            ):
                raise ValueError(
                    "Received an invalid value for `layers`, expected a list "
                    f"of layer names or None. Received: layers={layers!r}"
                )
            layers = list(layers)
        self.pruning_period = pruning_period
        self.gamma = float(gamma)
        self.target_units = target_units
        self.layer_names = layers
        self.verbose = verbose
        self._reset_state()

    def _reset_state(self):
        self.ratio = 0.0
        self.pruning_events = []
        self._epochs_seen = 0
        self._layers = []

    def on_train_begin(self, logs=None):
        self._reset_state()
        self._layers = self._find_layers()
        for layer in self._layers:
            _check_target(self._target_for(layer), layer.units, layer.name)

    def on_epoch_begin(self, epoch, logs=None):
        for layer in self._layers:
            layer.reset_retention()

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_seen += 1
        pending = [
            layer
            for layer in self._layers
            if layer.active_units > self._target_for(layer)
        ]
        if pending and self._epochs_seen % self.pruning_period == 0:
            self.ratio = self.ratio + self.gamma * (1.0 - self.ratio)
            for layer in pending:
                self._prune_layer(layer, epoch)
        if logs is not None:
            for layer in self._layers:
                logs[f"standout/{layer.name}/live_units"] = layer.active_units

    def _prune_layer(self, layer, epoch):
        count = float(keras.ops.convert_to_numpy(layer.retention_count))
        if count <= 0:
            warnings.warn(
                f"StandoutPruning: layer '{layer.name}' accumulated no "
                f"retention probabilities in epoch {epoch}, so it is not "
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
        self.pruning_events.append(
            {
                "epoch": epoch,
                "layer": layer.name,
                "removed": removed.tolist(),
                "live_units": int(mask.sum()),
            }
        )
        if self.verbose:
            print(
                f"\nEpoch {epoch + 1}: StandoutPruning ratio {self.ratio:.4f}, "
                f"layer '{layer.name}' -> {int(mask.sum())} live units."
            )

    def _target_for(self, layer):
        if isinstance(self.target_units, dict):
            return self.target_units[layer.name]
        return self.target_units

    def _find_layers(self):
        found = [
            layer
            for layer in self.model._flatten_layers(include_self=False)
            if isinstance(layer, StandoutDense)
        ]
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
            "pruning_period": self.pruning_period,
            "gamma": self.gamma,
            "target_units": self.target_units,
            "layers": self.layer_names,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_gamma(gamma):
    if (
        isinstance(gamma, bool)
        or not isinstance(gamma, (int, float))
        or not 0.0 < gamma <= 1.0
    ):
        raise ValueError(
            "Received an invalid value for `gamma`, expected a float in "
            f"(0, 1]. Received: gamma={gamma!r}"
        )


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

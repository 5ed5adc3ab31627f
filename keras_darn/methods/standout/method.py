"""Standout as a front-door method: `darn.prepare(model, "standout", target)`."""

import math
import numbers

from keras_darn.methods.standout.callback import StandoutPruning
from keras_darn.methods.standout.conversion import standout_layers
from keras_darn.methods.standout.conversion import to_standout
from keras_darn.resizing.entry import register_method
from keras_darn.resizing.method import Method
from keras_darn.resizing.schedules import Geometric


def _check_finite(value, name):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
    ):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a finite float. "
            f"Received: {name}={value!r}"
        )


@register_method("standout")
class Standout(Method):
    """Standout pruning: drops the units with the lowest retention during `fit`.

    Dutta & Mitra, *A minimal gradient flow method for adaptive node
    pruning*. Every hidden layer is a `StandoutDense` (adaptive dropout
    after Ba & Frey: each unit's retention probability is computed from the
    layer's input, units are dropped at random with it in training and
    scaled by it at inference). At the end of every epoch (Keras' absolute
    epoch index) where the schedule gives a pruning ratio, the units with the lowest mean
    retention over that epoch are masked until `ceil(ratio * width)` units
    of the original width are gone, never below the layer's target width.
    `callback.finish()` then removes the masked units (`keras_darn.shrink`):
    the smaller model keeps its `StandoutDense` layers and computes the same
    inference outputs as the masked one.

    `prepare` copies the model: if it has `StandoutDense` layers, those are
    pruned (`alpha` and `beta` are then not used); otherwise every hidden
    `keras.layers.Dense` (one whose units reach no model output and are not
    merged with another layer's) not in `target.exclude` becomes a
    `StandoutDense` with the same units, activation, kernel and bias, and
    the training copy computes a different function from the model given
    (inference scales every unit by its retention). Standout scores units
    on the training batches, so `validation_data` is not used.

    Target amounts: `units` (the width every pruned layer ends at, an int
    or `{layer_name: int}`; layers missing from a dict are left alone) or
    `fraction` (of every pruned layer's units to remove); one of them is
    required. `min_units` and `exclude` apply. A target wider than a layer
    leaves that layer as it is.

    The schedule gives the pruning ratio at the epochs that prune. Defaults
    to `darn.schedules.Geometric(0.5, every=1)`: the paper's
    `ratio <- ratio + gamma * (1 - ratio)` with `gamma = 0.5` after every
    epoch (the paper prunes every `P = 25` epochs:
    `Geometric(0.5, every=25)`).

    Args:
        alpha: scale of the standout pre-activation of the new
            `StandoutDense` layers. Defaults to `1.0`.
        beta: offset of the standout pre-activation of the new layers.
            Defaults to `0.0`.
        verbose: 1 prints each pruning event. Defaults to `0`.

    Example:

    ```python
    model, callback = darn.prepare(model, "standout", darn.Target(units=32),
                                   schedule=darn.schedules.Geometric(0.5, every=2))
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10, callbacks=[callback])
    result = callback.finish()   # result.model: the hidden layers 32 wide
    ```
    """

    prepare_amounts = ("fraction", "units")

    def __init__(self, alpha=1.0, beta=0.0, verbose=0):
        _check_finite(alpha, "alpha")
        _check_finite(beta, "beta")
        if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose < 0:
            raise ValueError(
                "Received an invalid value for `verbose`, expected a non-negative integer. "
                f"Received: verbose={verbose!r}"
            )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.verbose = verbose

    def prepare(self, model, target, validation_data=None, schedule=None):
        del validation_data  # Standout scores units on the training batches.
        if target.units is None and target.fraction is None:
            raise ValueError(
                f"Method '{self.name}' needs a target amount: one of "
                f"{list(self.prepare_amounts)}, e.g. darn.Target(units=32) or "
                f"darn.Target(fraction=0.5). Received: target={target!r}"
            )
        copy, _ = to_standout(model, self.alpha, self.beta, exclude=target.exclude)
        layers = standout_layers(copy)
        if isinstance(target.units, dict):
            known = {layer.name for layer in layers}
            unknown = sorted(set(target.units) - known)
            if unknown:
                raise ValueError(
                    f"Received an invalid value for `units`: {unknown} are not layers "
                    f"Standout prunes. Layers it prunes: {sorted(known)}. Received: "
                    f"units={target.units!r}"
                )
        widths = {}
        for layer in layers:
            width = target.width_of(layer.name, layer.units)
            if width is None:
                continue
            width = max(width, min(target.min_units_of(layer.name), layer.units))
            widths[layer.name] = min(width, layer.units)
        if not widths:
            raise ValueError(
                f"Method '{self.name}' has no layer to prune: every StandoutDense layer "
                f"{[layer.name for layer in layers]} is excluded or missing from the "
                f"target. Received: target={target!r}"
            )
        callback = StandoutPruning(
            target_units=widths,
            schedule=Geometric(0.5, every=1) if schedule is None else schedule,
            layers=list(widths),
            verbose=self.verbose,
        )
        return copy, callback

    def get_config(self):
        return {"alpha": self.alpha, "beta": self.beta, "verbose": self.verbose}

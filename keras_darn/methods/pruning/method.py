"""Structured pruning by an importance criterion: during `fit` or between fits."""

import numbers

from keras_darn.criteria import base as criteria_base
from keras_darn.graph import unit_groups
from keras_darn.graph.nodes import shared_layers
from keras_darn.methods.pruning import budget
from keras_darn.methods.pruning.callback import CriterionPruning
from keras_darn.methods.pruning.fine_tune import prune_and_fine_tune
from keras_darn.methods.pruning.ranking import prune_by_ranking
from keras_darn.rebuild import Rebuilder
from keras_darn.resizing.entry import register_criterion_method
from keras_darn.resizing.entry import register_method
from keras_darn.resizing.method import Method
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures
from keras_darn.resizing.schedules import Linear
from keras_darn.validation import check_bool
from keras_darn.validation import check_one_of
from keras_darn.validation import check_positive_int

CRITERIA = {
    "magnitude": "magnitude",
    "magnitude_l1": "magnitude_l1",
    "bn_scale": "bn_scale",
    "activation_variance": "variance",
    "activation_l1": "l1",
    "correlation": "correlation",
    "taylor1": "taylor1",
    "taylor2": "taylor2",
    "brute_force": "brute_force",
    "weight_l1": "weight_l1",
    "random": "random",
}

def _split(validation_data):
    if validation_data is None:
        return None, None
    if isinstance(validation_data, tuple):
        if len(validation_data) != 2:
            raise ValueError(
                "Expected `validation_data` as x or (x, y). Received a tuple of "
                f"{len(validation_data)} items."
            )
        return validation_data
    return validation_data, None

def default_schedule(epochs):
    """Torch-Pruning's recipe scaled to `epochs`: train, then prune + fine-tune 5 times.

    For 8 epochs: events at the end of epochs 2 to 6 (3 epochs of training,
    5 steps each followed by an epoch of fine-tuning). For fewer epochs the
    steps start earlier; a single epoch prunes at its end.
    """
    if epochs <= 1:
        return Linear(start=0)
    end = epochs - 2
    start = max(0, end - 4)
    return Linear(start=start, end=end)


@register_criterion_method
@register_method(*[(name, {"criterion": criterion}) for name, criterion in CRITERIA.items()])
class CriterionMethod(Method):
    """Removes the units a criterion scores lowest, in coupled groups.

    A unit's score is computed over its whole coupled group (for
    `"magnitude"`: every weight slice that holds it, filters in, kernels out
    and BatchNorm scales). By default every group loses the same fraction
    of its width, its lowest-scored units first; with `global_pruning=True`
    all units of all groups compete in one ranking of scores normalized per
    group, so the widths come out of the data (better on a plain CNN at 4x
    fewer parameters, far worse on a residual CNN at 8x and beyond, where it
    cuts single layers to a few units; see the pruning docs' measurements).
    Targets in parameters or FLOPs are reached exactly, as far as units
    allow: the largest model along the ranking at or below the count.

    During `fit` (`darn.prepare`) a `CriterionPruning` callback masks the
    lowest-scored units of every coupled group at the epochs of the schedule
    (a masked unit's weights are zeroed on every member of its group and
    kept zero), and `finish()` removes them (default: one event, at the end of
    epoch 0; epochs are Keras' absolute epoch indices). Between fits
    (`darn.resize`), with a `params`/`flops` target, training data `x` or
    no data at all (`algorithm="fine_tune"`), it trains `epochs` epochs and prunes at the
    end of the schedule's epochs (default: 3/8 of the epochs of training,
    then 5 steps each followed by fine-tuning), rebuilding the model
    smaller after every step (`shrink=True`, optimizer state carried) so
    that fine-tuning gets cheaper as the model shrinks; `epochs=0` prunes
    once, at once. With only `validation_data` it runs *The Incredible
    Shrinking Neural Network*'s ranking (`algorithm="iterative"` or
    `"single"`): units go one at a time, without retraining, until the
    target fraction is removed or the next removal would cost more accuracy
    than `max_accuracy_drop` on `validation_data`.

    The criteria, by method name: `"magnitude"` (sum of squared weights
    over the group's slices; data-free; the recommended default),
    `"magnitude_l1"` (the same with |w|), `"bn_scale"` (|gamma| of the
    BatchNormalization layers a unit passes; data-free; Liu et al.,
    *Network Slimming*), `"activation_variance"`, `"activation_l1"`,
    `"correlation"` (activation statistics of Gandhi & Bandaru,
    *Dynamically Adding and Removing Neurons from Neural Networks*),
    `"taylor1"`, `"taylor2"` (first/second-order Taylor estimate of the
    loss change), `"brute_force"` (the loss change measured by removing
    each unit; *The Incredible Shrinking Neural Network*), `"weight_l1"`
    (incoming weight L1 norm of the producers only, data-free) and
    `"random"` (a baseline). Data-free criteria take no data.

    Target amounts: during fit `fraction`, `params` or `flops` (one is
    required); between fits the same with `algorithm="fine_tune"`, and
    `fraction` and/or `max_accuracy_drop` (or none: the full pruning curve)
    with the ranking. `min_units` and `exclude` apply to all.

    Args:
        criterion: a registered criterion name or a
            `keras_darn.criteria.Criterion` (set by the method name).
        global_pruning: one ranking over all groups. Defaults to `False`
            (the same fraction of every group).
        round_to: keep every pruned width a multiple of this (rounded up),
            e.g. 8 for SIMD kernels. Defaults to `1`.
        max_ratio: the largest fraction of a group's width that may go, a
            float in `(0, 1]` or `{layer_name: float}`. Defaults to `None`
            (no limit beyond `Target.min_units`).
        shrink: between fits, rebuild smaller after every step (otherwise
            mask, and rebuild once at the end). Defaults to `True`.
        batch_size: between fits, the `fit` batch size. Defaults to `None`
            (Keras' default).
        initial_epoch: between fits, the epochs the model was already
            trained, as `fit`'s `initial_epoch`: epochs `initial_epoch` to
            `epochs - 1` are trained and the schedule's event at the end of
            epoch `initial_epoch - 1` is applied first (a model trained 3
            epochs, `epochs=8`, `Linear(2, 6)`: prune at once, then four times
            one epoch of fine-tuning and a step, and a last epoch of
            fine-tuning). Defaults to `0`.
        reset_optimizer: between fits, a fresh optimizer after every
            pruning step (zero slots and step counter, so Adam's bias
            correction starts over; a learning-rate schedule goes on from
            the current step), as Torch-Pruning's examples build a new
            optimizer after `pruner.step()`. Defaults to `False` (the
            optimizer state of the kept units is carried).
        algorithm: between fits, `"fine_tune"` (prune and fine-tune),
            `"iterative"` (ranking, re-rank after every removal) or
            `"single"` (one ranking). Defaults to `None`: `"iterative"` when
            the target has `max_accuracy_drop`, or `validation_data` is
            given without `x`, and no `params`/`flops`; else
            `"fine_tune"`.
        eval_data: between fits, `(x_test, y_test)` also evaluated after
            every removal of the ranking (recorded in `Result.history`,
            never used to decide). Defaults to `None`.
        error_surface_every: ranking only: record the loss against a gain
            on the next unit's output every this many removals (the paper's
            error surfaces; `keras_darn.plots.plot_error_surfaces` draws
            them). Defaults to `None` (never).
        alphas: the gains of the error surfaces. Defaults to `None`
            (`np.linspace(0, 10, 101)`).
        verbose: 1 prints each pruning event. Defaults to `0`.

    Example:

    ```python
    model, callback = darn.prepare(model, "magnitude", darn.Target(params=0.25),
                                   schedule=darn.schedules.Linear(start=1, end=3),
                                   round_to=4)
    ```
    """

    prepare_amounts = ("fraction", "params", "flops")
    resize_amounts = ("fraction", "params", "flops", "max_accuracy_drop")

    def __init__(self, criterion="magnitude", global_pruning=False, round_to=1, max_ratio=None,
                 shrink=True, batch_size=None, initial_epoch=0, reset_optimizer=False,
                 algorithm=None, eval_data=None, error_surface_every=None, alphas=None,
                 verbose=0):
        self.criterion = criteria_base.get(criterion)
        if algorithm is not None:
            check_one_of(algorithm, "algorithm", ("fine_tune", "iterative", "single"))
        budget.check_options(round_to, max_ratio)
        if batch_size is not None:
            check_positive_int(batch_size, "batch_size")
        for flag, value in (("global_pruning", global_pruning), ("shrink", shrink),
                            ("reset_optimizer", reset_optimizer)):
            check_bool(value, flag)
        self.global_pruning = bool(global_pruning)
        self.round_to = int(round_to)
        self.max_ratio = max_ratio
        self.shrink = bool(shrink)
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, numbers.Integral) or (
            initial_epoch < 0
        ):
            raise ValueError(
                "Received an invalid value for `initial_epoch`, expected a non-negative integer. "
                f"Received: initial_epoch={initial_epoch!r}"
            )
        self.batch_size = batch_size
        self.initial_epoch = int(initial_epoch)
        self.reset_optimizer = bool(reset_optimizer)
        self.algorithm = algorithm
        self.eval_data = eval_data
        self.error_surface_every = error_surface_every
        self.alphas = alphas
        self.verbose = verbose

    def _scoring_data(self, validation_data):
        x, y = _split(validation_data)
        if self.criterion.needs_data and x is None:
            raise ValueError(
                f"Method '{self.name}' scores units on data: pass validation_data=(x_val, y_val)"
                f"{'' if self.criterion.needs_labels else ' or x_val'}. Received: "
                "validation_data=None"
            )
        if self.criterion.needs_labels and y is None:
            raise ValueError(
                f"Method '{self.name}' needs targets to compute the loss: pass "
                "validation_data=(x_val, y_val)."
            )
        return x, y

    def prepare(self, model, target, validation_data=None, schedule=None):
        x, y = self._scoring_data(validation_data)
        if not target.amounts:
            raise ValueError(
                f"Method '{self.name}' needs a target amount: one of "
                f"{list(self.prepare_amounts)}, e.g. darn.Target(fraction=0.5). Received: "
                f"target={target!r}"
            )
        shared = shared_layers(model)
        if shared:
            name, count = next(iter(shared.items()))
            raise ValueError(
                f"Layer '{name}' is called {count} times in model '{model.name}'; pruning "
                "during fit masks and scores the units of layers called once. Give each call "
                f"a layer of its own. Layers called more than once: {sorted(shared)}."
            )
        callback = CriterionPruning(
            self.criterion, x, y, target=target, schedule=schedule, verbose=self.verbose,
            global_pruning=self.global_pruning, round_to=self.round_to,
            max_ratio=self.max_ratio,
        )
        # A copy by structure: the model given is never modified.
        return Rebuilder(model).build(), callback

    distills_between_fits = True

    def resize(self, model, target, x=None, y=None, validation_data=None, epochs=1,
               schedule=None, verbose=0, distillation=None):
        algorithm = self.algorithm
        if algorithm is None:
            counted = target.params is not None or target.flops is not None
            ranked = target.max_accuracy_drop is not None or (
                x is None and validation_data is not None
            )
            algorithm = "fine_tune" if counted or not ranked else "iterative"
        if algorithm == "fine_tune":
            return self._fine_tune(model, target, x, y, validation_data, epochs, schedule,
                                   verbose, distillation)
        if distillation is not None:
            raise ValueError(
                f"The ranking (algorithm='{algorithm}') does not train, so there is nothing to "
                "distill into; distillation applies to algorithm='fine_tune' (a `fraction`, "
                f"`params` or `flops` target with x and y). Received: distill={distillation!r}"
            )
        if target.params is not None or target.flops is not None:
            raise ValueError(
                f"The ranking (algorithm='{algorithm}') takes `fraction` and/or "
                "`max_accuracy_drop`; a `params` or `flops` target needs "
                f"algorithm='fine_tune'. Received: target={target!r}"
            )
        x_val, y_val = self._scoring_data(validation_data)
        if y_val is None:
            raise ValueError(
                f"Method '{self.name}' ranks units by the accuracy on labelled data between "
                "fits: pass validation_data=(x_val, y_val)."
            )
        if isinstance(target.min_units, dict):
            raise ValueError(
                "Between fits, ranking takes one `min_units` for every group. Received: "
                f"min_units={target.min_units!r}"
            )
        layers = None
        if target.exclude:
            layers = [
                name
                for group in unit_groups(model)
                if group.resizable and not set(group.layers) & set(target.exclude)
                for name in group.layers
            ]
        result = prune_by_ranking(
            model, self.criterion, x_val, y_val, algorithm=algorithm,
            max_fraction=target.fraction, max_accuracy_drop=target.max_accuracy_drop,
            min_units=target.min_units, layers=layers, eval_data=self.eval_data,
            error_surface_every=self.error_surface_every, alphas=self.alphas,
            verbose=verbose or self.verbose,
        )
        result.method = self.name
        return result

    def _fine_tune(self, model, target, x, y, validation_data, epochs, schedule, verbose,
                   distillation=None):
        amounts = [a for a in ("fraction", "params", "flops") if a in target.amounts]
        if len(amounts) != 1 or "max_accuracy_drop" in target.amounts:
            raise ValueError(
                "Pruning with fine-tuning takes one of `fraction`, `params` or `flops`. "
                f"Received: target={target!r}"
            )
        if epochs > 0 and x is None:
            raise ValueError(
                f"Method '{self.name}' fine-tunes between pruning steps: pass x (and y), or "
                f"epochs=0 to prune once without training. Received: x=None, epochs={epochs}"
            )
        score_data = None
        if self.criterion.needs_data:
            score_data = self._scoring_data(validation_data)
        allocation = budget.Allocation(self.global_pruning, self.round_to, self.max_ratio,
                                       target)
        schedule = schedule if schedule is not None else default_schedule(epochs)
        small, events, logs = prune_and_fine_tune(
            model, self.criterion, target, allocation, x=x, y=y, score_data=score_data,
            epochs=epochs, schedule=schedule, shrink=self.shrink, batch_size=self.batch_size,
            initial_epoch=self.initial_epoch, reset_optimizer=self.reset_optimizer,
            verbose=verbose or self.verbose, distillation=distillation,
        )
        return Result(small, events, figures(model), method=self.name, history=logs)

    def get_config(self):
        return {
            "criterion": criteria_base.serialize(self.criterion),
            "global_pruning": self.global_pruning,
            "round_to": self.round_to,
            "max_ratio": self.max_ratio,
            "shrink": self.shrink,
            "batch_size": self.batch_size,
            "initial_epoch": self.initial_epoch,
            "reset_optimizer": self.reset_optimizer,
            "algorithm": self.algorithm,
            "error_surface_every": self.error_surface_every,
            "verbose": self.verbose,
        }

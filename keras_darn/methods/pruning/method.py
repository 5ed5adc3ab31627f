"""Structured pruning by an importance criterion: during `fit` or between fits."""

from keras_darn.criteria import base as criteria_base
from keras_darn.graph import unit_groups
from keras_darn.layers import to_prunable
from keras_darn.methods.pruning.callback import CriterionPruning
from keras_darn.methods.pruning.ranking import prune_by_ranking
from keras_darn.resizing.method import Method
from keras_darn.resizing.method import register_method
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures
from keras_darn.validation import check_one_of

CRITERIA = {
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

@register_method(*[(name, {"criterion": criterion}) for name, criterion in CRITERIA.items()])
class CriterionMethod(Method):
    """Removes the units a criterion scores lowest, in coupled groups.

    During `fit` (`darn.prepare`) the model's Dense/Conv2D layers become
    prunable and a `CriterionPruning` callback masks the lowest-scored
    units of every group at the epochs of the schedule (default: one event
    after the first epoch), until the target fraction (or the uniform
    fraction that reaches a parameter or FLOP target) is off. Between fits
    (`darn.resize`) it runs *The Incredible Shrinking Neural Network*'s
    ranking (Iterative Re-ranking by default): units of all groups compete
    in one ranking and go one at a time, without retraining, until the
    target fraction is removed or the next removal would cost more accuracy
    than `max_accuracy_drop` on `validation_data`.

    The criteria, by method name: `"activation_variance"`,
    `"activation_l1"`, `"correlation"` (activation statistics of Gandhi &
    Bandaru, *Dynamically Adding and Removing Neurons from Neural Networks*), `"taylor1"`, `"taylor2"` (first/second-order
    Taylor estimate of the loss change), `"brute_force"` (the loss change
    measured by removing each unit; *The Incredible Shrinking Neural
    Network*), `"weight_l1"` (incoming weight L1 norm, data-free) and
    `"random"` (a baseline).

    Target amounts: during fit `fraction`, `params` or `flops` (one is
    required); between fits `fraction` and/or `max_accuracy_drop`, or none
    (ranking then goes on until every group is at `min_units`, the full
    pruning curve). `min_units` and `exclude` apply to both.

    Args:
        criterion: a registered criterion name or a
            `keras_darn.criteria.Criterion` (set by the method name).
        algorithm: between fits, `"iterative"` (re-rank after every
            removal) or `"single"` (one ranking). Defaults to
            `"iterative"`.
        eval_data: between fits, `(x_test, y_test)` also evaluated after
            every removal (recorded in `Result.history`, never used to
            decide). Defaults to `None`.
        error_surface_every: between fits, record the loss against a gain
            on the next unit's output every this many removals (the paper's
            error surfaces; `keras_darn.plots.plot_error_surfaces` draws
            them). Defaults to `None` (never).
        alphas: the gains of the error surfaces. Defaults to `None`
            (`np.linspace(0, 10, 101)`).
        verbose: 1 prints each pruning event. Defaults to `0`.

    Example:

    ```python
    model, callback = darn.prepare(model, "activation_variance",
                                   darn.Target(fraction=0.5),
                                   validation_data=x_val)
    ```
    """

    prepare_amounts = ("fraction", "params", "flops")
    resize_amounts = ("fraction", "max_accuracy_drop")

    def __init__(self, criterion="taylor1", algorithm="iterative", eval_data=None,
                 error_surface_every=None, alphas=None, verbose=0):
        self.criterion = criteria_base.get(criterion)
        check_one_of(algorithm, "algorithm", ("iterative", "single"))
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
        prunable = to_prunable(model)
        callback = CriterionPruning(
            self.criterion, x, y, target=target, schedule=schedule, verbose=self.verbose
        )
        return prunable, callback

    def resize(self, model, target, x=None, y=None, validation_data=None, epochs=1,
               schedule=None, verbose=0):
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
        small, history = prune_by_ranking(
            model, self.criterion, x_val, y_val, algorithm=self.algorithm,
            max_fraction=target.fraction, max_accuracy_drop=target.max_accuracy_drop,
            min_units=target.min_units, layers=layers, eval_data=self.eval_data,
            error_surface_every=self.error_surface_every, alphas=self.alphas,
            verbose=verbose or self.verbose,
        )
        steps = history["steps"]
        events = [
            {"step": i, "action": "remove", "layer": s["layer"], "units": [int(s["unit"])],
             "score": s["score"], "accuracy": s["accuracy"]}
            for i, s in enumerate(steps[1:])
        ]
        return Result(small, events, figures(model), method=self.name, history=history)

    def get_config(self):
        return {
            "criterion": criteria_base.serialize(self.criterion),
            "algorithm": self.algorithm,
            "error_surface_every": self.error_surface_every,
            "verbose": self.verbose,
        }

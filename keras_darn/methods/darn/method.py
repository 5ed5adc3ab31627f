"""`DARN`: Algorithm 1 (Dynamic Neuron Removal) at the front door."""

import keras

from keras_darn.criteria import base as criteria_base
from keras_darn.criteria.correlation import ActivationCorrelation
from keras_darn.graph import unit_groups
from keras_darn.methods.darn.driver import dynamic_neuron_removal
from keras_darn.resizing.entry import register_method
from keras_darn.resizing.method import Method
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures
from keras_darn.resizing.schedules import LogSpaced
from keras_darn.validation import check_layer_names
from keras_darn.validation import check_positive_int

# The accuracy Algorithm 1 may lose when the target gives none (1.5 points).
DEFAULT_SACRIFICE = 0.015


def default_thresholds(criterion):
    """The thresholds of the examples: 0.05 to 0.6 relative score, or
    correlation 0.98 down to 0.5, six each, on a log scale."""
    if isinstance(criterion, ActivationCorrelation):
        return LogSpaced(0.98, 0.5, 6, distance_to_one=True)
    return LogSpaced(0.05, 0.6, 6)


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a bool. Received: {name}={value!r}"
        )


@register_method("darn")
class DARN(Method):
    """Prunes units at thresholds of growing aggression while the accuracy holds.

    Algorithm 1 of Gandhi & Bandaru, *Dynamically Adding and Removing
    Neurons from Neural Networks* ("Dynamic Neuron Removal"): starting from
    a trained model, at every threshold of the schedule the units whose
    score (relative to the largest of their layer) is below it are removed
    (with `criterion="correlation"`: one unit of every pair whose
    activations correlate at least that much), and the smaller model is
    retrained on `(x, y)` for `epochs` epochs, up to `max_retrains` times,
    until its accuracy on `validation_data` is within
    `Target.max_accuracy_drop` of the starting accuracy. The run stops at
    the first threshold that cannot be accepted and returns the last
    accepted model (see `dynamic_neuron_removal`).

    The schedule gives the thresholds, step `i` the i-th: by default
    `darn.schedules.LogSpaced(0.05, 0.6, 6)`, or for correlation
    `LogSpaced(0.98, 0.5, 6, distance_to_one=True)`.

    Target amounts (between fits only): `max_accuracy_drop` (defaults to
    0.015, the paper's 1.5 points when absent). `min_units` (one number)
    and `exclude` apply. The model must be compiled (it is retrained with
    its own compile settings); it is not modified.

    Args:
        criterion: the score: `"l1"` (mean absolute activation, the
            paper's), `"variance"`, `"correlation"` (the paper's other),
            `"weight_l1"`, ... or a `keras_darn.criteria.Criterion`.
            Defaults to `"l1"`.
        max_retrains: retraining rounds per threshold, `n_rt_max`.
            Defaults to `3`.
        batch_size: batch size of retraining. Defaults to `64`.
        fold: fold each removed correlated unit's outgoing weights into its
            partner (correlation only). Defaults to `False`.
        layers: names of the layers whose units may go (the paper prunes
            the first three convolutions). Defaults to `None` (every
            resizable group not excluded by the target).
        score_examples: training examples the criterion is computed on.
            Defaults to `2048`.
        latency_batch: validation examples whose inference time is measured
            at every step (in `Result.history`). Defaults to `512`.
        verbose: 1 prints one line per retraining round. Defaults to `0`.

    Example:

    ```python
    result = darn.resize(model, "darn", darn.Target(max_accuracy_drop=0.015),
                         x=x_train, y=y_train, validation_data=(x_val, y_val),
                         epochs=1, criterion="l1", layers=["conv1", "conv2"])
    small = result.model   # result.history["steps"]: every retraining round
    ```
    """

    prepare_amounts = None
    resize_amounts = ("max_accuracy_drop",)
    resize_requires_amount = False

    def __init__(self, criterion="l1", max_retrains=3, batch_size=64, fold=False, layers=None,
                 score_examples=2048, latency_batch=512, verbose=0):
        self.criterion = criteria_base.get(criterion)
        check_positive_int(max_retrains, "max_retrains")
        check_positive_int(batch_size, "batch_size")
        _check_bool(fold, "fold")
        if fold and not isinstance(self.criterion, ActivationCorrelation):
            raise ValueError(
                "Received fold=True with criterion "
                f"'{self.criterion.name}'; folding needs correlated partners "
                "(criterion='correlation')."
            )
        check_layer_names(layers, "layers", allow_none=True)
        check_positive_int(score_examples, "score_examples")
        check_positive_int(latency_batch, "latency_batch")
        self.max_retrains = max_retrains
        self.batch_size = batch_size
        self.fold = fold
        self.layers = None if layers is None else list(layers)
        self.score_examples = score_examples
        self.latency_batch = latency_batch
        self.verbose = verbose

    def _layers(self, model, target):
        if not target.exclude:
            return self.layers
        allowed = [
            name
            for group in unit_groups(model)
            if group.resizable and not set(group.layers) & set(target.exclude)
            for name in group.layers
        ]
        chosen = allowed if self.layers is None else [n for n in self.layers if n in allowed]
        if not chosen:
            raise ValueError(
                "Method 'darn' has no layer left to prune: the target excludes all of "
                f"{self.layers or 'the resizable layers'}. Received: exclude={list(target.exclude)}"
            )
        return chosen

    def resize(self, model, target, x=None, y=None, validation_data=None, epochs=1,
               schedule=None, verbose=0):
        if x is None or y is None:
            raise ValueError(
                "Method 'darn' retrains the pruned model: pass x= and y= (training data). "
                f"Received: x={'None' if x is None else 'given'}, "
                f"y={'None' if y is None else 'given'}"
            )
        if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
            raise ValueError(
                "Method 'darn' accepts a threshold by the accuracy on labelled data: pass "
                f"validation_data=(x_val, y_val). Received: validation_data={validation_data!r}"
            )
        if not model.compiled:
            raise ValueError(
                "Method 'darn' retrains with the model's compile settings: compile the model "
                f"first. Received: model '{model.name}', not compiled"
            )
        if isinstance(target.min_units, dict):
            raise ValueError(
                "Method 'darn' takes one `min_units` for every layer. Received: "
                f"min_units={target.min_units!r}"
            )
        x_val, y_val = validation_data
        sacrifice = target.max_accuracy_drop
        schedule = schedule if schedule is not None else default_thresholds(self.criterion)
        small, history = dynamic_neuron_removal(
            model, self.criterion, schedule, x, y, x_val, y_val,
            sacrifice=DEFAULT_SACRIFICE if sacrifice is None else sacrifice,
            max_retrains=self.max_retrains, retrain_epochs=epochs, batch_size=self.batch_size,
            layers=self._layers(model, target), fold=self.fold,
            min_units=int(target.min_units),
            score_data=(x[: self.score_examples], y[: self.score_examples]),
            latency_data=x_val[: self.latency_batch], verbose=verbose or self.verbose,
        )
        if small is model:  # nothing accepted: hand back a copy, never the model given
            small = keras.models.clone_model(model)
            small.set_weights(model.get_weights())
        events = [
            {"step": s["step"], "action": "remove", "layer": layer, "units": count,
             "threshold": s["threshold"], "accuracy": s["accuracy"]}
            for s in history["steps"][1:] if s["accepted"] and s["retrain"]
            for layer, count in _removed(s).items()
        ]
        return Result(small, events, figures(model), method=self.name, history=history)

    def get_config(self):
        return {
            "criterion": criteria_base.serialize(self.criterion),
            "max_retrains": self.max_retrains,
            "batch_size": self.batch_size,
            "fold": self.fold,
            "layers": self.layers,
            "score_examples": self.score_examples,
            "latency_batch": self.latency_batch,
            "verbose": self.verbose,
        }


def _removed(step):
    """`{layer: count}` of an accepted step (`units_pruned` holds counts)."""
    return {layer: count for layer, count in step["units_pruned"].items() if count}

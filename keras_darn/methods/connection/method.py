"""Connection pruning at the front door: a static rate and the adaptive rate."""

import keras

from keras_darn.graph.nodes import leaf_layers
from keras_darn.layers import to_prunable
from keras_darn.methods.connection import adaptive_rate
from keras_darn.methods.connection import pruning as connection_pruning
from keras_darn.methods.connection.evaluation import accuracy_evaluator
from keras_darn.methods.connection.evaluation import fit_retrainer
from keras_darn.methods.connection.structure import mask_disconnected_units
from keras_darn.rebuild import compile_like
from keras_darn.rebuild import shrink
from keras_darn.resizing.entry import register_method
from keras_darn.resizing.method import Method
from keras_darn.resizing.results import figures
from keras_darn.validation import check_positive_int

_CONVERTIBLE = (keras.layers.Dense, keras.layers.Conv2D)


def _check_common(max_steps, batch_size, base_accuracy, evaluate, shrink_model):
    check_positive_int(max_steps, "max_steps")
    check_positive_int(batch_size, "batch_size")
    if base_accuracy is not None and (
        isinstance(base_accuracy, bool)
        or not isinstance(base_accuracy, (int, float))
        or not 0 <= base_accuracy <= 1
    ):
        raise ValueError(
            "Received an invalid value for `base_accuracy`, expected a number in [0, 1] or "
            f"None. Received: base_accuracy={base_accuracy!r}"
        )
    if evaluate is not None and not callable(evaluate):
        raise ValueError(
            "Received an invalid value for `evaluate`, expected a callable "
            f"`evaluate(model) -> accuracy` or None. Received: evaluate={evaluate!r}"
        )
    if not isinstance(shrink_model, bool):
        raise ValueError(
            f"Received an invalid value for `shrink`, expected a bool. Received: shrink={shrink_model!r}"
        )


def masked_copy(model, exclude=()):
    """A compiled copy of `model` whose Dense/Conv2D layers have connection masks.

    Layers named in `exclude` keep no mask (they are not pruned). The
    copy is compiled like `model` (`compile_like`); `model` is not changed.

    Raises:
        ValueError: if `model` is not compiled, or an excluded layer already
            has a connection mask.
    """
    if not model.compiled:
        raise ValueError(
            "Connection pruning retrains with the model's compile settings: compile the "
            f"model first. Received: model '{model.name}', not compiled"
        )
    masked = [layer.name for layer in leaf_layers(model)
              if layer.name in exclude and getattr(layer, "kernel_mask", None) is not None]
    if masked:
        raise ValueError(
            f"Layers {masked} are excluded but already have a connection mask; create them "
            f"without one to leave them alone. Received: exclude={list(exclude)}"
        )
    names = [layer.name for layer in leaf_layers(model)
             if type(layer) in _CONVERTIBLE and layer.name not in exclude]
    copy = to_prunable(model, layer_names=names, connection_mask=True)
    return compile_like(copy, model)


class _ConnectionMethod(Method):
    """What the static and the adaptive rate share: data, copy, result."""

    prepare_amounts = None
    resize_amounts = ("max_accuracy_drop",)
    resize_requires_amount = True

    def _common(self, mode, max_steps, batch_size, base_accuracy, evaluate, shrink_model, verbose):
        connection_pruning.check_mode(mode)
        _check_common(max_steps, batch_size, base_accuracy, evaluate, shrink_model)
        self.mode = mode
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.base_accuracy = base_accuracy
        self.evaluate = evaluate
        self.shrink = shrink_model
        self.verbose = verbose

    def _drive(self, model, evaluate, retrain, max_accuracy_drop):
        raise NotImplementedError

    def resize(self, model, target, x=None, y=None, validation_data=None, epochs=1,
               schedule=None, verbose=0):
        if schedule is not None:
            raise ValueError(
                f"Method '{self.name}' sets its rate itself and takes no schedule. "
                f"Received: schedule={schedule!r}"
            )
        evaluate = self.evaluate
        if evaluate is None:
            if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                raise ValueError(
                    f"Method '{self.name}' measures the accuracy on labelled data: pass "
                    "validation_data=(x_val, y_val) (or the option `evaluate`). Received: "
                    f"validation_data={validation_data!r}"
                )
            evaluate = accuracy_evaluator(*validation_data)
        if epochs and (x is None or y is None):
            raise ValueError(
                f"Method '{self.name}' retrains after every pruning step: pass x= and y= "
                "(training data), or epochs=0 to prune without retraining."
            )
        retrain = (fit_retrainer(x, y, epochs=epochs, batch_size=self.batch_size)
                   if epochs else (lambda m: None))
        work = masked_copy(model, target.exclude)
        result = self._drive(work, evaluate, retrain, target.max_accuracy_drop)
        if verbose or self.verbose:
            for step in result.history["steps"]:
                print(f"[{self.name}] step {step['step']}: rate {step['rate']:.4g}, "
                      f"{step['remaining_weights']} weights, accuracy {step['accuracy']:.4f}"
                      f"{'' if step['accepted'] else ' (below the floor, undone)'}")
        if self.shrink:
            # The driver's figures are the masked copy's (before: the model
            # given's); the shrunk model has its own.
            mask_disconnected_units(work)
            result.model = shrink(work)
            result.after = figures(result.model)
        result.method = self.name
        return result

    def _common_config(self):
        return {
            "mode": self.mode,
            "max_steps": self.max_steps,
            "batch_size": self.batch_size,
            "base_accuracy": self.base_accuracy,
            "evaluate": self.evaluate,
            "shrink": self.shrink,
            "verbose": self.verbose,
        }


@register_method("weight_magnitude")
class WeightMagnitude(_ConnectionMethod):
    """Prunes the smallest connections at a static rate, retraining after each step.

    Han et al., *Learning both weights and connections for efficient neural
    networks*, as the static baseline of Esfandiarpoor et al., *Simplified
    neural network based on auxiliary layer and adaptive pruning rate*:
    every step switches off the connections of smallest |w| (the fraction
    `rate` of each layer's live ones with `mode="fraction"`), retrains on
    `(x, y)` for `epochs` epochs, and is kept while the accuracy on
    `validation_data` stays within `Target.max_accuracy_drop` of the
    starting accuracy; the first step below it is undone and ends the run
    (`static_pruning`). The model given is not modified: a copy with
    connection masks (compiled like it) is pruned.

    Target amounts (between fits only, required): `max_accuracy_drop`.
    `exclude` leaves layers unpruned.

    Args:
        rate: the pruning rate of every step: a fraction in (0, 1], or a
            magnitude (> 0) with `mode="threshold"`, or a multiple (> 0) of
            each layer's weight std with `mode="std"`. Defaults to `0.2`.
        mode: what a rate means: `"fraction"` of each layer's live
            connections with the smallest |w|, `"threshold"` (|w| below the
            rate) or `"std"` (|w| below the rate times the layer's weight
            std, Han et al.'s rule). Defaults to `"fraction"`.
        max_steps: most prune-retrain steps. Defaults to `100`.
        batch_size: batch size of retraining. Defaults to `32`.
        base_accuracy: the accuracy drops are measured from. Defaults to
            `None` (the model's accuracy before pruning).
        evaluate: `evaluate(model) -> accuracy` replacing the accuracy on
            `validation_data` (e.g. for a model with several inputs).
            Defaults to `None`.
        shrink: hand back the plain smaller model (units cut off switched
            off with `mask_disconnected_units`, then `keras_darn.shrink`);
            `False` hands back the masked model (prunable layers with
            connection masks, compiled), e.g. to prune it further. Defaults
            to `True`.
        verbose: 1 prints every step. Defaults to `0`.

    Example:

    ```python
    result = darn.resize(model, "weight_magnitude", darn.Target(max_accuracy_drop=0.01),
                         x=x_train, y=y_train, validation_data=(x_val, y_val),
                         epochs=2, rate=0.2)
    [(e["rate"], e["remaining_weights"]) for e in result.events]
    ```
    """

    def __init__(self, rate=0.2, mode="fraction", max_steps=100, batch_size=32,
                 base_accuracy=None, evaluate=None, shrink=True, verbose=0):
        self._common(mode, max_steps, batch_size, base_accuracy, evaluate, shrink, verbose)
        adaptive_rate.check_rate(rate, mode)
        self.rate = rate

    def _drive(self, model, evaluate, retrain, max_accuracy_drop):
        return adaptive_rate.static_pruning(
            model, self.rate, evaluate, retrain, max_accuracy_drop, mode=self.mode,
            base_accuracy=self.base_accuracy, max_steps=self.max_steps,
        )

    def get_config(self):
        return {"rate": self.rate, **self._common_config()}


@register_method("adaptive_rate")
class AdaptiveRate(_ConnectionMethod):
    """Prunes connections with the adaptive pruning rate (Algorithm 1).

    Esfandiarpoor et al., *Simplified neural network based on auxiliary
    layer and adaptive pruning rate*: at every step the rate PR is raised
    by `rate_step` while a trial prune at the raised rate (undone, not
    retrained) loses at most `trial_drop` accuracy; the last good rate
    prunes, the network is retrained on `(x, y)` for `epochs` epochs, and
    steps repeat while the accuracy on `validation_data` stays within
    `Target.max_accuracy_drop` of the starting accuracy
    (`adaptive_pruning`; its module docstring says how the paper is read).
    The model given is not modified: a copy with connection masks (compiled
    like it) is pruned.

    Target amounts (between fits only, required): `max_accuracy_drop`.
    `exclude` leaves layers unpruned.

    Args:
        initial_rate: PR at the start. Defaults to `0.1`.
        rate_step: the increment of PR. Defaults to `0.05`.
        max_rate: the largest PR tried. Defaults to `None` (0.95 with
            `mode="fraction"`, no limit otherwise).
        trial_drop: the accuracy a trial may lose. Defaults to `None` (the
            target's `max_accuracy_drop`).
        restart_rate: PR back to `initial_rate` at every step. Defaults to
            `False`.
        trial_reference: a trial's drop is measured from the accuracy
            before the step (`"step"`) or from the base accuracy
            (`"base"`). Defaults to `"step"`.
        on_failure: after a step below the floor, `"stop"` (the paper) or
            `"lower_rate"` (retry at a lower PR). Defaults to `"stop"`.
        mode: what a rate means: `"fraction"` of each layer's live
            connections with the smallest |w|, `"threshold"` (|w| below the
            rate) or `"std"` (|w| below the rate times the layer's weight
            std, Han et al.'s rule). Defaults to `"fraction"`.
        max_steps: most prune-retrain steps. Defaults to `100`.
        batch_size: batch size of retraining. Defaults to `32`.
        base_accuracy: the accuracy drops are measured from. Defaults to
            `None` (the model's accuracy before pruning).
        evaluate: `evaluate(model) -> accuracy` replacing the accuracy on
            `validation_data` (e.g. for a model with several inputs).
            Defaults to `None`.
        shrink: hand back the plain smaller model (units cut off switched
            off with `mask_disconnected_units`, then `keras_darn.shrink`);
            `False` hands back the masked model (prunable layers with
            connection masks, compiled), e.g. to prune it further. Defaults
            to `True`.
        verbose: 1 prints every step. Defaults to `0`.

    Example:

    ```python
    result = darn.resize(model, "adaptive_rate", darn.Target(max_accuracy_drop=0.0046),
                         x=x_train, y=y_train, validation_data=(x_val, y_val), epochs=2)
    [(e["rate"], e["remaining_weights"], e["accuracy"]) for e in result.events]
    ```
    """

    def __init__(self, initial_rate=0.1, rate_step=0.05, max_rate=None, trial_drop=None,
                 restart_rate=False, trial_reference="step", on_failure="stop",
                 mode="fraction", max_steps=100, batch_size=32, base_accuracy=None,
                 evaluate=None, shrink=True, verbose=0):
        self._common(mode, max_steps, batch_size, base_accuracy, evaluate, shrink, verbose)
        adaptive_rate.check_adaptive_options(
            initial_rate, rate_step, max_rate, trial_drop, mode, trial_reference, on_failure
        )
        if not isinstance(restart_rate, bool):
            raise ValueError(
                "Received an invalid value for `restart_rate`, expected a bool. Received: "
                f"restart_rate={restart_rate!r}"
            )
        self.initial_rate = initial_rate
        self.rate_step = rate_step
        self.max_rate = max_rate
        self.trial_drop = trial_drop
        self.restart_rate = restart_rate
        self.trial_reference = trial_reference
        self.on_failure = on_failure

    def _drive(self, model, evaluate, retrain, max_accuracy_drop):
        return adaptive_rate.adaptive_pruning(
            model, evaluate, retrain, max_accuracy_drop, initial_rate=self.initial_rate,
            rate_step=self.rate_step, max_rate=self.max_rate, trial_drop=self.trial_drop,
            restart_rate=self.restart_rate, mode=self.mode, base_accuracy=self.base_accuracy,
            max_steps=self.max_steps, trial_reference=self.trial_reference,
            on_failure=self.on_failure,
        )

    def get_config(self):
        return {
            "initial_rate": self.initial_rate,
            "rate_step": self.rate_step,
            "max_rate": self.max_rate,
            "trial_drop": self.trial_drop,
            "restart_rate": self.restart_rate,
            "trial_reference": self.trial_reference,
            "on_failure": self.on_failure,
            **self._common_config(),
        }

"""Prune-retrain drivers: a static pruning rate and the adaptive rate.

Esfandiarpoor et al., *Simplified neural network based on auxiliary layer and
adaptive pruning rate*. Connection pruning (Han et al.) repeats "prune a
fraction PR of the weights, retrain" while the accuracy stays acceptable. A
static PR either needs many steps (small PR, Table I) or fails (large PR).
Algorithm 1 adapts PR at every step:

```
basic training of the network
PR = 0.1, step = 0.05
while accuracy > base accuracy:
    while True:
        PR += step
        prune with PR                    # a trial, undone afterwards
        if test accuracy drop > threshold: break
    PR -= step                           # the last good PR
    prune with PR
    retrain
```

What we do where the paper is not explicit:

- "base accuracy" is the accuracy floor `base_accuracy - max_accuracy_drop`
  (`base_accuracy`: the trained network's accuracy, measured when not
  given). A step whose accuracy after retraining falls below the floor is
  undone and ends the run; the model holds the last accepted step.
- A trial's "accuracy drop" is measured against the accuracy of the model
  before this step's pruning, with threshold `trial_drop` (defaults to
  `max_accuracy_drop`, the paper's single threshold). Trials do not retrain.
  `trial_reference="base"` measures it from the base accuracy instead (the
  paper calls the threshold "the allowed decrease of accuracy from the base
  accuracy"): a trial is then good while the pruned, not yet retrained
  network stays above the floor, which makes later steps smaller as the
  accuracy approaches the floor.
- Algorithm 1 ends at the first step below the floor. `on_failure="lower_rate"`
  (beyond the paper) instead undoes it and retries with a lower PR, so a rate
  that has grown too large for the pruned network does not end the run.
- PR carries over from step to step: the paper's flattened pseudocode sets
  "PR=0.1, step = 0.05" once, its text says the rate "begins with 0.1 in
  early steps" and "is gradually increased", and its Table II rates rise
  (0.19, 0.24, 0.29, ...). `restart_rate=True` is the other reading, PR
  back to `initial_rate` at every step (more, smaller steps). The search
  stops at `max_rate`.
- "Prune with PR": the paper says connections "lower than a threshold are
  removed" and calls PR a rate. Its tables fit an absolute magnitude
  threshold better (a static PR removes fewer weights at every step, and PR
  grows with the mean |w|), so the readings are all available:
  `mode="fraction"` removes the fraction PR of each layer's live
  connections with the smallest |w|; `mode="threshold"` removes the live
  connections with |w| < PR; `mode="std"` removes those with
  |w| < PR x the layer's weight std, the rule of the pruning method the paper
  builds on (Han et al.), which keeps PR free of the weights' scale
  (`prune_connections`).
- Which reading matters for what the adaptive rate can gain. With
  `mode="fraction"` pruning the same fraction costs more accuracy at every
  step, as the network gets sparser, so once the first step has set PR the
  later trials at PR + step fail and the carried PR stays where it is: the
  adaptive run is the static run at that rate, step for step (39 of 40
  runs in `benchmarks/adaptive_rate_seeds.py` kept their first rate). The
  rising rates of the paper's Table II need a rule under which a fixed PR
  removes fewer weights at every step (`"threshold"`, `"std"`).

Both drivers change the model in place, take the accuracy evaluation and the
retraining as callables (so a test can script them; `evaluation` has the
usual ones), and record every step (`steps`). The front door
(`darn.resize(model, "weight_magnitude" | "adaptive_rate", ...)`, see
`method`) runs them on a copy of the model.
"""

import numpy as np

from keras_darn.methods.connection import pruning as connection_pruning
from keras_darn.methods.connection.steps import PruningStep
from keras_darn.methods.connection.steps import pruning_result
from keras_darn.resizing.results import figures
from keras_darn.validation import check_one_of
from keras_darn.validation import check_positive_int


def _check_callable(name, value):
    if not callable(value):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a callable taking "
            f"the model. Received: {name}={value!r}"
        )


def _check_fraction(name, value, low=0.0, high=1.0, closed_low=True):
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
    ok = ok and (low <= value if closed_low else low < value) and value <= high
    if not ok:
        interval = ("[" if closed_low else "(") + f"{low}, {high}]"
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a number in "
            f"{interval}. Received: {name}={value!r}"
        )


def check_rate(rate, mode):
    """Raises `ValueError` unless `rate` is a static rate for `mode` (> 0)."""
    connection_pruning.check_mode(mode)
    _check_fraction("rate", rate, high=1.0 if mode == "fraction" else np.inf, closed_low=False)


def check_adaptive_options(initial_rate, rate_step, max_rate, trial_drop, mode, trial_reference,
                           on_failure):
    """Validates `adaptive_pruning`'s options; returns `max_rate` (its default filled in).

    Raises:
        ValueError: naming the first option out of range.
    """
    connection_pruning.check_mode(mode)
    high = 1.0 if mode == "fraction" else np.inf
    if max_rate is None:
        max_rate = 0.95 if mode == "fraction" else np.inf
    _check_fraction("initial_rate", initial_rate, high=high)
    _check_fraction("rate_step", rate_step, high=high, closed_low=False)
    _check_fraction("max_rate", max_rate, high=high, closed_low=False)
    if max_rate < initial_rate:
        raise ValueError(
            "Expected `max_rate` >= `initial_rate`. Received: "
            f"initial_rate={initial_rate}, max_rate={max_rate}"
        )
    if trial_drop is not None:
        _check_fraction("trial_drop", trial_drop)
    check_one_of(trial_reference, "trial_reference", ("step", "base"))
    check_one_of(on_failure, "on_failure", ("stop", "lower_rate"))
    return max_rate


def _start(model, evaluate, retrain, max_accuracy_drop, base_accuracy, max_steps):
    _check_callable("evaluate", evaluate)
    _check_callable("retrain", retrain)
    _check_fraction("max_accuracy_drop", max_accuracy_drop)
    check_positive_int(max_steps, "max_steps")
    connection_pruning.connection_layers(model)  # Raises without masks.
    current = float(evaluate(model))
    base = current if base_accuracy is None else float(base_accuracy)
    return base, base - max_accuracy_drop, current, figures(model)


def _prune_retrain(model, rate, mode, evaluate, retrain, floor, step_number, trials):
    """Prunes at `rate`, retrains, and undoes the step if below `floor`."""
    snapshot = model.get_weights()
    before = connection_pruning.remaining_weights(model)
    connection_pruning.prune_connections(model, rate, mode=mode)
    after_pruning = float(evaluate(model))
    retrain(model)
    connection_pruning.zero_masked_weights(model)
    accuracy = float(evaluate(model))
    step = PruningStep(
        step=step_number,
        rate=float(rate),
        remaining_weights=connection_pruning.remaining_weights(model),
        accuracy=accuracy,
        accuracy_after_pruning=after_pruning,
        mean_abs_weight=connection_pruning.mean_abs_weight(model),
        accepted=accuracy >= floor - 1e-9,
        trials=trials,
    )
    if not step.accepted:
        model.set_weights(snapshot)
    return step, step.remaining_weights < before


def static_pruning(
    model,
    rate,
    evaluate,
    retrain,
    max_accuracy_drop,
    mode="fraction",
    base_accuracy=None,
    max_steps=100,
):
    """Prune-retrain with a static pruning rate until the accuracy drops.

    Every step prunes the fraction `rate` of each layer's remaining
    connections, retrains, and is accepted while the accuracy stays at or
    above `base_accuracy - max_accuracy_drop`. The first rejected step is
    undone and ends the run (also `max_steps`, or a step that prunes
    nothing). The model is changed in place.

    Args:
        model: a compiled model with connection masks
            (`to_prunable(model, connection_mask=True)`), already trained.
        rate: the static pruning rate: a fraction in (0, 1], or a magnitude
            threshold > 0 with `mode="threshold"`, or a multiple > 0 of each
            layer's weight std with `mode="std"`.
        evaluate: `evaluate(model) -> accuracy` in [0, 1], e.g.
            `accuracy_evaluator(x_test, y_test)`.
        retrain: `retrain(model)`, e.g. `fit_retrainer(x, y, epochs=2)`.
        max_accuracy_drop: allowed accuracy drop, a fraction (0.0046 is the
            paper's 0.46 points).
        mode: `"fraction"`, `"threshold"` or `"std"`, see `prune_connections`.
            Defaults to `"fraction"`.
        base_accuracy: accuracy to measure drops from. Defaults to `None`
            (`evaluate(model)` before pruning).
        max_steps: most prune-retrain steps. Defaults to `100`.

    Returns:
        A `darn.Result` (see `steps.pruning_result`).

    Raises:
        ValueError: for arguments out of range, non-callable `evaluate` or
            `retrain`, or a model without connection masks.

    Example:

    ```python
    result = static_pruning(model, 0.2, accuracy_evaluator(x_val, y_val),
                            fit_retrainer(x_train, y_train, epochs=2), 0.0046)
    result.history["remaining_weights"], result.history["accepted_steps"]
    ```
    """
    check_rate(rate, mode)
    base, floor, current, before = _start(model, evaluate, retrain, max_accuracy_drop, base_accuracy, max_steps)
    initial = connection_pruning.remaining_weights(model)
    history = []
    for number in range(1, max_steps + 1):
        step, pruned = _prune_retrain(model, rate, mode, evaluate, retrain, floor, number, [])
        history.append(step)
        if not step.accepted or not pruned:
            break
    return pruning_result(model, history, before, base, floor, initial, current)


def adaptive_pruning(
    model,
    evaluate,
    retrain,
    max_accuracy_drop,
    initial_rate=0.1,
    rate_step=0.05,
    max_rate=None,
    trial_drop=None,
    restart_rate=False,
    mode="fraction",
    base_accuracy=None,
    max_steps=100,
    trial_reference="step",
    on_failure="stop",
):
    """Prune-retrain with the adaptive pruning rate (paper's Algorithm 1).

    At every step the rate is raised from the previous step's rate
    (`initial_rate` at the first step) by `rate_step` while a trial prune at
    the raised rate (undone afterwards, no retraining) lowers the accuracy
    by at most `trial_drop` from the accuracy before the step; the last good
    rate (the starting one when the first raise already fails) is then used
    to prune, and the model is
    retrained. Steps repeat while the accuracy after retraining stays at or
    above `base_accuracy - max_accuracy_drop`; the first step below it is
    undone and ends the run (also `max_steps`, or a step that prunes
    nothing). See the module docstring for the choices made where the paper
    is not explicit. The model is changed in place.

    Args:
        model: a compiled, trained model with connection masks.
        evaluate: `evaluate(model) -> accuracy` in [0, 1].
        retrain: `retrain(model)`.
        max_accuracy_drop: allowed accuracy drop after retraining, a fraction
            (0.0046 is the paper's 0.46 points).
        initial_rate: PR at the start of every search. Defaults to `0.1`.
        rate_step: increment of PR. Defaults to `0.05`.
        max_rate: largest PR tried. Defaults to `None` (0.95 with
            `mode="fraction"`, no limit with `"threshold"` and `"std"`: the search
            then stops at the first trial that loses too much accuracy).
        trial_drop: allowed accuracy drop of a trial prune, from the accuracy
            before the step. Defaults to `None` (`max_accuracy_drop`).
        restart_rate: reset PR to `initial_rate` at every step instead of
            continuing from the last step's PR. Defaults to `False`.
        mode: `"fraction"`, `"threshold"` or `"std"`, see `prune_connections`.
            Defaults to `"fraction"`.
        base_accuracy: accuracy to measure drops from. Defaults to `None`
            (`evaluate(model)` before pruning).
        max_steps: most prune-retrain steps. Defaults to `100`.
        trial_reference: what a trial's drop is measured from: `"step"`, the
            accuracy before the step, or `"base"`, the base accuracy.
            Defaults to `"step"`.
        on_failure: what a step that ends below the floor does after it is
            undone: `"stop"` ends the run (the paper's Algorithm 1);
            `"lower_rate"` (not in the paper) retries the step with PR
            lowered by `rate_step`, without trials, and ends the run only
            when a step fails at `initial_rate`. Every retry counts as a
            prune-retrain step. Defaults to `"stop"`.

    Returns:
        A `darn.Result` (see `steps.pruning_result`); each step's
        `trials` lists the rates tried.

    Raises:
        ValueError: for arguments out of range, non-callable `evaluate` or
            `retrain`, or a model without connection masks.

    Example:

    ```python
    model = keras_darn.layers.to_prunable(trained, connection_mask=True)
    model.compile("adam", "sparse_categorical_crossentropy")
    result = adaptive_pruning(model, accuracy_evaluator(x_val, y_val),
                              fit_retrainer(x_train, y_train, epochs=2),
                              max_accuracy_drop=0.0046)
    [(s["rate"], s["remaining_weights"], s["accuracy"]) for s in result.history["steps"]]
    ```
    """
    max_rate = check_adaptive_options(
        initial_rate, rate_step, max_rate, trial_drop, mode, trial_reference, on_failure
    )
    _check_fraction("max_accuracy_drop", max_accuracy_drop)
    trial_drop = max_accuracy_drop if trial_drop is None else trial_drop
    base, floor, current, before = _start(
        model, evaluate, retrain, max_accuracy_drop, base_accuracy, max_steps
    )
    initial = connection_pruning.remaining_weights(model)
    history = []
    rate = float(initial_rate)
    retrying = False
    for number in range(1, max_steps + 1):
        if restart_rate and not retrying:
            rate = float(initial_rate)
        snapshot = model.get_weights()
        trials = []
        while not retrying:
            candidate = round(rate + rate_step, 10)
            if candidate > max_rate + 1e-12:
                break
            connection_pruning.prune_connections(model, candidate, mode=mode)
            everything = connection_pruning.remaining_weights(model) == 0
            accuracy = float(evaluate(model))
            model.set_weights(snapshot)
            trials.append((candidate, accuracy))
            reference = current if trial_reference == "step" else base
            if reference - accuracy > trial_drop + 1e-12 or everything:
                break
            rate = candidate
        step, pruned = _prune_retrain(model, rate, mode, evaluate, retrain, floor, number, trials)
        history.append(step)
        if step.accepted:
            if not pruned:
                break
            current = step.accuracy
            retrying = False
            continue
        lower = round(rate - rate_step, 10)
        if on_failure == "stop" or lower < initial_rate - 1e-12 or lower <= 0:
            break
        rate, retrying = lower, True
    return pruning_result(model, history, before, base, floor, initial, current)

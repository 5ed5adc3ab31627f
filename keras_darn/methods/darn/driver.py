"""DARN Algorithm 1, "Dynamic Neuron Removal" (Gandhi & Bandaru).

    Input: model M (pretrained), sacrifice s; A_i = accuracy(M)
    for each threshold t_i, in order of increasing aggression:
        M' = Prune(M, t_i)
        retrain M' up to n_rt_max times; after each retraining
            if accuracy(M') >= A_i - s: accept M = M', go to the next threshold
        if never accepted: return M (the last accepted model)
    return M

The paper's pseudocode loops forever on acceptance and increments its
counter after `return`; we read it as: at most `max_retrains` retraining
rounds per threshold, accept as soon as the accuracy is within the
sacrifice, stop at the first threshold that cannot be accepted.

`Prune(M, t)`: with an activation-statistics criterion (variance, L1) or a
weight norm, the units whose score, divided by the largest score of their
layer, is below `t`; with the correlation criterion, one unit of every pair
whose activations correlate at least `t` (`correlated_pairs`), optionally
folding its outgoing weights into the partner. Thresholds come from a
`keras_darn.resizing.Schedule`, step `i` giving the i-th threshold; they
follow a logarithmic scale (`darn.schedules.LogSpaced(first, last, num)`,
and for correlation `LogSpaced(0.98, last, num, distance_to_one=True)`),
since the network is more sensitive the more it is pruned.
"""

import time

import keras
import numpy as np

from keras_darn.criteria import base as criteria_base
from keras_darn.criteria.activation_statistics import activation_statistics
from keras_darn.criteria.correlation import ActivationCorrelation
from keras_darn.criteria.correlation import correlated_pairs
from keras_darn.criteria.per_example import per_example_correct
from keras_darn.criteria.probes import ProbedModel
from keras_darn.methods.darn.folding import check_foldable
from keras_darn.methods.darn.folding import fold_into_partners
from keras_darn.metrics import count_flops
from keras_darn.metrics import count_params
from keras_darn.metrics import measure_latency
from keras_darn.resizing.schedules import Schedule
from keras_darn.validation import check_positive_int

# A schedule without an end is read up to this step.
MAX_THRESHOLDS = 1000


def select_by_threshold(criterion, probed, scores, threshold, min_units=1):
    """The units `Prune(M, t)` removes, per group.

    Args:
        criterion: the criterion that produced `scores` (for correlation,
            its `last_correlation` and `last_mean_abs` are used).
        probed: the `ProbedModel` scored.
        scores: `{key: scores}` from `criterion(probed, ...)`.
        threshold: `t`.
        min_units: units every group keeps. Defaults to `1`.

    Returns:
        `{key: [(unit, partner, value), ...]}` in group order: `partner` is
        the correlated unit that stays (`None` for score criteria) and
        `value` the correlation or the relative score.
    """
    selection = {}
    for group in probed.groups:
        key = group.key
        live = probed.live[key]
        room = max(int(live.sum()) - min_units, 0)
        if isinstance(criterion, ActivationCorrelation):
            chosen = correlated_pairs(
                criterion.last_correlation[key],
                threshold,
                live=live,
                keep_scores=criterion.last_mean_abs[key],
                max_remove=room,
            )
        else:
            values = np.asarray(scores[key], dtype=np.float64)
            top = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0.0
            relative = values / top if top > 0 else np.zeros_like(values)
            candidates = np.flatnonzero(live & (relative < threshold))
            candidates = candidates[np.argsort(relative[candidates], kind="stable")][:room]
            chosen = [(int(u), None, float(relative[u])) for u in candidates]
        if chosen:
            selection[key] = chosen
    return selection


def prune_by_threshold(
    model, criterion, threshold, x, y=None, layers=None, fold=False, min_units=1
):
    """One DARN pruning step: `Prune(M, t)`, returning the rebuilt model.

    Args:
        model: a functional or Sequential `keras.Model`.
        criterion: a criterion or its name (`"l1"`, `"variance"`,
            `"correlation"`, `"weight_l1"`...).
        threshold: relative score threshold, or correlation threshold.
        x: data the statistics are computed on.
        y: targets, for criteria that need them. Defaults to `None`.
        layers: names of the layers whose units may go. Defaults to `None`.
        fold: fold each removed unit's outgoing weights into its correlated
            partner (correlation criterion only). Defaults to `False`.
        min_units: units every layer keeps. Defaults to `1`.

    Returns:
        `(new_model, removed)`: the model rebuilt without the selected
        units (compiled like `model`; `model` itself when nothing is
        selected) and `{layer: [(unit index of the layer, partner, value)]}`.

    Raises:
        ValueError: for `fold=True` without the correlation criterion or
            with a reader that cannot take a fold.
    """
    criterion = criteria_base.get(criterion)
    if fold and not isinstance(criterion, ActivationCorrelation):
        raise ValueError(
            "Received fold=True with criterion "
            f"'{criterion.name}'; folding needs correlated partners "
            "(criterion='correlation')."
        )
    probed = ProbedModel(model, layers=layers)
    if fold:
        check_foldable(probed)
    scores = criterion(probed, x, y)
    selection = select_by_threshold(criterion, probed, scores, threshold, min_units)
    removed = {}
    for key, chosen in selection.items():
        group = probed.group(key)
        probed.remove(key, [u for u, _, _ in chosen])
        partners = [None if p is None else int(group.layer_indices([p])[0]) for _, p, _ in chosen]
        units = group.layer_indices([u for u, _, _ in chosen]).tolist()
        removed[key] = [(u, p, v) for u, p, (_, _, v) in zip(units, partners, chosen)]
    if not selection:
        return model, removed
    new_model = probed.pruned_model()
    if fold:
        statistics = criterion.last_statistics
        if criterion.conv_mode != "positions":
            statistics = activation_statistics(
                probed, x, "positions", True, criterion.batch_size
            )
        fold_into_partners(probed, new_model, selection, statistics)
    return new_model, removed


def accuracy(model, x, y, batch_size=256):
    """Classification accuracy of `model` on `(x, y)` (see `per_example_correct`)."""
    y_pred = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(keras.ops.convert_to_numpy(per_example_correct(y, y_pred))))


def _measure(model, latency_data):
    seconds = None
    if latency_data is not None:
        seconds = measure_latency(model, latency_data, repeats=10, warmup=2)["median"]
    return {
        "params": int(count_params(model)),
        "flops": int(count_flops(model)),
        "inference_seconds": seconds,
    }


def _widths(model, keys):
    widths = {}
    for key in keys:
        layer = model.get_layer(key)
        widths[key] = int(getattr(layer, "units", None) or getattr(layer, "filters"))
    return widths


def _check_aggression(values, correlation):
    """Thresholds must prune more and more: score thresholds rise, correlation ones fall."""
    pairs = list(zip(values, values[1:]))
    wrong = [(a, b) for a, b in pairs if (b > a if correlation else b < a)]
    if wrong:
        order = "non-increasing (a lower correlation prunes more)" if correlation else (
            "non-decreasing (a higher relative score prunes more)")
        raise ValueError(
            f"Received thresholds out of order: expected {order}. Received: thresholds={values}"
        )


def dynamic_neuron_removal(
    model,
    criterion,
    thresholds,
    x_train,
    y_train,
    x_val,
    y_val,
    sacrifice=0.015,
    max_retrains=3,
    retrain_epochs=1,
    batch_size=64,
    layers=None,
    fold=False,
    min_units=1,
    score_data=None,
    latency_data=None,
    evaluate_fn=None,
    retrain_fn=None,
    verbose=0,
):
    """DARN Algorithm 1: prune at increasing thresholds while accuracy holds.

    Args:
        model: a pretrained, compiled functional or Sequential `keras.Model`.
        criterion: a criterion or its name (the paper uses `"l1"` and
            `"correlation"`).
        thresholds: a `keras_darn.resizing.Schedule` of the thresholds in
            order of increasing aggression: step `i` (from 0) gives the i-th,
            steps where it gives `None` are skipped (e.g.
            `darn.schedules.LogSpaced(0.05, 0.5, 6)`, or for correlation
            `LogSpaced(0.98, 0.5, 6, distance_to_one=True)`). A schedule
            without an end is read up to step `MAX_THRESHOLDS - 1`.
        x_train: training inputs for retraining.
        y_train: training targets.
        x_val: inputs the accuracy is checked on.
        y_val: targets of `x_val`.
        sacrifice: accuracy the pruned model may lose, `s` (a fraction:
            0.015 is 1.5 points). Defaults to `0.015`.
        max_retrains: retraining rounds per threshold, `n_rt_max` (at least
            1). Defaults to `3`.
        retrain_epochs: epochs per retraining round. Defaults to `1`.
        batch_size: batch size of retraining. Defaults to `64`.
        layers: names of the layers whose units may go (the paper prunes the
            first three convolutions). Defaults to `None` (all resizable).
        fold: fold removed correlated units into their partners. Defaults
            to `False`.
        min_units: units every pruned layer keeps. Defaults to `1`.
        score_data: `x` (or `(x, y)`) the criterion is computed on. Defaults
            to `None`: the first 2048 training examples.
        latency_data: a batch whose inference time is measured at every
            step. Defaults to `None` (`x_val[:512]`).
        evaluate_fn: `fn(model) -> accuracy` replacing the accuracy on
            `(x_val, y_val)`. Defaults to `None`.
        retrain_fn: `fn(model) -> model` replacing `model.fit` on the
            training data. Defaults to `None`.
        verbose: 1 prints one line per retraining round. Defaults to `0`.

    Returns:
        `(model, history)`: the last accepted model and a dict with
        `"initial_accuracy"`, `"sacrifice"`, `"stopped_at"` (the threshold
        that could not be accepted, or `None`) and `"steps"`, one dict per
        state: iteration 0 is the pretrained model; every retraining round
        adds one with `"iteration"`, `"step"` (the schedule step of the
        threshold; `None` for iteration 0), `"threshold"`, `"retrain"`,
        `"units_pruned"`, `"pruned_accuracy"` (right after pruning, before
        retraining), `"accuracy"`, `"accepted"`, `"params"`, `"flops"`,
        `"inference_seconds"`, `"widths"` and `"seconds"` (wall-clock of
        the step). A threshold that selects nothing adds a step with
        `"retrain": 0`, accepted without retraining.

    Raises:
        ValueError: for invalid arguments, or thresholds that do not grow in
            aggression.

    Example:

    ```python
    small, history = dynamic_neuron_removal(
        model, "l1", darn.schedules.LogSpaced(0.05, 0.5, 6),
        x_train, y_train, x_val, y_val, sacrifice=0.015,
        layers=["conv1", "conv2", "conv3"])
    ```

    The same through the front door (see `DARN`):

    ```python
    result = darn.resize(model, "darn", darn.Target(max_accuracy_drop=0.015),
                         x=x_train, y=y_train, validation_data=(x_val, y_val),
                         schedule=darn.schedules.LogSpaced(0.05, 0.5, 6),
                         criterion="l1", layers=["conv1", "conv2", "conv3"])
    ```
    """
    check_positive_int(max_retrains, "max_retrains")
    if sacrifice < 0:
        raise ValueError(
            f"Received an invalid value for `sacrifice`, expected >= 0. Received: {sacrifice!r}"
        )
    if not isinstance(thresholds, Schedule):
        raise ValueError(
            "Received an invalid value for `thresholds`, expected a keras_darn Schedule "
            "(e.g. darn.schedules.LogSpaced(0.05, 0.5, 6)). "
            f"Received: thresholds={thresholds!r}"
        )
    steps_of = thresholds.steps(MAX_THRESHOLDS)
    if not steps_of:
        raise ValueError(
            f"Received a `thresholds` schedule without any threshold. Received: "
            f"thresholds={thresholds!r}"
        )
    criterion = criteria_base.get(criterion)
    values = [float(thresholds(step)) for step in steps_of]
    _check_aggression(values, isinstance(criterion, ActivationCorrelation))
    if score_data is None:
        score_data = (x_train[:2048], y_train[:2048])
    x_score, y_score = score_data if isinstance(score_data, tuple) else (score_data, None)
    if latency_data is None:
        latency_data = x_val[:512]
    evaluate = evaluate_fn or (lambda m: accuracy(m, x_val, y_val))

    def retrain(m):
        if retrain_fn is not None:
            return retrain_fn(m)
        m.fit(x_train, y_train, epochs=retrain_epochs, batch_size=batch_size, verbose=0)
        return m

    keys = ProbedModel(model, layers=layers).keys
    initial = float(evaluate(model))
    steps = [
        {
            "iteration": 0, "step": None, "threshold": 0.0, "retrain": 0, "units_pruned": {},
            "pruned_accuracy": initial, "accuracy": initial, "accepted": True,
            "widths": _widths(model, keys), "seconds": 0.0, **_measure(model, latency_data),
        }
    ]
    accepted = model
    stopped_at = None
    for schedule_step, threshold in zip(steps_of, values):
        began = time.perf_counter()
        candidate, removed = prune_by_threshold(
            accepted, criterion, threshold, x_score, y_score, layers, fold, min_units
        )
        pruned = {k: len(v) for k, v in removed.items()}
        if not removed:
            steps.append(
                {**steps[-1], "iteration": len(steps), "step": schedule_step,
                 "threshold": threshold, "retrain": 0,
                 "units_pruned": {}, "accepted": True, "seconds": time.perf_counter() - began}
            )
            continue
        pruned_accuracy = float(evaluate(candidate))
        accepted_now = False
        for round_number in range(1, max_retrains + 1):
            candidate = retrain(candidate)
            value = float(evaluate(candidate))
            accepted_now = value >= initial - sacrifice - 1e-12
            steps.append(
                {
                    "iteration": len(steps), "step": schedule_step, "threshold": threshold,
                    "retrain": round_number,
                    "units_pruned": pruned, "pruned_accuracy": pruned_accuracy,
                    "accuracy": value, "accepted": accepted_now,
                    "widths": _widths(candidate, keys),
                    "seconds": time.perf_counter() - began, **_measure(candidate, latency_data),
                }
            )
            if verbose:
                print(
                    f"[darn] t={threshold:.4g} retrain {round_number}: accuracy {value:.4f} "
                    f"(pruned {pruned}, bound {initial - sacrifice:.4f})"
                )
            began = time.perf_counter()
            if accepted_now:
                break
        if not accepted_now:
            stopped_at = threshold
            break
        accepted = candidate
    history = {
        "criterion": criteria_base.serialize(criterion),
        "initial_accuracy": initial,
        "sacrifice": float(sacrifice),
        "fold": bool(fold),
        "stopped_at": stopped_at,
        "steps": steps,
    }
    return accepted, history

"""Single Overall Ranking and Iterative Re-ranking (no retraining).

*The Incredible Shrinking Neural Network*, Section 3.5. Both algorithms
remove units one at a time from a trained network, lowest score first, and
never update a weight:

- Algorithm I, Single Overall Ranking: score every unit once, then remove
  them in that order;
- Algorithm II, Iterative Re-ranking: after every removal, score the
  remaining units again and remove the lowest, which accounts for units
  that cancel each other out.

Units of all probed layers compete in one ranking, as in the paper. A unit is
"removed" by zeroing it where the next layer reads it (`ProbedModel`), which
is exactly what the Rebuilder's `remove_units` does, so the returned model
(rebuilt once at the end) computes what the last step measured.

Stopping criteria (the paper's examples): a number of units, a fraction of
the units, or a maximum accuracy drop on the ranking data; without any, the
loop goes on until every probed layer has `min_units` units left.
"""

import time

import numpy as np

from keras_darn.criteria import base as criteria_base
from keras_darn.criteria.probes import ProbedModel
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures
from keras_darn.validation import check_one_of

_ALGORITHMS = ("single", "iterative")


def single_overall_ranking(model, criterion, x, y, **kwargs):
    """Algorithm I: rank every unit once, remove in that order.

    Args:
        model: a trained functional or Sequential `keras.Model`.
        criterion: a `keras_darn.criteria.Criterion` or its name.
        x: inputs the scores and the stopping rule are computed on (the
            paper's validation set).
        y: targets of `x`.
        **kwargs: the keyword arguments of `prune_by_ranking`.

    Returns:
        A `darn.Result`, see `prune_by_ranking`.

    Example:

    ```python
    result = single_overall_ranking(
        model, "brute_force", x_val, y_val, max_accuracy_drop=0.01)
    small, history = result.model, result.history
    ```
    """
    return prune_by_ranking(model, criterion, x, y, algorithm="single", **kwargs)


def iterative_reranking(model, criterion, x, y, **kwargs):
    """Algorithm II: re-rank the remaining units after every removal.

    Args:
        model: a trained functional or Sequential `keras.Model`.
        criterion: a `keras_darn.criteria.Criterion` or its name.
        x: inputs the scores and the stopping rule are computed on.
        y: targets of `x`.
        **kwargs: the keyword arguments of `prune_by_ranking`.

    Returns:
        A `darn.Result`, see `prune_by_ranking`.

    Example:

    ```python
    result = iterative_reranking(
        model, darn.criteria.BruteForce(), x_val, y_val, max_fraction=0.5)
    small, history = result.model, result.history
    ```
    """
    return prune_by_ranking(model, criterion, x, y, algorithm="iterative", **kwargs)


def _check_stop(max_units, max_fraction, max_accuracy_drop, min_units):
    if max_units is not None and (
        isinstance(max_units, bool) or not isinstance(max_units, (int, np.integer))
        or max_units < 0
    ):
        raise ValueError(
            "Received an invalid value for `max_units`, expected a non-negative integer. "
            f"Received: max_units={max_units!r}"
        )
    if max_fraction is not None and not 0.0 <= max_fraction <= 1.0:
        raise ValueError(
            "Received an invalid value for `max_fraction`, expected a number in [0, 1]. "
            f"Received: max_fraction={max_fraction!r}"
        )
    if max_accuracy_drop is not None and max_accuracy_drop < 0:
        raise ValueError(
            "Received an invalid value for `max_accuracy_drop`, expected a number >= 0. "
            f"Received: max_accuracy_drop={max_accuracy_drop!r}"
        )
    if isinstance(min_units, bool) or not isinstance(min_units, (int, np.integer)) or (
        min_units < 0
    ):
        raise ValueError(
            "Received an invalid value for `min_units`, expected a non-negative integer. "
            f"Received: min_units={min_units!r}"
        )


def prune_by_ranking(
    model,
    criterion,
    x,
    y,
    algorithm="iterative",
    max_units=None,
    max_fraction=None,
    max_accuracy_drop=None,
    min_units=1,
    layers=None,
    eval_data=None,
    error_surface_every=None,
    alphas=None,
    build_model=True,
    verbose=0,
):
    """Removes units one at a time by a criterion, without retraining.

    Args:
        model: a trained functional or Sequential `keras.Model` with one
            output (compiled, or with `criterion` not needing a loss).
        criterion: a `keras_darn.criteria.Criterion` or a registered name.
        x: inputs for the scores and the stopping rule.
        y: targets of `x`.
        algorithm: `"single"` (Algorithm I) or `"iterative"` (Algorithm II).
            Defaults to `"iterative"`.
        max_units: stop after removing this many units. Defaults to `None`.
        max_fraction: stop after removing this fraction of the probed
            units. Defaults to `None`.
        max_accuracy_drop: stop before the removal that would make the
            accuracy on `(x, y)` fall more than this below the starting
            accuracy (e.g. `0.01` for one point). Defaults to `None`.
        min_units: units every probed layer keeps. Defaults to `1`.
        layers: names of layers whose groups may be pruned. Defaults to
            `None` (every resizable group).
        eval_data: optional `(x_test, y_test)` also evaluated after every
            step (recorded, never used to decide). Defaults to `None`.
        error_surface_every: every this many steps (starting with the first)
            record the loss on `(x, y)` as the removed unit's output is scaled
            by each gain in `alphas`, just before it is removed (the paper's
            Figures 5-7). Defaults to `None` (never).
        alphas: gains for the error surface. Defaults to `None`
            (`np.linspace(0, 10, 101)`).
        build_model: rebuild the pruned model at the end; otherwise the
            original model is returned with the history. Defaults to `True`.
        verbose: 1 prints one line per step. Defaults to `0`.

    Returns:
        A `darn.Result`: `model` is the pruned model (the model given, with
        `build_model=False`), one `"remove"` event per removed unit, and
        `history` a dict with `"algorithm"`,
        `"criterion"` (its config), `"stopped_by"` (`"max_units"`,
        `"max_fraction"`, `"max_accuracy_drop"`, `"min_units"` or
        `"all_units"`),
        `"total_units"` and `"steps"`: a list with one dict per state, the
        first for the unpruned model, with `"units_removed"`, `"layer"` and
        `"unit"` (the removed unit, an index of the layer's own output),
        `"score"`, `"loss"`, `"accuracy"`, `"eval_loss"` and
        `"eval_accuracy"` (when `eval_data` is given), `"units_left"`
        (`{layer: count}`), `"seconds"` (time spent ranking) and, where
        recorded, `"error_surface"` (`{"alphas", "loss", "accuracy"}`). A
        removal refused by `max_accuracy_drop` is not applied and not listed.

    Raises:
        ValueError: for an unknown `algorithm` or invalid stopping values.
    """
    check_one_of(algorithm, "algorithm", _ALGORITHMS)
    _check_stop(max_units, max_fraction, max_accuracy_drop, min_units)
    criterion = criteria_base.get(criterion)
    probed = model if isinstance(model, ProbedModel) else ProbedModel(model, layers=layers)
    total = int(sum(g.size for g in probed.groups))
    limit = total
    if max_units is not None:
        limit = min(limit, int(max_units))
    if max_fraction is not None:
        limit = min(limit, int(np.floor(max_fraction * total + 1e-9)))
    alphas = np.linspace(0.0, 10.0, 101) if alphas is None else np.asarray(alphas, float)

    def state():
        loss, accuracy = probed.evaluate(x, y)
        entry = {
            "units_removed": int(sum((~probed.live[k]).sum() for k in probed.keys)),
            "loss": loss,
            "accuracy": accuracy,
            "units_left": {k: int(probed.live[k].sum()) for k in probed.keys},
        }
        if eval_data is not None:
            entry["eval_loss"], entry["eval_accuracy"] = probed.evaluate(*eval_data)
        return entry

    before = figures(probed.model)
    steps = [state()]
    steps[0].update(layer=None, unit=None, score=None, seconds=0.0)
    start_accuracy = steps[0]["accuracy"]
    order = None
    stopped_by = "min_units"
    while True:
        if steps[-1]["units_removed"] - steps[0]["units_removed"] >= limit:
            if max_units is not None and limit == max_units:
                stopped_by = "max_units"
            elif max_fraction is not None:
                stopped_by = "max_fraction"
            else:
                stopped_by = "all_units"
            break
        began = time.perf_counter()
        if algorithm == "iterative" or order is None:
            scores = criterion(probed, x, y)
            order = _global_order(scores)
        choice = _next_unit(order, probed, min_units)
        seconds = time.perf_counter() - began
        if choice is None:
            stopped_by = "min_units"
            break
        key, unit, score = choice
        surface = None
        if error_surface_every and (len(steps) - 1) % error_surface_every == 0:
            surface = error_surface(probed, key, unit, x, y, alphas)
        previous = probed.gains[key][unit]
        probed.remove(key, [unit])
        entry = state()
        if (
            max_accuracy_drop is not None
            and entry["accuracy"] < start_accuracy - max_accuracy_drop - 1e-12
        ):
            probed.gains[key][unit] = previous
            probed.live[key][unit] = True
            stopped_by = "max_accuracy_drop"
            break
        entry.update(
            layer=key,
            unit=int(probed.group(key).layer_indices([unit])[0]),
            score=float(score),
            seconds=seconds,
        )
        if surface is not None:
            entry["error_surface"] = surface
        steps.append(entry)
        if verbose:
            print(
                f"[{algorithm}] removed {key}[{entry['unit']}] score={score:.4g} "
                f"loss={entry['loss']:.4f} accuracy={entry['accuracy']:.4f}"
            )
    history = {
        "algorithm": algorithm,
        "criterion": criteria_base.serialize(criterion),
        "stopped_by": stopped_by,
        "total_units": total,
        "steps": steps,
    }
    pruned = probed.pruned_model() if build_model else probed.model
    events = [
        {"step": i, "action": "remove", "layer": step["layer"], "units": [int(step["unit"])],
         "score": step["score"], "accuracy": step["accuracy"]}
        for i, step in enumerate(steps[1:])
    ]
    return Result(pruned, events, before, history=history, method=f"ranking_{algorithm}")


def _global_order(scores):
    """`(key, unit, score)` of every scored unit, lowest score first."""
    entries = [
        (float(value), key, int(unit))
        for key, values in scores.items()
        for unit, value in enumerate(values)
        if np.isfinite(value)
    ]
    entries.sort(key=lambda e: e[0])
    return [(key, unit, value) for value, key, unit in entries]


def _next_unit(order, probed, min_units):
    for key, unit, score in order:
        if probed.live[key][unit] and probed.live[key].sum() > min_units:
            return key, unit, score
    return None


def error_surface(probed, key, unit, x, y, alphas):
    """Loss and accuracy as one unit's output is multiplied by each gain.

    The paper's Figures 5-7: gain 1 is the trained network, gain 0 the unit
    switched off, gains above 1 boost it.

    Args:
        probed: a `keras_darn.criteria.ProbedModel` (its current gains are
            the starting point).
        key: group key or member layer name.
        unit: unit index in group order.
        x: inputs.
        y: targets.
        alphas: the gains.

    Returns:
        `{"alphas": list, "loss": list, "accuracy": list}`.

    Example:

    ```python
    surface = error_surface(ProbedModel(model), "dense", 3, x_val, y_val,
                            np.linspace(0, 10, 101))
    ```
    """
    group = probed.group(key)
    alphas = np.asarray(alphas, dtype=np.float64)
    variants = np.tile(probed.gains[group.key], (len(alphas), 1))
    variants[:, unit] = alphas
    losses, accuracies = probed.evaluate_variants(group.key, variants, x, y)
    return {
        "alphas": alphas.tolist(),
        "loss": np.asarray(losses).tolist(),
        "accuracy": np.asarray(accuracies).tolist(),
    }

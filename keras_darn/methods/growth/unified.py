"""DARN's unified loop: add units where the criteria ask, remove dead and redundant ones.

The DARN paper (Dynamically Adding and Removing Neurons) ends with the aim
of one loop that both prunes and grows. `darn_unified` is that loop, between
fit stages:

1. train for `epochs_per_round` epochs;
2. read the growable layers' activation statistics on probe data (the
   criteria's, `keras_darn.methods.growth.sources.layer_statistics`);
3. remove units that are dead (mean |activation| <= `dead_tolerance`: for
   ReLU, never active on the probe data, so removing them keeps the outputs
   on that data) and redundant (|correlation| >= `redundancy` with a unit
   that stays; the lower-variance one of the pair goes);
4. if the model is still above `param_budget`, remove the lowest-variance
   units of every layer, in proportion to its width, until it fits;
5. grow every layer that lost no unit this round (a layer with dead or
   redundant units has room already) and whose `trigger` fires (by default
   the effective-rank trigger: the layer's activations use almost all of
   its width) by
   `growth_rate` of its width, with function-preserving new units, as far
   as the budget allows.

Optimizer state is carried through every rebuild, and the learning-rate
schedule continues.
"""

import math

import numpy as np

from keras_darn import backend
from keras_darn.criteria import correlated_pairs
from keras_darn.graph.activations import layer_width
from keras_darn.methods.growth.callback import units_to_add
from keras_darn.methods.growth.grow import grow_units
from keras_darn.methods.growth.sources import choose_sources
from keras_darn.methods.growth.sources import layer_statistics
from keras_darn.methods.growth.sources import source_criterion
from keras_darn.methods.growth.staged_fit import EpochRunner
from keras_darn.methods.growth.staged_fit import StagedCallbacks
from keras_darn.methods.growth.staged_fit import probe_arrays
from keras_darn.methods.growth.staged_fit import probe_loss
from keras_darn.methods.growth.training import default_layers
from keras_darn.methods.growth.triggers import EffectiveRankTrigger
from keras_darn.methods.growth.triggers import collect_activations
from keras_darn.metrics import count_params
from keras_darn.rebuild import Rebuilder
from keras_darn.rebuild import remove_units
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures
from keras_darn.resizing.schedules import Schedule
from keras_darn.validation import check_positive_int


def dead_units(mean_abs, tolerance=1e-6):
    """Indices of units whose mean |activation| is at most `tolerance`."""
    return np.flatnonzero(np.asarray(mean_abs) <= tolerance)


def redundant_units(correlation, variance, threshold=0.98, exclude=()):
    """Units that a more active, strongly correlated partner can stand for.

    The criteria's `correlated_pairs`: pairs are visited from the most
    correlated down to `threshold` (absolute Pearson correlation); of a
    pair whose units are both still there, the one with the lower variance
    goes and the other stays, so every unit marked has a partner that
    stays.

    Args:
        correlation: `(units, units)` correlation matrix.
        variance: the units' activation variances.
        threshold: absolute correlation in (0, 1]. Defaults to `0.98`.
        exclude: units already removed (never partners). Defaults to `()`.

    Returns:
        Sorted array of unit indices.
    """
    live = np.ones(len(variance), dtype=bool)
    live[np.asarray(exclude, dtype=np.int64)] = False
    pairs = correlated_pairs(correlation, threshold, live=live, keep_scores=np.asarray(variance))
    return np.array(sorted(drop for drop, _, _ in pairs), dtype=np.int64)


class UnifiedRound:
    """What one round of `darn_unified` did.

    Attributes:
        round: round number, from 0.
        epoch: completed epochs when the round's decision was taken.
        widths_before, widths_after: `{layer_name: width}`.
        removed: `{layer_name: {"dead": n, "redundant": n, "budget": n}}`.
        added: `{layer_name: units added}`.
        ranks: `{layer_name: effective rank}` (when the trigger has `rank`).
        params_before, params_after: parameter counts.
        loss_before, loss_after_removal, loss_after: probe loss around the
            rebuilds (`None` without probe labels).
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def as_dict(self):
        return dict(self.__dict__)

    def __repr__(self):
        return f"UnifiedRound(round={self.round}, widths_after={self.widths_after})"


def round_events(record):
    """The `darn.Result` events of one round: a `"remove"` and a `"grow"` per changed layer."""
    events = []
    for name in record.widths_before:
        removed = record.removed.get(name, {})
        if sum(removed.values()):
            events.append({
                "step": record.epoch - 1, "round": record.round, "action": "remove",
                "layer": name, "units": int(sum(removed.values())), **removed,
                "width": int(record.widths_before[name] - sum(removed.values())),
            })
        if record.added.get(name):
            events.append({
                "step": record.epoch - 1, "round": record.round, "action": "grow",
                "layer": name, "units": int(record.added[name]),
                "width": int(record.widths_after[name]),
            })
    return events


def darn_unified(
    model,
    x=None,
    y=None,
    rounds=5,
    epochs_per_round=1,
    layers=None,
    param_budget=None,
    growth_rate=0.25,
    max_width=None,
    trigger=None,
    init="zeros_out",
    criterion=None,
    noise=0.0,
    incoming_norm=1.0,
    dead_tolerance=1e-6,
    redundancy=0.98,
    min_units=1,
    probe_data=None,
    shuffle_seed=None,
    seed=None,
    callbacks=None,
    verbose=0,
    **fit_kwargs,
):
    """DARN's add-and-remove loop (see the module docstring).

    Args:
        model: a compiled functional or Sequential model.
        x: training inputs, as for `fit`.
        y: training targets, as for `fit`.
        rounds: train-decide-rebuild rounds; the last round only trains.
            Defaults to `5`.
        epochs_per_round: epochs per round. Defaults to `1`.
        layers: names of the layers that change, one per coupled group.
            Defaults to `None`: the first layer of every resizable group.
        param_budget: the most parameters the model may have after a round;
            `None` for no limit. Defaults to `None`.
        growth_rate: a firing layer grows by `max(1, ceil(growth_rate * w))`
            units; a `keras_darn.Schedule` gives the rate of each round
            (its step is the round, from 0; `None`: no growth that round).
            Defaults to `0.25`.
        max_width: largest width, an `int` or `{layer_name: int}`. Defaults
            to `None`.
        trigger: `trigger(activations) -> bool`. Defaults to `None`:
            `EffectiveRankTrigger()`.
        init: initialisation of new units (see `grow_units`). Defaults to
            "zeros_out".
        criterion: source units for the split/pair inits. Defaults to
            `None` (the init's default).
        noise: relative noise for "net2net"/"naive". Defaults to `0.0`.
        incoming_norm: for "zeros_out" and "random" (ignored by the other
            inits): each new unit's incoming norm as a multiple of the mean
            norm of the layer's units, see `grow_units`; `None` keeps the
            Rebuilder's 0.5. Defaults to `1.0`: new units as large as an
            average unit.
        dead_tolerance: mean |activation| at or below which a unit is dead.
            Defaults to `1e-6`.
        redundancy: |correlation| at or above which one unit of a pair is
            redundant; `None` to keep redundant units. Defaults to `0.98`.
        min_units: no layer goes below this width. Defaults to `1`.
        probe_data: `(x, y)` or `x` for the statistics and the loss checks.
            Defaults to `None`: the first 512 training examples.
        shuffle_seed: seeded per-epoch order, see `fit_with_growth`.
            Defaults to `None`.
        seed: seed of the new units' draws. Defaults to `None`.
        callbacks: Keras callbacks, seen as one training run. Defaults to
            `None`.
        verbose: passed to `fit`. Defaults to `0`.
        **fit_kwargs: more `fit` arguments (`batch_size`, ...).

    Returns:
        A `darn.Result` with the final model, a `"remove"` and a `"grow"`
        event per changed layer and round (`round_events`), and the merged
        per-epoch history, whose `"rounds"` holds one `UnifiedRound` per
        decision.

    Raises:
        ValueError: uncompiled model, bad arguments, or no probe data.

    Example:

    ```python
    result = darn.resize(model, "unified", darn.Target(params=50_000),
                         x=x_train, y=y_train, epochs=6, batch_size=128)
    result.model.summary()
    ```
    """
    if not model.compiled:
        raise ValueError(f"Compile model '{model.name}' before `darn_unified`.")
    for name, value in (("rounds", rounds), ("epochs_per_round", epochs_per_round), ("min_units", min_units)):
        check_positive_int(value, name)
    if param_budget is not None and param_budget <= 0:
        raise ValueError(f"Expected a positive `param_budget`. Received: param_budget={param_budget!r}")
    if not isinstance(growth_rate, Schedule) and (
        isinstance(growth_rate, bool) or not isinstance(growth_rate, (int, float)) or growth_rate <= 0
    ):
        raise ValueError(
            "Received an invalid value for `growth_rate`, expected a positive number or a "
            f"keras_darn.Schedule. Received: growth_rate={growth_rate!r}"
        )
    criterion = source_criterion(init, criterion)
    trigger = trigger if trigger is not None else EffectiveRankTrigger()
    if layers is None:
        layers = default_layers(model)
    probe_x, probe_y = probe_arrays(probe_data, x, y)
    if probe_x is None:
        raise ValueError("`darn_unified` reads activations: give `probe_data`. Received: probe_data=None")
    before = figures(model)
    staged = StagedCallbacks(callbacks or [])
    runner = EpochRunner(x, y, shuffle_seed, [staged], verbose, fit_kwargs)
    history, records = {}, []
    epoch = 0
    for round_index in range(rounds):
        for _ in range(epochs_per_round):
            runner.run(model, epoch, history)
            epoch += 1
            if model.stop_training:
                break
        if model.stop_training or round_index == rounds - 1:
            break
        rate = growth_rate(round_index) if isinstance(growth_rate, Schedule) else growth_rate
        model, record = _one_round(
            model, round_index, epoch, layers, param_budget, rate, max_width, trigger,
            init, criterion, noise, incoming_norm, dead_tolerance, redundancy, min_units,
            probe_x, probe_y,
            None if seed is None else int(seed) + round_index,
        )
        records.append(record)
    staged.finish()
    history["rounds"] = records
    events = [event for record in records for event in round_events(record)]
    return Result(model, events, before, history=history, method="darn_unified")


def _one_round(model, round_index, epoch, layers, budget, rate, max_width, trigger, init,
               criterion, noise, incoming_norm, dead_tolerance, redundancy, min_units, probe_x,
               probe_y, seed):
    widths = {n: layer_width(model, n) for n in layers}
    stats = layer_statistics(model, probe_x, layers)
    activations = collect_activations(model, probe_x, layers)
    params_before = count_params(model)
    loss_before = probe_loss(model, probe_x, probe_y)
    removal, removed = {}, {}
    for name in layers:
        unit = stats[name]
        dead = dead_units(unit["mean_abs"], dead_tolerance)
        redundant = (
            redundant_units(unit["correlation"], unit["variance"], redundancy, exclude=dead)
            if redundancy else np.zeros(0, int)
        )
        chosen = _cap(np.concatenate([dead, redundant]), widths[name], min_units, unit["variance"])
        removal[name] = chosen
        removed[name] = {
            "dead": int(np.isin(dead, chosen).sum()),
            "redundant": int(np.isin(redundant, chosen).sum()),
            "budget": 0,
        }
    if budget is not None:
        _fit_budget(model, removal, removed, stats, widths, budget, min_units)
    plan = {n: [int(i) for i in idx] for n, idx in removal.items() if len(idx)}
    if plan:
        with backend.scope(model):
            model = remove_units(model, plan)
    loss_after_removal = probe_loss(model, probe_x, probe_y)
    kept = {n: np.setdiff1d(np.arange(widths[n]), removal[n]) for n in layers}
    growth, ranks = {}, {}
    for name in layers:
        acts = activations[name][:, kept[name]]
        if hasattr(trigger, "rank"):
            ranks[name] = int(trigger.rank(acts))
        width = len(kept[name])
        limit = max_width.get(name) if isinstance(max_width, dict) else max_width
        count = units_to_add(rate, width, limit) if rate is not None else 0
        if rate is not None and count > 0 and not plan.get(name) and trigger(acts):
            growth[name] = count
    if budget is not None and growth:
        growth = _growth_within_budget(model, growth, budget)
    added = dict(growth)
    if growth:
        sources = None
        if criterion is not None:
            sources = choose_sources(criterion, model, probe_x, probe_y, growth)
        with backend.scope(model):
            model = grow_units(
                model, growth, init=init, sources=sources, noise=noise,
                incoming_norm=incoming_norm if init in ("zeros_out", "random") else None,
                seed=seed,
                gradient_data=(probe_x, probe_y) if init == "gradmax" else None,
            )
    record = UnifiedRound(
        round=round_index,
        epoch=epoch,
        widths_before=widths,
        widths_after={n: layer_width(model, n) for n in layers},
        removed=removed,
        added=added,
        ranks=ranks,
        params_before=params_before,
        params_after=count_params(model),
        loss_before=loss_before,
        loss_after_removal=loss_after_removal,
        loss_after=probe_loss(model, probe_x, probe_y),
    )
    return model, record


def _cap(indices, width, min_units, variance):
    """At most `width - min_units` removals, keeping the most active units."""
    indices = np.unique(indices.astype(np.int64))
    room = max(0, width - min_units)
    if len(indices) <= room:
        return indices
    return np.sort(indices[np.argsort(variance[indices], kind="stable")[:room]])


def _fit_budget(model, removal, removed, stats, widths, budget, min_units):
    """Removes the lowest-variance units, in proportion, until under `budget`."""
    for _ in range(8):
        params = _params_after(model, removal=removal)
        if params <= budget:
            return
        share = min(1.0, (params - budget) / params + 0.01)
        progressed = False
        for name, chosen in removal.items():
            variance = stats[name]["variance"]
            alive = np.setdiff1d(np.arange(widths[name]), chosen)
            extra = min(len(alive) - min_units, math.ceil(share * len(alive)))
            if extra <= 0:
                continue
            weakest = alive[np.argsort(variance[alive], kind="stable")[:extra]]
            removal[name] = np.sort(np.concatenate([chosen, weakest]))
            removed[name]["budget"] += int(extra)
            progressed = True
        if not progressed:
            return


def _growth_within_budget(model, growth, budget):
    """Shrinks the growth plan until the grown model fits the budget."""
    for _ in range(12):
        if not growth or _params_after(model, growth=growth) <= budget:
            return growth
        base = count_params(model)
        over = _params_after(model, growth=growth) - budget
        total = _params_after(model, growth=growth) - base
        factor = max(0.0, 1.0 - over / max(total, 1)) * 0.95
        growth = {n: int(math.floor(c * factor)) for n, c in growth.items()}
        growth = {n: c for n, c in growth.items() if c > 0}
    return growth


def _params_after(model, removal=None, growth=None):
    rebuilder = Rebuilder(model)
    if removal:
        plan = {n: [int(i) for i in idx] for n, idx in removal.items() if len(idx)}
        if plan:
            rebuilder.remove(plan)
    if growth:
        rebuilder.add(growth, init="zeros_out")
    return count_params(rebuilder.build())

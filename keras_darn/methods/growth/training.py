"""The fit-grow-continue driver: `fit_with_growth` and what it returns.

`fit_with_growth` trains in one-epoch `fit` stages, asks a `GrowthCallback`
after each epoch whether to grow, rebuilds the model with `grow_units`
(under the model's distribution strategy), carries the optimizer state
(slots sliced, zero for new units, `iterations` kept, so learning-rate
schedules continue) and goes on. It returns a `darn.Result` with one
event per grown layer, with the probe loss just before and after the
rebuild.

The schedule is a `keras_darn.Schedule` whose steps are epoch indices from
0: `Constant(0.2, start=2)` grows after the third epoch.
`darn.resize(model, "growth", ...)` runs this driver.
"""

import keras

from keras_darn import backend
from keras_darn.graph import unit_groups
from keras_darn.graph.activations import layer_width
from keras_darn.methods.growth.callback import GrowthCallback
from keras_darn.methods.growth.grow import INITS
from keras_darn.methods.growth.grow import grow_units
from keras_darn.methods.growth.grow import params_after_growth
from keras_darn.methods.growth.sources import source_criterion
from keras_darn.methods.growth.staged_fit import EpochRunner
from keras_darn.methods.growth.staged_fit import StagedCallbacks
from keras_darn.methods.growth.staged_fit import probe_arrays
from keras_darn.methods.growth.staged_fit import probe_loss
from keras_darn.metrics import count_params
from keras_darn.rebuild.training_state import compile_fresh
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures
from keras_darn.validation import check_one_of


def fit_with_growth(
    model,
    x=None,
    y=None,
    epochs=1,
    layers=None,
    schedule=None,
    max_width=None,
    max_params=None,
    trigger=None,
    criterion=None,
    init="zeros_out",
    noise=0.0,
    incoming_norm=1.0,
    probe_data=None,
    reset_optimizer=False,
    new_slots="zeros",
    shuffle_seed=None,
    seed=None,
    callbacks=None,
    verbose=0,
    **fit_kwargs,
):
    """Trains `model`, growing it between epochs as the schedule says.

    Every epoch is one `model.fit(..., initial_epoch=e, epochs=e + 1)` call.
    After it, a `GrowthCallback(layers, schedule, trigger, criterion)`
    decides; when it grows, the model is rebuilt with `grow_units` under its
    `distribute_strategy`, the optimizer state is carried over (or, with
    `reset_optimizer=True`, replaced by a fresh optimizer of the same
    configuration whose learning-rate schedule goes on) and training goes
    on. The user `callbacks` see one training run: `on_train_begin` once,
    `on_train_end` at the end, so `ReduceLROnPlateau` and `EarlyStopping`
    keep their counters; they are pointed at each new model.

    Args:
        model: a compiled functional or Sequential model.
        x: training inputs, as for `fit`.
        y: training targets, as for `fit`.
        epochs: total epochs. Defaults to `1`.
        layers: names of the layers that may grow, one per coupled group.
            Defaults to `None`: the first layer of every resizable group.
        schedule: a `keras_darn.Schedule` of the relative width added after
            each epoch (steps are Keras' epoch indices, from 0; a layer of width `w`
            gains `max(1, ceil(r * w))` units where `schedule(step)` is `r`),
            e.g. `darn.schedules.Constant(0.2, start=2)`. Defaults to `None`
            (then `trigger` sets the amounts; with neither, the model trains
            without growing: a baseline with the same stages and data
            order).
        max_width: the largest width, an `int` or `{layer_name: int}`
            (layers missing from the dict do not grow), `None` for no
            limit. Defaults to `None`.
        max_params: a growth that would take the model above this many
            parameters is skipped (`None`: no limit). Defaults to `None`.
        trigger: e.g. `EffectiveRankTrigger()`. Defaults to `None`.
        criterion: a `keras_darn.criteria` criterion or its name: the
            units "net2net"/"naive" split, highest score first (default
            `"variance"`); "pair_average" takes the least correlated pairs
            (`"correlation"`, its only criterion); must be `None` for the
            other inits. Defaults to `None`.
        init: initialisation of new units, see `grow_units`; "gradmax"
            takes its gradients on the probe data, which needs labels.
            Defaults to "zeros_out".
        noise: relative noise for "net2net"/"naive". Defaults to `0.0`.
        incoming_norm: for "zeros_out" and "random" (ignored by the other
            inits, "gradmax" keeps its own 0.01): each new unit's incoming norm as a multiple of the mean
            norm of the layer's units, see `grow_units`; `None` keeps the
            Rebuilder's 0.5. Defaults to `1.0`: new units as large as an
            average unit.
        probe_data: `(x_probe, y_probe)` or `x_probe`: inputs for the trigger
            and criterion, and (with labels) the loss measured before and
            after each growth. Defaults to `None`: the first 512 examples of
            `x`, `y` when they are arrays.
        reset_optimizer: start a fresh optimizer at every growth (a baseline:
            zero slots and step counter, so Adam's bias correction starts
            over, while a learning-rate schedule continues from the current
            step, see `compile_fresh`). Defaults to `False`.
        new_slots: second-moment slots of the new weights when the
            optimizer is carried, "zeros" or "mean" (see `grow_units`).
            Defaults to "zeros".
        shuffle_seed: when `x`, `y` are arrays, shuffle them each epoch with
            `numpy.random.default_rng(shuffle_seed + epoch)` instead of
            `fit`'s own shuffling, so that runs with and without growth see
            the same data order. Defaults to `None`.
        seed: seed of the new units' random draws (plus the epoch).
            Required under a multi-worker strategy, where every worker
            must draw the same units. Defaults to `None`.
        callbacks: Keras callbacks (not `BackupAndRestore`: the model
            changes shape between stages). Defaults to `None`.
        verbose: passed to `fit`. Defaults to `0`.
        **fit_kwargs: more arguments for `fit` (`batch_size`,
            `validation_data`, ...).

    Returns:
        A `darn.Result`: `.model` is the final (grown) model, compiled;
        `.events` has one `"grow"` event per grown layer and growth (`step`,
        `layer`, `units`, `width`, `widths_after`, `params_before`,
        `params`, and `loss_before`, `loss_after`, `relative_loss_change`:
        the loss on the probe data just before and after the rebuild,
        `None` without probe labels); `.history` is `{metric: [one value
        per epoch]}`, merged over the stages, with per-epoch
        `forward_flops` (per example) and `params` of the model trained in
        that epoch, and `"decisions"`: the `GrowthCallback`'s
        `GrowthDecision` after each epoch.

    Raises:
        ValueError: an uncompiled model, a bad `init`/`criterion`
            combination, "gradmax" without probe labels, arguments that
            `fit` handles itself (`epochs`, `initial_epoch`), a
            `BackupAndRestore` callback, or no `seed` under a multi-worker
            strategy.

    Example:

    ```python
    result = fit_with_growth(
        model, x_train, y_train, epochs=10, layers=["hidden"],
        schedule=darn.schedules.Constant(0.2, start=2), max_width=256,
        batch_size=128, validation_data=(x_test, y_test))
    grown = result.model
    ```
    """
    if not model.compiled:
        raise ValueError(f"Compile model '{model.name}' before `fit_with_growth`.")
    for key in ("initial_epoch", "epochs_per_stage"):
        if key in fit_kwargs:
            raise ValueError(f"`fit_with_growth` sets `{key}` itself. Received: {key}={fit_kwargs[key]!r}")
    check_one_of(init, "init", INITS)
    criterion = source_criterion(init, criterion)
    if layers is None:
        layers = default_layers(model)
    if max_params is not None and (
        isinstance(max_params, bool) or not isinstance(max_params, int) or max_params < 1
    ):
        raise ValueError(
            "Received an invalid value for `max_params`, expected a positive integer or None. "
            f"Received: max_params={max_params!r}"
        )
    probe_x, probe_y = probe_arrays(probe_data, x, y)
    if init == "gradmax" and probe_y is None:
        raise ValueError(
            "init='gradmax' takes loss gradients on the probe data: give array `x`, `y` or "
            "`probe_data=(x, y)`. Received: no probe labels"
        )
    growth = None
    if schedule is not None or trigger is not None:
        growth = GrowthCallback(
            layers,
            schedule=schedule,
            max_width=max_width,
            trigger=trigger,
            criterion=criterion,
            probe_data=probe_x if (trigger is not None or criterion is not None) else None,
            probe_labels=probe_y,
            warn_unscheduled=False,
        )
    _refuse_backup(callbacks)
    needs_seed = init in ("zeros_out", "random", "gradmax") or noise
    if seed is None and needs_seed and worker_count(backend.strategy_of(model)) > 1:
        raise ValueError(
            "Under a multi-worker strategy every worker must draw the same new units: "
            f"pass `seed` (an int). Received: seed=None with init={init!r} on "
            f"{worker_count(backend.strategy_of(model))} workers"
        )
    before = figures(model)
    staged = StagedCallbacks(callbacks or [])
    history, events, decisions = {}, [], []
    runner = EpochRunner(x, y, shuffle_seed, [c for c in (growth, staged) if c], verbose, fit_kwargs)
    for epoch in range(epochs):
        runner.run(model, epoch, history)
        if growth is not None:
            decisions.extend(growth.decisions)  # reset at every stage's on_train_begin
        if model.stop_training:
            break  # a user callback (e.g. EarlyStopping) ended training
        decision = growth.pending if growth is not None else None
        if decision is None or epoch == epochs - 1:
            continue
        if max_params is not None and params_after_growth(model, decision.plan) > max_params:
            continue
        model, grown = _grow(
            model, decision, init, noise, incoming_norm, seed, reset_optimizer, probe_x, probe_y,
            new_slots,
        )
        events.extend(grown)
    staged.finish()
    history["decisions"] = decisions
    return Result(model, events, before, history=history, method="fit_with_growth")


def worker_count(strategy):
    """How many worker processes `strategy` trains on (1 without a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, sum(len(spec.get(job, [])) for job in ("chief", "worker")))


def _refuse_backup(callbacks):
    # A checkpoint of one width cannot be restored into the next stage's
    # model, so `BackupAndRestore` would fail (or restore the wrong stage).
    for callback in callbacks or []:
        if isinstance(callback, keras.callbacks.BackupAndRestore):
            raise ValueError(
                "`fit_with_growth` rebuilds the model between epochs, so "
                "keras.callbacks.BackupAndRestore cannot restore it; save the grown "
                "model between calls instead (`result.model.save(...)`). Received: "
                f"callbacks containing {callback!r}"
            )


def _grow(
    model, decision, init, noise, incoming_norm, seed, reset_optimizer, probe_x, probe_y, new_slots="zeros"
):
    loss_before = probe_loss(model, probe_x, probe_y)
    draw_seed = None if seed is None else int(seed) + decision.epoch
    with backend.scope(model):
        new_model = grow_units(
            model,
            decision.plan,
            init=init,
            sources=decision.sources or None,
            noise=noise,
            incoming_norm=incoming_norm if init in ("zeros_out", "random") else None,
            seed=draw_seed,
            compile=not reset_optimizer,
            new_slots=new_slots,
            gradient_data=(probe_x, probe_y) if init == "gradmax" else None,
        )
        if reset_optimizer:
            compile_fresh(new_model, model)
    widths_after = {n: layer_width(new_model, n) for n in decision.widths}
    loss_after = probe_loss(new_model, probe_x, probe_y)
    change = None if loss_before is None else (
        abs(loss_after - loss_before) / max(abs(loss_before), 1e-12))
    params_before, params_after = count_params(model), count_params(new_model)
    events = [
        {"step": decision.step, "action": "grow", "layer": name, "units": int(count),
         "width": int(widths_after[name]), "params_before": params_before,
         "params": params_after, "loss_before": loss_before, "loss_after": loss_after,
         "relative_loss_change": change, "widths_after": dict(widths_after)}
        for name, count in decision.plan.items()
    ]
    return new_model, events


def default_layers(model):
    """The first layer of every resizable unit group growth can measure, by name.

    Growth reads a layer's width (`units` or `filters`) and its output, so
    the groups of units inside a layer (attention heads, the backward
    direction of a `Bidirectional` layer) are left out.
    """
    top = {layer.name: layer for layer in model.layers}
    return [
        g.layers[0] for g in unit_groups(model, resizable_only=True)
        if g.layers[0] in top
        and any(isinstance(getattr(top[g.layers[0]], a, None), int) for a in ("units", "filters"))
    ]

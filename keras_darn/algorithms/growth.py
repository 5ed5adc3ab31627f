"""How to grow: initialisations of new units, and the fit-grow-continue driver.

`grow_units` adds units with one of these initialisations:

| init           | new units' incoming weights      | outgoing weights                 | same outputs |
|----------------|----------------------------------|----------------------------------|--------------|
| `zeros_out`    | random, `incoming_norm` x mean   | 0                                | yes          |
| `net2net`      | copy of a source unit (+ noise)  | source's divided among copies    | if noise = 0 |
| `pair_average` | mean of two source units         | 0                                | yes          |
| `random`       | random, `incoming_norm` x mean   | random                           | no           |
| `naive`        | copy of a source (+ noise), noise also on the source | source's, not divided | no |

"mean" is the mean norm of the existing units' incoming weights; the
Rebuilder draws new units at 0.5 x that, the drivers default to 1.0 x (under
Adam, larger new units learn faster; see `grow_units`).

`naive` is the DARN paper's own growth (copy a high-variance unit and add
noise to both copies), kept as a baseline: the copies' outgoing weights are
not divided, so the unit's contribution to the next layer doubles and the
learned function is disturbed at every growth. The paper reports that its
grown networks never exceeded their initial accuracy.

`fit_with_growth` trains in one-epoch `fit` stages, asks a `GrowthCallback`
after each epoch whether to grow, rebuilds the model with `grow_units`
(under the model's distribution strategy), carries the optimizer state
(slots sliced, zero for new units, `iterations` kept, so learning-rate
schedules continue) and goes on.
"""

import warnings

import keras
import numpy as np

from keras_darn.callbacks.growth import PAIR_INITS
from keras_darn.callbacks.growth import SPLIT_INITS
from keras_darn.callbacks.growth import GrowthCallback
from keras_darn.criteria import growth_triggers
from keras_darn.metrics import count_flops
from keras_darn.metrics import count_params
from keras_darn.rebuild import Rebuilder
from keras_darn.rebuild import compile_like

INITS = ("zeros_out", "net2net", "pair_average", "random", "naive")


def grow_units(
    model,
    plan,
    init="zeros_out",
    sources=None,
    noise=0.0,
    incoming_norm=None,
    seed=None,
    compile=True,
    new_slots="zeros",
):
    """Returns a new model with more units, initialised by `init`.

    Args:
        model: a functional or Sequential Keras model; it is not modified.
        plan: `{layer_name: number of new units}`, one layer per coupled
            group (coupled layers grow with it).
        init: one of `INITS` (see the module docstring): "zeros_out",
            "net2net", "pair_average", "random" or "naive" (the DARN paper's
            baseline). Defaults to "zeros_out".
        sources: `{layer_name: [source indices]}` for "net2net" and "naive"
            (one index, or a 1-tuple, per new unit; drawn at random when
            omitted) and `{layer_name: [(i, j), ...]}` for "pair_average"
            (required). Defaults to `None`.
        noise: relative noise on the copies' incoming weights (scale
            `noise * std(kernel)`), for "net2net" and "naive". Defaults to
            `0.0`.
        incoming_norm: for "zeros_out" and "random": the norm of each new
            unit's incoming weights (its kernel slice in the named layer),
            as a multiple of the mean norm of the existing units'. `None`
            keeps the Rebuilder's 0.5. Under Adam, whose steps do not scale
            with the weights, larger new units learn faster; the outputs
            stay the same with "zeros_out" whatever the value. Defaults to
            `None`.
        seed: seed of the random draws. Defaults to `None`.
        compile: compile like `model` and carry the optimizer state over.
            Defaults to `True`.
        new_slots: the new weights' second-moment optimizer slots (Adam's
            `v`) when `compile=True`: "zeros" (the Rebuilder's fill) or
            "mean", the mean `v` of the same variable's surviving weights.
            Adam's bias correction uses the global step count, so a new
            weight whose `v` starts at 0 has its `v` under-corrected for
            hundreds of steps: its steps are several times larger than a
            fresh optimizer's (see `adam_step_inflation`). "mean" makes new
            weights step like their neighbours. First moments start at 0
            either way; surviving slots are carried exactly. Defaults to
            "zeros".

    Returns:
        A new `keras.Model`; the named layers' new units come after their
        existing ones.

    Raises:
        ValueError: bad `init`, `sources` for an init that takes none,
            missing or out-of-range sources, or a bad plan.

    Example:

    ```python
    wider = grow_units(model, {"dense": 8}, init="net2net",
                       sources={"dense": [3, 3, 5, 0, 1, 2, 7, 4]}, noise=0.01)
    ```
    """
    if init not in INITS:
        raise ValueError(
            f"Received an invalid value for `init`, expected one of {INITS}. Received: init={init!r}"
        )
    if new_slots not in NEW_SLOTS:
        raise ValueError(
            f"Received an invalid value for `new_slots`, expected one of {NEW_SLOTS}. "
            f"Received: new_slots={new_slots!r}"
        )
    if init in ("zeros_out", "random"):
        if sources:
            raise ValueError(
                f"`sources` are only used by the inits {SPLIT_INITS + PAIR_INITS}. "
                f"Received: init={init!r}, sources={sources!r}"
            )
        rebuilder = Rebuilder(model, seed=seed).add(plan, init=init)
        new_model = _finish(rebuilder, model, compile, new_slots)
        if incoming_norm is not None:
            _set_incoming_norm(model, new_model, plan, incoming_norm)
        return new_model
    if incoming_norm is not None:
        raise ValueError(
            "`incoming_norm` applies to the random incoming weights of 'zeros_out' and "
            f"'random'. Received: init={init!r}, incoming_norm={incoming_norm!r}"
        )
    rng = np.random.default_rng(seed)
    if init == "pair_average":
        pairs = _pair_sources(model, plan, sources)
        return _grow_pair_average(model, plan, pairs, rng, seed, compile, new_slots)
    split = _split_sources(model, plan, sources, rng)
    if init == "net2net":
        rebuilder = Rebuilder(model, seed=seed).add(plan, init="net2net", sources=split, noise=noise)
        return _finish(rebuilder, model, compile, new_slots)
    return _grow_naive(model, plan, split, noise, rng, seed, compile, new_slots)


NEW_SLOTS = ("zeros", "mean")


def _finish(rebuilder, model, compile, new_slots, new_model=None):
    """Builds (unless given), compiles like `model`, fills new units' slots."""
    if new_model is None:
        new_model = rebuilder.build()
    if compile:
        compile_like(new_model, model, rebuilder.variable_map)
        if new_slots == "mean":
            fill_new_second_moments(new_model, rebuilder.variable_map)
    return new_model


def fill_new_second_moments(new_model, variable_map):
    """Sets the second-moment slots of new weights to their variable's mean.

    Positions that `transform(ones, fill="zeros")` leaves at 0 are new; every
    other slot entry is left as carried. Only slot lists whose attribute
    names a second moment (`_velocities`, `_velocity_hats` of Adam, AdamW,
    Adamax's `_norms`...) are changed; optimizers without one are untouched.

    Args:
        new_model: the compiled, rebuilt model (optimizer built).
        variable_map: `Rebuilder.variable_map` of the rebuild.

    Returns:
        The number of slot entries set.
    """
    optimizer = getattr(new_model, "optimizer", None)
    if optimizer is None or not optimizer.built:
        return 0
    variables = optimizer._trainable_variables
    lists = [
        value
        for attribute, value in vars(optimizer).items()
        if attribute in ("_velocities", "_velocity_hats")
        and isinstance(value, list)
        and len(value) == len(variables)
    ]
    filled = 0
    for old, new, transform in variable_map:
        if not old.trainable or tuple(old.shape) == tuple(new.shape):
            continue
        try:
            index = optimizer._get_variable_index(new)
        except (KeyError, ValueError):
            continue
        kept = transform(np.ones(tuple(old.shape), dtype="float32"), fill="zeros") != 0
        if kept.all() or not kept.any():
            continue
        for slots in lists:
            value = keras.ops.convert_to_numpy(slots[index])
            value[~kept] = value[kept].mean()
            slots[index].assign(value)
            filled += int((~kept).sum())
    return filled


def adam_step_inflation(steps_before, steps_since, beta_1=0.9, beta_2=0.999):
    """How much larger a new weight's Adam step is than a fresh optimizer's.

    A weight created after `steps_before` optimizer steps with zero moments
    sees Adam's global bias correction `1 - beta^(steps_before + k)` instead
    of its own `1 - beta^k`. For a steady gradient its step after `k` steps,
    relative to a fresh optimizer's, is
    `[(1 - b1^k) / (1 - b1^t)] / sqrt((1 - b2^k) / (1 - b2^t))`, t = steps_before + k.

    Args:
        steps_before: optimizer steps taken before the weight was created.
        steps_since: steps since (k >= 1).
        beta_1, beta_2: Adam's decay rates.

    Returns:
        The ratio (1.0: no inflation).
    """
    k = np.asarray(steps_since, dtype="float64")
    t = steps_before + k
    first = (1 - beta_1**k) / (1 - beta_1**t)
    second = np.sqrt((1 - beta_2**k) / (1 - beta_2**t))
    return first / second


def _set_incoming_norm(model, new_model, plan, multiple):
    if isinstance(multiple, bool) or not isinstance(multiple, (int, float)) or multiple <= 0:
        raise ValueError(f"Expected a positive `incoming_norm`. Received: incoming_norm={multiple!r}")
    for name in plan:
        old_width = growth_triggers.layer_width(model, name)
        kernel = _weight(new_model.get_layer(name), "kernel")
        value = keras.ops.convert_to_numpy(kernel)
        columns = value.reshape(-1, value.shape[-1])
        norms = np.sqrt((columns.astype(np.float64) ** 2).sum(axis=0))
        target = multiple * float(norms[:old_width].mean())
        scale = target / np.maximum(norms[old_width:], 1e-12)
        value[..., old_width:] = value[..., old_width:] * scale.astype(value.dtype)
        kernel.assign(value)


def _split_sources(model, plan, sources, rng):
    sources = sources or {}
    result = {}
    for name, count in plan.items():
        width = growth_triggers.layer_width(model, name)
        chosen = sources.get(name)
        if chosen is None:
            chosen = rng.choice(width, size=count, replace=count > width)
        flat = [int(s[0]) if isinstance(s, (tuple, list)) else int(s) for s in chosen]
        if len(flat) != count or min(flat) < 0 or max(flat) >= width:
            raise ValueError(
                f"Expected {count} source indices in [0, {width}) for layer '{name}'. "
                f"Received: sources[{name!r}]={chosen!r}"
            )
        result[name] = flat
    return result


def _pair_sources(model, plan, sources):
    result = {}
    for name, count in plan.items():
        width = growth_triggers.layer_width(model, name)
        pairs = (sources or {}).get(name)
        if pairs is None:
            raise ValueError(
                f"init='pair_average' needs `sources` with one pair of unit indices per new "
                f"unit of layer '{name}' (e.g. from LowCorrelation). Received: sources={sources!r}"
            )
        pairs = [tuple(int(i) for i in p) for p in pairs]
        if len(pairs) != count or any(len(p) != 2 or min(p) < 0 or max(p) >= width for p in pairs):
            raise ValueError(
                f"Expected {count} pairs of unit indices in [0, {width}) for layer '{name}'. "
                f"Received: sources[{name!r}]={pairs!r}"
            )
        result[name] = pairs
    return result


def _weight(layer, name):
    return next((w for w in layer.weights if w.name == name), None)


def _grow_pair_average(model, plan, pairs, rng, seed, compile, new_slots="zeros"):
    """zeros_out growth, then incoming weights = mean of the pair's."""
    rebuilder = Rebuilder(model, seed=seed).add(plan, init="zeros_out")
    new_model = rebuilder.build()
    for name, name_pairs in pairs.items():
        old_width = growth_triggers.layer_width(model, name)
        layer = new_model.get_layer(name)
        for weight_name in ("kernel", "bias"):
            variable = _weight(layer, weight_name)
            if variable is None:
                continue
            value = keras.ops.convert_to_numpy(variable)
            for offset, (i, j) in enumerate(name_pairs):
                value[..., old_width + offset] = 0.5 * (value[..., i] + value[..., j])
            variable.assign(value)
    return _finish(rebuilder, model, compile, new_slots, new_model)


def _grow_naive(model, plan, sources, noise, rng, seed, compile, new_slots="zeros"):
    """Net2WiderNet copies with the outgoing weights multiplied back.

    The factor is read from a noise-free twin build: there, every shared
    outgoing weight holds 1/k of a weight of ones (k copies of one unit).
    """
    rebuilder = Rebuilder(model, seed=seed).add(plan, init="net2net", sources=sources, noise=noise)
    new_model = rebuilder.build()
    twin = Rebuilder(model, seed=0).add(plan, init="net2net", sources=sources, noise=0.0)
    twin.build()
    for (old, variable, _), (twin_old, _, twin_transform) in zip(
        rebuilder.variable_map, twin.variable_map
    ):
        if tuple(old.shape) != tuple(twin_old.shape) or old.path != twin_old.path:
            raise RuntimeError("Twin builds of the naive growth do not line up.")
        shares = twin_transform(np.ones(tuple(old.shape), dtype="float32"))
        if np.all(shares == 1.0):
            continue
        factor = np.where(shares > 0, 1.0 / np.where(shares > 0, shares, 1.0), 1.0)
        value = keras.ops.convert_to_numpy(variable) * factor.astype(variable.dtype)
        variable.assign(value)
    # The paper adds noise to both instances: the sources too.
    if noise:
        for name, chosen in sources.items():
            kernel = _weight(new_model.get_layer(name), "kernel")
            value = keras.ops.convert_to_numpy(kernel)
            scale = noise * (float(np.std(value)) or 1.0)
            for unit in sorted(set(chosen)):
                value[..., unit] += rng.normal(0.0, scale, size=value[..., unit].shape)
            kernel.assign(value)
    return _finish(rebuilder, model, compile, new_slots, new_model)


class GrowthEvent:
    """One growth between two epochs of `fit_with_growth`.

    Attributes:
        epoch: completed epochs before growing.
        plan: `{layer_name: units added}`.
        widths_before, widths_after: `{layer_name: width}`.
        params_before, params_after: parameter counts.
        loss_before, loss_after: loss on the probe data just before and just
            after the rebuild (inference mode); `None` without probe labels.
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @property
    def relative_loss_change(self):
        """`|loss_after - loss_before| / |loss_before|`, or `None`."""
        if self.loss_before is None:
            return None
        return abs(self.loss_after - self.loss_before) / max(abs(self.loss_before), 1e-12)

    def as_dict(self):
        fields = dict(self.__dict__)
        fields["relative_loss_change"] = self.relative_loss_change
        return fields

    def __repr__(self):
        return f"GrowthEvent(epoch={self.epoch}, widths_after={self.widths_after})"


class GrowthResult:
    """What `fit_with_growth` returns.

    Attributes:
        model: the final (grown) model, compiled.
        history: `{metric: [one value per epoch]}`, merged over the stages,
            plus per-epoch `forward_flops` (per example) and `params` of the
            model trained in that epoch.
        events: the `GrowthEvent`s, in order.
        decisions: the `GrowthCallback`'s `GrowthDecision` after each epoch.
    """

    def __init__(self, model, history, events, decisions):
        self.model = model
        self.history = history
        self.events = events
        self.decisions = decisions


def fit_with_growth(
    model,
    x=None,
    y=None,
    epochs=1,
    layers=None,
    schedule=None,
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
    configuration and current learning rate) and training goes on. The user
    `callbacks` see one training run: `on_train_begin` once, `on_train_end`
    at the end, so `ReduceLROnPlateau` and `EarlyStopping` keep their
    counters; they are pointed at each new model.

    Args:
        model: a compiled functional or Sequential model.
        x, y: training data, as for `fit`.
        epochs: total epochs. Defaults to `1`.
        layers: names of the layers that may grow, one per coupled group.
            Defaults to `None`: the first layer of every resizable group.
        schedule: a `GrowthSchedule` (e.g. `ProportionalGrowth`). Defaults
            to `None` (then `trigger` sets the amounts; with neither, the
            model trains without growing: a baseline with the same stages
            and data order).
        trigger: e.g. `EffectiveRankTrigger()`. Defaults to `None`.
        criterion: source units for "net2net"/"naive" (default
            `HighVariance`) or pairs for "pair_average" (default
            `LowCorrelation`); must be `None` for "zeros_out" and "random".
            Defaults to `None`.
        init: initialisation of new units, see `grow_units`. Defaults to
            "zeros_out".
        noise: relative noise for "net2net"/"naive". Defaults to `0.0`.
        incoming_norm: for "zeros_out" and "random" (ignored by the other
            inits): each new unit's incoming norm as a multiple of the mean
            norm of the layer's units, see `grow_units`; `None` keeps the
            Rebuilder's 0.5. Defaults to `1.0`: new units as large as an
            average unit.
        probe_data: `(x_probe, y_probe)` or `x_probe`: inputs for the trigger
            and criterion, and (with labels) the loss measured before and
            after each growth. Defaults to `None`: the first 512 examples of
            `x`, `y` when they are arrays.
        reset_optimizer: start a fresh optimizer at every growth (a baseline;
            its step counter, and so any learning-rate schedule, restarts).
            Defaults to `False`.
        new_slots: second-moment slots of the new weights when the
            optimizer is carried, "zeros" or "mean" (see `grow_units`).
            Defaults to "zeros".
        shuffle_seed: when `x`, `y` are arrays, shuffle them each epoch with
            `numpy.random.default_rng(shuffle_seed + epoch)` instead of
            `fit`'s own shuffling, so that runs with and without growth see
            the same data order. Defaults to `None`.
        seed: seed of the new units' random draws (plus the epoch).
            Defaults to `None`.
        callbacks: Keras callbacks. Defaults to `None`.
        verbose: passed to `fit`. Defaults to `0`.
        **fit_kwargs: more arguments for `fit` (`batch_size`,
            `validation_data`, ...).

    Returns:
        A `GrowthResult` (`.model`, `.history`, `.events`, `.decisions`).

    Raises:
        ValueError: an uncompiled model, a bad `init`/`criterion`
            combination, or arguments that `fit` handles itself (`epochs`,
            `initial_epoch`).

    Example:

    ```python
    result = fit_with_growth(
        model, x_train, y_train, epochs=10, layers=["hidden"],
        schedule=ProportionalGrowth(rate=0.2, start_epoch=3, max_width=256),
        batch_size=128, validation_data=(x_test, y_test))
    grown = result.model
    ```
    """
    if not model.compiled:
        raise ValueError(f"Compile model '{model.name}' before `fit_with_growth`.")
    for key in ("initial_epoch", "epochs_per_stage"):
        if key in fit_kwargs:
            raise ValueError(f"`fit_with_growth` sets `{key}` itself. Received: {key}={fit_kwargs[key]!r}")
    if init not in INITS:
        raise ValueError(
            f"Received an invalid value for `init`, expected one of {INITS}. Received: init={init!r}"
        )
    criterion = _default_criterion(init, criterion)
    if layers is None:
        from keras_darn.graph import unit_groups

        layers = [g.layers[0] for g in unit_groups(model, resizable_only=True)]
    probe_x, probe_y = probe_arrays(probe_data, x, y)
    growth = None
    if schedule is not None or trigger is not None:
        growth = GrowthCallback(
            layers,
            schedule=schedule,
            trigger=trigger,
            criterion=criterion,
            probe_data=probe_x if (trigger is not None or criterion is not None) else None,
        )
    staged = StagedCallbacks(callbacks or [])
    history, events = {}, []
    runner = EpochRunner(x, y, shuffle_seed, [c for c in (growth, staged) if c], verbose, fit_kwargs)
    for epoch in range(epochs):
        runner.run(model, epoch, history)
        if model.stop_training:
            break  # a user callback (e.g. EarlyStopping) ended training
        decision = growth.pending if growth is not None else None
        if decision is None or epoch == epochs - 1:
            continue
        model, event = _grow(
            model, decision, init, noise, incoming_norm, seed, reset_optimizer, probe_x, probe_y,
            new_slots,
        )
        events.append(event)
    staged.finish()
    return GrowthResult(model, history, events, growth.decisions if growth else [])


class EpochRunner:
    """Runs one-epoch `fit` stages with a data order that growth does not change."""

    def __init__(self, x, y, shuffle_seed, callbacks, verbose, fit_kwargs):
        self.x, self.y = x, y
        self.arrays = _is_array_like(x) and (y is None or _is_array_like(y))
        self.shuffle_seed = shuffle_seed
        self.callbacks = callbacks
        self.verbose = verbose
        self.fit_kwargs = dict(fit_kwargs)
        self.shuffle = self.fit_kwargs.pop("shuffle", True)

    def run(self, model, epoch, history):
        """Trains `model` for epoch `epoch`; appends to `history` in place."""
        x, y, shuffle = self.x, self.y, self.shuffle
        if self.arrays and self.shuffle_seed is not None:
            order = np.random.default_rng(self.shuffle_seed + epoch).permutation(_length(x))
            x = _take(x, order)
            y = None if y is None else _take(y, order)
            shuffle = False
        stage = model.fit(
            x,
            y,
            epochs=epoch + 1,
            initial_epoch=epoch,
            callbacks=self.callbacks,
            shuffle=shuffle,
            verbose=self.verbose,
            **self.fit_kwargs,
        )
        for key, values in stage.history.items():
            history.setdefault(key, []).extend(values)
        history.setdefault("forward_flops", []).append(count_flops(model))
        history.setdefault("params", []).append(count_params(model))


def _grow(
    model, decision, init, noise, incoming_norm, seed, reset_optimizer, probe_x, probe_y, new_slots="zeros"
):
    loss_before = probe_loss(model, probe_x, probe_y)
    draw_seed = None if seed is None else int(seed) + decision.epoch
    with model.distribute_strategy.scope():
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
        )
        if reset_optimizer:
            new_model.compile_from_config(model.get_compile_config())
    event = GrowthEvent(
        epoch=decision.epoch,
        plan=dict(decision.plan),
        widths_before=dict(decision.widths),
        widths_after={n: growth_triggers.layer_width(new_model, n) for n in decision.widths},
        params_before=count_params(model),
        params_after=count_params(new_model),
        loss_before=loss_before,
        loss_after=probe_loss(new_model, probe_x, probe_y),
    )
    return new_model, event


def _default_criterion(init, criterion):
    criterion = growth_triggers.get(criterion)
    if init in ("zeros_out", "random"):
        if criterion is not None:
            raise ValueError(
                f"A `criterion` chooses source units, which init={init!r} does not use; "
                f"use one of {SPLIT_INITS + PAIR_INITS}. Received: criterion={criterion!r}"
            )
        return None
    if criterion is None:
        criterion = growth_triggers.LowCorrelation() if init in PAIR_INITS else growth_triggers.HighVariance()
    expected = 2 if init in PAIR_INITS else 1
    if criterion.arity != expected:
        raise ValueError(
            f"init={init!r} needs a criterion giving {expected} unit(s) per new unit. "
            f"Received: criterion={criterion!r}"
        )
    return criterion


def probe_loss(model, x, y):
    """The compiled loss of `model` on `(x, y)` in inference mode, or `None`."""
    if x is None or y is None:
        return None
    # Eager, in chunks: `evaluate` would trace a new function for each model.
    total, count = 0.0, _length(x)
    for start in range(0, count, 512):
        index = np.arange(start, min(start + 512, count))
        x_chunk, y_chunk = _take(x, index), _take(y, index)
        y_pred = model(x_chunk, training=False)
        loss = model.compute_loss(x=x_chunk, y=y_chunk, y_pred=y_pred, training=False)
        total += float(keras.ops.convert_to_numpy(loss)) * len(index)
    return total / count


def _is_array_like(data):
    if isinstance(data, (list, tuple)):
        return bool(data) and all(_is_array_like(d) for d in data)
    if isinstance(data, dict):
        return bool(data) and all(_is_array_like(d) for d in data.values())
    return isinstance(data, np.ndarray)


def _length(data):
    if isinstance(data, (list, tuple)):
        return _length(data[0])
    if isinstance(data, dict):
        return _length(next(iter(data.values())))
    return len(data)


def _take(data, index):
    if isinstance(data, (list, tuple)):
        return type(data)(_take(d, index) for d in data)
    if isinstance(data, dict):
        return {k: _take(v, index) for k, v in data.items()}
    return data[index]


def probe_arrays(probe_data, x, y):
    """`(probe_x, probe_y)` from `probe_data`, else the first 512 examples."""
    if probe_data is not None:
        if isinstance(probe_data, tuple) and len(probe_data) == 2:
            return probe_data
        return probe_data, None
    if not (_is_array_like(x) and (y is None or _is_array_like(y))):
        return None, None
    index = np.arange(min(512, _length(x)))
    return _take(x, index), (None if y is None else _take(y, index))


class StagedCallbacks(keras.callbacks.Callback):
    """User callbacks seen as one training run across many `fit` stages."""

    def __init__(self, callbacks):
        super().__init__()
        self.callbacks = list(callbacks)
        self._started = False
        for callback in self.callbacks:
            if isinstance(callback, keras.callbacks.EarlyStopping) and callback.restore_best_weights:
                warnings.warn(
                    "EarlyStopping(restore_best_weights=True) cannot restore weights of a "
                    "model that has since grown; the best weights are restored only when "
                    "no growth happened after them.",
                    stacklevel=3,
                )

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def on_train_begin(self, logs=None):
        if not self._started:
            self._started = True
            self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._last_logs = logs

    def finish(self):
        """Ends the run: `on_train_end` for every user callback."""
        if self._started:
            self._call("on_train_end", getattr(self, "_last_logs", None))

    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


def _forward(hook):
    def method(self, *args, **kwargs):
        for callback in self.callbacks:
            getattr(callback, hook)(*args, **kwargs)

    method.__name__ = hook
    return method


for _hook in (
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
):
    setattr(StagedCallbacks, _hook, _forward(_hook))

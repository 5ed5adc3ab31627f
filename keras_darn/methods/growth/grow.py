"""How to grow: initialisations of new units, and carrying their optimizer state.

`grow_units` adds units with one of these initialisations:

| init           | new units' incoming weights      | outgoing weights                 | same outputs |
|----------------|----------------------------------|----------------------------------|--------------|
| `zeros_out`    | random, `incoming_norm` x mean   | 0                                | yes          |
| `net2net`      | copy of a source unit (+ noise)  | source's divided among copies    | if noise = 0 |
| `pair_average` | mean of two source units         | 0                                | yes          |
| `random`       | random, `incoming_norm` x mean   | random                           | no           |
| `naive`        | copy of a source (+ noise), noise also on the source | source's, not divided | no |
| `gradmax`      | a small first gradient step      | top singular vectors of the gradients | nearly |

"mean" is the mean norm of the existing units' incoming weights; the
Rebuilder draws new units at 0.5 x that, the drivers default to 1.0 x (under
Adam, larger new units learn faster; see `grow_units`).

`naive` is the DARN paper's own growth (copy a high-variance unit and add
noise to both copies), kept as a baseline: the copies' outgoing weights are
not divided, so the unit's contribution to the next layer doubles and the
learned function is disturbed at every growth. The paper reports that its
grown networks never exceeded their initial accuracy.

`gradmax` is GradMax (Evci et al., *GradMax: Growing Neural Networks using
Gradient Information*), see `keras_darn.methods.growth.gradmax`; it needs
`gradient_data=(x, y)`.

The fit-grow-continue driver `fit_with_growth` lives in
`keras_darn.methods.growth.training`, which imports this module (never the
other way round).
"""

import keras
import numpy as np

from keras_darn.graph.activations import layer_width
from keras_darn.methods.growth.gradmax import apply_gradmax
from keras_darn.methods.growth.sources import PAIR_INITS
from keras_darn.methods.growth.sources import SPLIT_INITS
from keras_darn.metrics import count_params
from keras_darn.rebuild import Rebuilder
from keras_darn.rebuild import compile_like
from keras_darn.validation import check_one_of

INITS = ("zeros_out", "net2net", "pair_average", "random", "naive", "gradmax")


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
    gradient_data=None,
):
    """Returns a new model with more units, initialised by `init`.

    Args:
        model: a functional or Sequential Keras model; it is not modified.
        plan: `{layer_name: number of new units}`, one layer per coupled
            group (coupled layers grow with it).
        init: one of `INITS` (see the module docstring): "zeros_out",
            "net2net", "pair_average", "random", "naive" (the DARN paper's
            baseline) or "gradmax". Defaults to "zeros_out".
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
            stay the same with "zeros_out" whatever the value. For
            "gradmax", the norm of the new units' first gradient step (`None`:
            0.01). Defaults to `None`.
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
        gradient_data: `(x, y)` on which "gradmax" takes the loss
            gradients (a few hundred examples); `model` must be compiled.
            Defaults to `None`.

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
    check_one_of(init, "init", INITS)
    check_one_of(new_slots, "new_slots", NEW_SLOTS)
    if init != "gradmax" and gradient_data is not None:
        raise ValueError(
            "`gradient_data` is only used by init='gradmax'. "
            f"Received: init={init!r}, gradient_data={type(gradient_data).__name__}"
        )
    if init == "gradmax":
        if sources:
            raise ValueError(
                "init='gradmax' chooses the new units' weights from gradients and takes no "
                f"`sources`. Received: sources={sources!r}"
            )
        rebuilder = Rebuilder(model, seed=seed).add(plan, init="zeros_out")
        new_model = rebuilder.build()
        apply_gradmax(model, new_model, plan, gradient_data, incoming_norm,
                      np.random.default_rng(seed))
        return _finish(rebuilder, model, compile, new_slots, new_model)
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
            "`incoming_norm` applies to the new incoming weights of 'zeros_out', 'random' "
            f"and 'gradmax'. Received: init={init!r}, incoming_norm={incoming_norm!r}"
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


def params_after_growth(model, plan):
    """The parameter count of `model` grown by `plan` (built, not trained)."""
    if not plan:
        return count_params(model)
    return count_params(Rebuilder(model).add(plan, init="zeros_out").build())


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
        old_width = layer_width(model, name)
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
        width = layer_width(model, name)
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
        width = layer_width(model, name)
        pairs = (sources or {}).get(name)
        if pairs is None:
            raise ValueError(
                f"init='pair_average' needs `sources` with one pair of unit indices per new "
                f"unit of layer '{name}' (e.g. from the 'correlation' criterion). "
                f"Received: sources={sources!r}"
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
        old_width = layer_width(model, name)
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

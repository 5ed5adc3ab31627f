"""When and where to grow: the `GrowthCallback` and the growth amounts.

The graph of a model cannot change inside `fit`, so growth happens between
fit stages: `GrowthCallback` decides at the end of every epoch which layers
grow by how many units (and, for the split initialisations, from which
source units); a driver such as
`keras_darn.methods.growth.training.fit_with_growth` then rebuilds the model
and continues training.

How much a layer grows comes from a `keras_darn.Schedule` (the front door's
schedules, e.g. `darn.schedules.Constant(0.2, start=2)`): after epoch `step`
(Keras' absolute, 0-based epoch index, the `epoch` that `fit` passes to
callbacks) where `schedule(step)` is a number `r`, a
layer of width `w` gains `max(1, ceil(r * w))` units, never going beyond its
`max_width`. `Constant(r, start=2)` grows after the third epoch (step 2).
"""

import math
import numbers

import keras

from keras_darn import criteria
from keras_darn.graph.activations import layer_width
from keras_darn.methods.growth.sources import choose_sources
from keras_darn.methods.growth.triggers import collect_activations
from keras_darn.resizing.method import ResumableCallback
from keras_darn.resizing.method import schedule_epochs
from keras_darn.resizing.schedules import Schedule


def check_max_width(max_width):
    """Validates `max_width`: `None`, an int >= 1 or `{layer_name: int >= 1}`.

    Returns:
        `max_width`, a dict copied.
    """
    values = max_width.values() if isinstance(max_width, dict) else [max_width]
    if max_width is not None:
        for value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(
                    "Received an invalid value for `max_width`, expected a positive integer, "
                    f"a dict of them by layer name, or None. Received: max_width={max_width!r}"
                )
    return dict(max_width) if isinstance(max_width, dict) else max_width


def width_limit(max_width, layer_name):
    """The largest width of `layer_name` (`None`: unlimited; 0: never grows)."""
    if isinstance(max_width, dict):
        return max_width.get(layer_name, 0)
    return max_width


def units_to_add(rate, width, limit=None):
    """`max(1, ceil(rate * width))` units, capped so the width stays <= `limit`.

    Example:

    >>> units_to_add(0.2, 100), units_to_add(0.01, 10), units_to_add(1.0, 200, 256)
    (20, 1, 56)
    """
    count = max(1, math.ceil(rate * width - 1e-9))
    if limit is not None:
        count = min(count, max(0, limit - width))
    return int(count)


class GrowthCallback(ResumableCallback):
    """Decides, at the end of every epoch, which layers grow and from where.

    The decision for a layer combines:
    - the `schedule` (how many units after this epoch, see the module
      docstring; no schedule means the `trigger` alone sets the amount with
      `units_to_add`) and `max_width`;
    - the `trigger` (optional, e.g. `EffectiveRankTrigger`): the layer grows
      only when it fires on the layer's activations;
    - the `criterion` (optional, any `keras_darn.criteria` criterion): the
      existing units the new ones are split from, highest score first (or,
      for `"correlation"`, the least correlated pairs they average).

    The decision is stored in `pending` (a `GrowthDecision`, or `None` when
    nothing grows) and in `decisions`; with `stop_training=True` a growing
    decision also stops `fit`, so that a loop around `fit` can rebuild the
    model (`keras_darn.methods.growth.grow.grow_units`) and continue with
    `initial_epoch`. `fit_with_growth` does all of that, and
    `darn.resize(model, "growth", ...)` runs `fit_with_growth`.

    Epochs are Keras' absolute epoch indices, so `fit(initial_epoch=3)`
    asks `schedule(3)` first; the callback warns when its schedule (without
    a trigger) acts at no epoch of a `fit`. `decisions` and `pending` are
    reset when training begins and saved with the model's weights, so a
    run resumed by `keras.callbacks.BackupAndRestore` (list this callback
    before it) has the decisions of the interrupted one.

    Args:
        layers: names of the Dense/Conv layers that may grow (one per
            coupled group).
        schedule: a `keras_darn.Schedule` whose value at a step is the
            relative width added after that epoch (0.2 = +20 %), e.g.
            `darn.schedules.Constant(0.2, start=2)`. Steps are Keras'
            absolute epoch indices (`epoch` in `on_epoch_end`). Defaults to
            `None`.
        max_width: the largest width, an `int` for every layer or a dict
            `{layer_name: int}` (layers missing from it do not grow), or
            `None` for no limit. Defaults to `None`.
        trigger: an `EffectiveRankTrigger` or any callable
            `trigger(activations) -> bool`. Defaults to `None`.
        criterion: a `keras_darn.criteria.Criterion` or its registered name
            (`"variance"`, `"l1"`, `"magnitude"`, ...; `"correlation"`
            chooses pairs). Defaults to `None` (no source units chosen).
        probe_data: inputs the trigger and criterion read (a few hundred
            examples). Needed when either is given. Defaults to `None`.
        probe_labels: targets of `probe_data`, for a criterion that needs
            labels (`"taylor1"`, ...). Defaults to `None`.
        stop_training: stop `fit` after an epoch that decided to grow.
            Defaults to `False`.
        verbose: 1 prints each decision. Defaults to `0`.
        warn_unscheduled: warn when the schedule acts at no epoch of a
            `fit` (a driver that runs one-epoch fits turns this off).
            Defaults to `True`.

    Raises:
        ValueError: bad arguments, neither `schedule` nor `trigger`, or a
            trigger/criterion without `probe_data`.

    Example:

    ```python
    callback = GrowthCallback(["dense"], darn.schedules.Constant(0.2, start=2),
                              max_width=256, stop_training=True)
    model.fit(x, y, epochs=10, callbacks=[callback])
    if callback.pending:
        model = grow_units(model, callback.pending.plan)
    ```
    """

    def __init__(
        self,
        layers,
        schedule=None,
        max_width=None,
        trigger=None,
        criterion=None,
        probe_data=None,
        probe_labels=None,
        stop_training=False,
        verbose=0,
        warn_unscheduled=True,
    ):
        super().__init__()
        if isinstance(layers, str) or not layers or not all(isinstance(n, str) for n in layers):
            raise ValueError(
                f"Expected `layers` to be a non-empty list of layer names. Received: layers={layers!r}"
            )
        if schedule is not None and not isinstance(schedule, Schedule):
            raise ValueError(
                "Received an invalid value for `schedule`, expected a keras_darn.Schedule "
                "(e.g. darn.schedules.Constant(0.2, start=2)) or None. "
                f"Received: schedule={schedule!r}"
            )
        max_width = check_max_width(max_width)
        if schedule is None and trigger is None:
            raise ValueError("Give a `schedule`, a `trigger`, or both. Received neither.")
        if trigger is not None and not callable(trigger):
            raise ValueError(f"Expected a callable `trigger`. Received: trigger={trigger!r}")
        if schedule is None and not hasattr(trigger, "units_to_add"):
            raise ValueError(
                "Without a `schedule`, the `trigger` sets the amount and needs a "
                f"`units_to_add(activations)` method. Received: trigger={trigger!r}"
            )
        criterion = None if criterion is None else criteria.get(criterion)
        if (trigger is not None or criterion is not None) and probe_data is None:
            raise ValueError(
                "A `trigger` or `criterion` reads activations: give `probe_data` "
                "(a few hundred inputs). Received: probe_data=None"
            )
        if len(set(layers)) != len(layers):
            raise ValueError(f"Repeated names in `layers`. Received: layers={layers!r}")
        self.layer_names = list(layers)
        self.schedule = schedule
        self.max_width = max_width
        self.trigger = trigger
        self.criterion = criterion
        self.probe_data = probe_data
        self.probe_labels = probe_labels
        self.stop_training = bool(stop_training)
        self.verbose = verbose
        self.warn_unscheduled = bool(warn_unscheduled)
        self.reset_state()

    def reset_state(self):
        self.decisions = []
        self.pending = None

    def get_state(self):
        return {"decisions": [d.to_dict() for d in self.decisions]}

    def set_state(self, state, epoch):
        self.decisions = [
            GrowthDecision.from_dict(d) for d in state.get("decisions", []) if d["step"] < epoch
        ]
        last = self.decisions[-1] if self.decisions else None
        self.pending = last if last is not None and last.plan and last.step == epoch - 1 else None

    def schedule_summary(self, first_epoch, last_epoch):
        if self.schedule is None or self.trigger is not None or not self.warn_unscheduled:
            return None
        return f"schedule={self.schedule!r}", schedule_epochs(self.schedule, first_epoch, last_epoch)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for name in self.layer_names:
            layer_width(self.model, name)

    def on_epoch_end(self, epoch, logs=None):
        decision = self.decide(self.model, epoch)
        self.pending = decision if decision.plan else None
        self.decisions.append(decision)
        if logs is not None:
            for name in self.layer_names:
                logs[f"growth/{name}/width"] = decision.widths[name]
        if self.pending is not None:
            if self.verbose:
                print(f"\nGrowthCallback: after step {decision.step} grow {decision.plan}")
            if self.stop_training:
                self.model.stop_training = True
        super().on_epoch_end(epoch, logs)

    def amount(self, step, width, layer_name):
        """Units the schedule adds to `layer_name` (now `width` wide) after `step`.

        Returns:
            An `int` >= 0, or `None` without a schedule.
        """
        if self.schedule is None:
            return None
        rate = self.schedule(step)
        if rate is None:
            return 0
        return units_to_add(rate, width, width_limit(self.max_width, layer_name))

    def decide(self, model, step):
        """The growth decision for `model` after epoch `step` (absolute, from 0).

        Returns:
            A `GrowthDecision`.
        """
        widths = {name: layer_width(model, name) for name in self.layer_names}
        activations = {}
        if self.trigger is not None:
            activations = collect_activations(model, self.probe_data, self.layer_names)
        plan, fired = {}, {}
        for name in self.layer_names:
            count = self.amount(step, widths[name], name)
            if count == 0:
                continue
            if self.trigger is not None:
                fired[name] = bool(self.trigger(activations[name]))
                if not fired[name]:
                    continue
                if count is None:
                    count = int(self.trigger.units_to_add(activations[name]))
            if count:
                plan[name] = int(count)
        sources = {}
        if self.criterion is not None and plan:
            sources = choose_sources(self.criterion, model, self.probe_data, self.probe_labels, plan)
        return GrowthDecision(step, widths, plan, sources, fired)


class GrowthDecision:
    """What `GrowthCallback` decided after one epoch.

    Attributes:
        step: the epoch (Keras' absolute index) after which it was decided.
        epoch: completed epochs when deciding (`step + 1`).
        widths: `{layer_name: width}` before growing.
        plan: `{layer_name: units to add}`; empty when nothing grows.
        sources: `{layer_name: [tuples of unit indices]}` from the criterion.
        fired: `{layer_name: bool}`, the trigger's answer per layer asked.
    """

    def __init__(self, step, widths, plan, sources, fired):
        self.step = step
        self.epoch = step + 1
        self.widths = widths
        self.plan = plan
        self.sources = sources
        self.fired = fired

    def to_dict(self):
        """The decision as JSON-serializable Python values."""
        return {
            "step": int(self.step),
            "widths": {k: int(v) for k, v in self.widths.items()},
            "plan": {k: int(v) for k, v in self.plan.items()},
            "sources": {k: [[int(i) for i in t] for t in v] for k, v in self.sources.items()},
            "fired": {k: bool(v) for k, v in self.fired.items()},
        }

    @classmethod
    def from_dict(cls, values):
        """The decision `to_dict` described."""
        sources = {k: [tuple(t) for t in v] for k, v in values["sources"].items()}
        return cls(values["step"], values["widths"], values["plan"], sources, values["fired"])

    def __eq__(self, other):
        return isinstance(other, GrowthDecision) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"GrowthDecision(step={self.step}, widths={self.widths}, plan={self.plan})"

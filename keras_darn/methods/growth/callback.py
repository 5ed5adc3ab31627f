"""When and where to grow: growth schedules and the `GrowthCallback`.

The graph of a model cannot change inside `fit`, so growth happens between
fit stages: `GrowthCallback` decides at the end of every epoch which layers
grow by how many units (and, for the split initialisations, from which
source units); a driver such as `keras_darn.methods.growth.grow.fit_with_growth`
then rebuilds the model and continues training.
"""

import abc
import math

import keras

from keras_darn.methods.growth import triggers as growth_triggers
from keras_darn.validation import check_positive_int


class GrowthSchedule(abc.ABC):
    """How many units a layer gains after a given epoch.

    Called as `schedule(epoch, width, layer_name)`, where `epoch` is the
    number of completed epochs (1 after the first epoch), and returns a
    non-negative number of units to add.
    """

    @abc.abstractmethod
    def __call__(self, epoch, width, layer_name=None):
        """Returns the number of units to add (an `int` >= 0)."""

    @abc.abstractmethod
    def get_config(self):
        """The constructor arguments."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_darn")
class ProportionalGrowth(GrowthSchedule):
    """Grows each layer by a fraction of its width at regular epochs.

    After `start_epoch` completed epochs, and then every `every` epochs, a
    layer of width `w` gains `max(1, ceil(rate * w))` units, never going
    beyond its `max_width`.

    Args:
        rate: relative growth per event, > 0 (0.2 = +20 %, 1.0 = doubling).
            Defaults to `0.2`.
        start_epoch: completed epochs before the first growth, >= 1.
            Defaults to `3`.
        every: epochs between growth events, >= 1. Defaults to `1`.
        max_width: the largest width, an `int` for every layer or a dict
            `{layer_name: int}` (layers missing from it do not grow), or
            `None` for no limit. Defaults to `None`.
        stop_epoch: no growth after this many completed epochs (`None`: no
            end). Defaults to `None`.

    Example:

    >>> schedule = ProportionalGrowth(rate=0.2, start_epoch=3, max_width=256)
    >>> schedule(3, 100)
    20
    >>> schedule(2, 100)
    0
    """

    def __init__(self, rate=0.2, start_epoch=3, every=1, max_width=None, stop_epoch=None):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
            raise ValueError(f"Expected a positive `rate`. Received: rate={rate!r}")
        check_positive_int(start_epoch, "start_epoch")
        check_positive_int(every, "every")
        if stop_epoch is not None:
            check_positive_int(stop_epoch, "stop_epoch")
        if isinstance(max_width, dict):
            for name, value in max_width.items():
                check_positive_int(value, f"max_width['{name}']")
        elif max_width is not None:
            check_positive_int(max_width, "max_width")
        self.rate = float(rate)
        self.start_epoch = int(start_epoch)
        self.every = int(every)
        self.max_width = dict(max_width) if isinstance(max_width, dict) else max_width
        self.stop_epoch = stop_epoch

    def limit(self, layer_name):
        """The largest width of `layer_name` (`None`: unlimited)."""
        if isinstance(self.max_width, dict):
            return self.max_width.get(layer_name, 0)
        return self.max_width

    def __call__(self, epoch, width, layer_name=None):
        if epoch < self.start_epoch or (epoch - self.start_epoch) % self.every:
            return 0
        if self.stop_epoch is not None and epoch > self.stop_epoch:
            return 0
        count = max(1, math.ceil(self.rate * width - 1e-9))
        limit = self.limit(layer_name)
        if limit is not None:
            count = min(count, max(0, limit - width))
        return int(count)

    def get_config(self):
        return {
            "rate": self.rate,
            "start_epoch": self.start_epoch,
            "every": self.every,
            "max_width": self.max_width,
            "stop_epoch": self.stop_epoch,
        }


SPLIT_INITS = ("net2net", "naive")
PAIR_INITS = ("pair_average",)


class GrowthCallback(keras.callbacks.Callback):
    """Decides, at the end of every epoch, which layers grow and from where.

    The decision for a layer combines:
    - the `schedule` (how many units after this epoch; no schedule means
      the `trigger` alone sets the amount with `units_to_add`);
    - the `trigger` (optional, e.g. `EffectiveRankTrigger`): the layer grows
      only when it fires on the layer's activations;
    - the `criterion` (optional, e.g. `HighVariance`): which existing units
      the new ones are split from (or, for pair criteria, averaged from).

    The decision is stored in `pending` (a `GrowthDecision`, or `None` when
    nothing grows) and in `decisions`; with `stop_training=True` a growing
    decision also stops `fit`, so that a loop around `fit` can rebuild the
    model (`keras_darn.methods.growth.grow.grow_units`) and continue with
    `initial_epoch`. `fit_with_growth` does all of that.

    Args:
        layers: names of the Dense/Conv layers that may grow (one per
            coupled group).
        schedule: a `GrowthSchedule`. Defaults to `None`.
        trigger: an `EffectiveRankTrigger` or any callable
            `trigger(activations) -> bool`. Defaults to `None`.
        criterion: a `GrowthCriterion` or one of "variance", "l1",
            "correlation". Defaults to `None` (no source units chosen).
        probe_data: inputs whose activations the trigger and criterion read
            (a few hundred examples). Needed when either is given.
            Defaults to `None`.
        stop_training: stop `fit` after an epoch that decided to grow.
            Defaults to `False`.
        verbose: 1 prints each decision. Defaults to `0`.

    Raises:
        ValueError: bad arguments, neither `schedule` nor `trigger`, or a
            trigger/criterion without `probe_data`.

    Example:

    ```python
    callback = GrowthCallback(["dense"], ProportionalGrowth(0.2, 3, max_width=256),
                              stop_training=True)
    model.fit(x, y, epochs=10, callbacks=[callback])
    if callback.pending:
        model = grow_units(model, callback.pending.plan)
    ```
    """

    def __init__(
        self,
        layers,
        schedule=None,
        trigger=None,
        criterion=None,
        probe_data=None,
        stop_training=False,
        verbose=0,
    ):
        super().__init__()
        if isinstance(layers, str) or not layers or not all(isinstance(n, str) for n in layers):
            raise ValueError(
                f"Expected `layers` to be a non-empty list of layer names. Received: layers={layers!r}"
            )
        if schedule is not None and not isinstance(schedule, GrowthSchedule):
            raise ValueError(
                f"Expected `schedule` to be a GrowthSchedule or None. Received: schedule={schedule!r}"
            )
        if schedule is None and trigger is None:
            raise ValueError("Give a `schedule`, a `trigger`, or both. Received neither.")
        if trigger is not None and not callable(trigger):
            raise ValueError(f"Expected a callable `trigger`. Received: trigger={trigger!r}")
        if schedule is None and not hasattr(trigger, "units_to_add"):
            raise ValueError(
                "Without a `schedule`, the `trigger` sets the amount and needs a "
                f"`units_to_add(activations)` method. Received: trigger={trigger!r}"
            )
        criterion = growth_triggers.get(criterion)
        if (trigger is not None or criterion is not None) and probe_data is None:
            raise ValueError(
                "A `trigger` or `criterion` reads activations: give `probe_data` "
                "(a few hundred inputs). Received: probe_data=None"
            )
        if len(set(layers)) != len(layers):
            raise ValueError(f"Repeated names in `layers`. Received: layers={layers!r}")
        self.layer_names = list(layers)
        self.schedule = schedule
        self.trigger = trigger
        self.criterion = criterion
        self.probe_data = probe_data
        self.stop_training = bool(stop_training)
        self.verbose = verbose
        self.decisions = []
        self.pending = None

    def on_train_begin(self, logs=None):
        self.pending = None
        for name in self.layer_names:
            growth_triggers.layer_width(self.model, name)

    def on_epoch_end(self, epoch, logs=None):
        decision = self.decide(self.model, epoch + 1)
        self.pending = decision if decision.plan else None
        self.decisions.append(decision)
        if logs is not None:
            for name in self.layer_names:
                logs[f"growth/{name}/width"] = decision.widths[name]
        if self.pending is not None:
            if self.verbose:
                print(f"\nGrowthCallback: after epoch {decision.epoch} grow {decision.plan}")
            if self.stop_training:
                self.model.stop_training = True

    def decide(self, model, epoch):
        """The growth decision for `model` after `epoch` completed epochs.

        Returns:
            A `GrowthDecision`.
        """
        widths = {name: growth_triggers.layer_width(model, name) for name in self.layer_names}
        activations = {}
        if self.trigger is not None or self.criterion is not None:
            activations = growth_triggers.collect_activations(
                model, self.probe_data, self.layer_names
            )
        plan, sources, fired = {}, {}, {}
        for name in self.layer_names:
            count = self.schedule(epoch, widths[name], name) if self.schedule else None
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
                if self.criterion is not None:
                    sources[name] = self.criterion(activations[name], int(count))
        return GrowthDecision(epoch, widths, plan, sources, fired)


class GrowthDecision:
    """What `GrowthCallback` decided after one epoch.

    Attributes:
        epoch: completed epochs when deciding.
        widths: `{layer_name: width}` before growing.
        plan: `{layer_name: units to add}`; empty when nothing grows.
        sources: `{layer_name: [tuples of unit indices]}` from the criterion.
        fired: `{layer_name: bool}`, the trigger's answer per layer asked.
    """

    def __init__(self, epoch, widths, plan, sources, fired):
        self.epoch = epoch
        self.widths = widths
        self.plan = plan
        self.sources = sources
        self.fired = fired

    def __repr__(self):
        return f"GrowthDecision(epoch={self.epoch}, widths={self.widths}, plan={self.plan})"

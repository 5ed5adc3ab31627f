"""Schedules: when a method acts, and by how much.

A schedule is a callable `schedule(step) -> amount or None`, where `step`
is, for a callback, Keras' absolute 0-based epoch index (the `epoch` that
`fit` passes to callbacks, so `fit(initial_epoch=3)` starts at step 3 and a
run resumed by `BackupAndRestore` goes on where it stopped), and for a
driver its step counted from 0 within one driver call; `None` means
"nothing happens at this step". What the amount
means is the method's: for scheduled pruning it is the fraction of the
target reached after that step (0 to 1), for Standout the pruning ratio,
for growth the relative width added, for DARN's Algorithm 1 the score
threshold of that step. Every schedule serializes with `get_config`, and
`Schedule.get` rebuilds one from its config.
"""

import abc
import math

import keras
import numpy as np

from keras_darn.validation import check_positive_int


def _check_non_negative_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a non-negative integer. "
            f"Received: {name}={value!r}"
        )


def _check_number(value, name, low, high, closed_low=True, closed_high=True):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value >= low if closed_low else value > low) and (
            value <= high if closed_high else value < high
        )
    if not ok:
        interval = f"{'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}"
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a number in {interval}. "
            f"Received: {name}={value!r}"
        )


class Schedule(abc.ABC):
    """Base class: `schedule(step) -> amount` (`None` where nothing happens).

    Subclasses implement `__call__` and `get_config`; `steps(n)` lists the
    steps below `n` at which the schedule acts.

    Example:

    ```python
    schedule = darn.schedules.Linear(start=1, end=4)
    [schedule(step) for step in range(6)]   # [None, 0.25, 0.5, 0.75, 1.0, None]
    ```
    """

    @abc.abstractmethod
    def __call__(self, step):
        """The amount at `step`, or `None` where the schedule does not act."""

    def steps(self, num_steps):
        """The steps in `[0, num_steps)` at which the schedule acts."""
        return [step for step in range(num_steps) if self(step) is not None]

    @abc.abstractmethod
    def get_config(self):
        """The constructor arguments."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    @staticmethod
    def get(identifier):
        """A schedule from a `Schedule`, or a `keras.saving` config dict."""
        if isinstance(identifier, Schedule):
            return identifier
        if isinstance(identifier, dict):
            schedule = keras.saving.deserialize_keras_object(identifier)
            if isinstance(schedule, Schedule):
                return schedule
        raise ValueError(
            "Expected a `keras_darn.Schedule` (e.g. darn.schedules.Linear(start=1, end=4)). "
            f"Received: schedule={identifier!r}"
        )


@keras.saving.register_keras_serializable(package="keras_darn")
class Linear(Schedule):
    """Equal steps towards the target, at steps `start, start + frequency, ... end`.

    At the k-th of n events the amount is `k / n`: the fraction of the
    target reached.

    Args:
        start: the first step that acts. Defaults to `0`.
        end: the last step that acts, `None` for `start` (one event).
            Defaults to `None`.
        frequency: steps between events. Defaults to `1`.

    Example:

    >>> [Linear(start=1, end=3)(s) for s in range(5)]
    [None, 0.3333333333333333, 0.6666666666666666, 1.0, None]
    """

    def __init__(self, start=0, end=None, frequency=1):
        _check_non_negative_int(start, "start")
        check_positive_int(frequency, "frequency")
        end = start if end is None else end
        if isinstance(end, bool) or not isinstance(end, int) or end < start:
            raise ValueError(
                "Received an invalid value for `end`, expected an integer >= "
                f"start={start}. Received: end={end!r}"
            )
        self.start = start
        self.end = end
        self.frequency = frequency
        self.events = list(range(start, end + 1, frequency))

    def progress(self, event, num_events):
        return event / num_events

    def __call__(self, step):
        if step not in self.events:
            return None
        return self.progress(self.events.index(step) + 1, len(self.events))

    def get_config(self):
        return {"start": self.start, "end": self.end, "frequency": self.frequency}


@keras.saving.register_keras_serializable(package="keras_darn")
class Polynomial(Linear):
    """Large steps first: `1 - (1 - k / n) ** power` at the k-th of n events.

    With `power=3` this is Zhu & Gupta's gradual pruning schedule
    (*To prune, or not to prune*).

    Args:
        start: the first step that acts. Defaults to `0`.
        end: the last step that acts (`None`: `start`). Defaults to `None`.
        frequency: steps between events. Defaults to `1`.
        power: the exponent, >= 1. Defaults to `3`.

    Example:

    >>> Polynomial(start=0, end=1)(0)
    0.875
    """

    def __init__(self, start=0, end=None, frequency=1, power=3):
        super().__init__(start, end, frequency)
        _check_number(power, "power", 1, math.inf)
        self.power = power

    def progress(self, event, num_events):
        return 1.0 - (1.0 - event / num_events) ** self.power

    def get_config(self):
        return {**super().get_config(), "power": self.power}


@keras.saving.register_keras_serializable(package="keras_darn")
class Geometric(Schedule):
    """`ratio <- ratio + rate * (1 - ratio)` every `every` steps (Standout's rule).

    After the k-th event the amount is `1 - (1 - rate) ** k`, the fraction
    of the original width removed (Dutta & Mitra, *A minimal gradient flow
    method for adaptive node pruning*, Algorithm 1, with `rate` their gamma
    and `every` their pruning period P). Events are at steps
    `every - 1, 2 * every - 1, ...` (the end of every `every`-th epoch).

    Args:
        rate: the growth of the ratio per event, in `(0, 1]`.
        every: steps between events (P). Defaults to `1`.

    Example:

    >>> [Geometric(0.5, every=2)(s) for s in range(4)]
    [None, 0.5, None, 0.75]
    """

    def __init__(self, rate, every=1):
        _check_number(rate, "rate", 0, 1, closed_low=False)
        check_positive_int(every, "every")
        self.rate = float(rate)
        self.every = every

    def __call__(self, step):
        if (step + 1) % self.every:
            return None
        return 1.0 - (1.0 - self.rate) ** ((step + 1) // self.every)

    def get_config(self):
        return {"rate": self.rate, "every": self.every}


@keras.saving.register_keras_serializable(package="keras_darn")
class Constant(Schedule):
    """The same amount at steps `start, start + every, ...`, up to `stop`.

    Args:
        value: the amount (growth: relative width added, 0.2 = +20 %).
        start: the first step that acts. Defaults to `0`.
        every: steps between events. Defaults to `1`.
        stop: the last step that may act (`None`: no end). Defaults to
            `None`.

    Example:

    >>> [Constant(0.2, start=2)(s) for s in range(4)]
    [None, None, 0.2, 0.2]
    """

    def __init__(self, value, start=0, every=1, stop=None):
        _check_number(value, "value", 0, math.inf, closed_low=False)
        _check_non_negative_int(start, "start")
        check_positive_int(every, "every")
        if stop is not None:
            _check_non_negative_int(stop, "stop")
        self.value = value
        self.start = start
        self.every = every
        self.stop = stop

    def __call__(self, step):
        if step < self.start or (self.stop is not None and step > self.stop):
            return None
        if (step - self.start) % self.every:
            return None
        return self.value

    def get_config(self):
        return {"value": self.value, "start": self.start, "every": self.every, "stop": self.stop}


@keras.saving.register_keras_serializable(package="keras_darn")
class LogSpaced(Schedule):
    """`num` values from `first` to `last`, evenly spaced on a log scale.

    Step i (from 0) gets the i-th value; steps past `num - 1` get `None`.
    DARN's Algorithm 1 walks its score thresholds this way. With
    `distance_to_one=True` the distances `1 - value` are log-spaced instead
    (`1 - geomspace(1 - first, 1 - last, num)`), as for correlation
    thresholds that fall from 0.98 towards 0.5.

    Args:
        first: the value of step 0 (> 0; < 1 with `distance_to_one`).
        last: the value of step `num - 1` (same range).
        num: the number of values, >= 1.
        distance_to_one: space `1 - value` instead of the value. Defaults
            to `False`.

    Example:

    >>> LogSpaced(0.01, 1.0, 3).values()
    [0.01, 0.1, 1.0]
    """

    def __init__(self, first, last, num, distance_to_one=False):
        high = 1 if distance_to_one else math.inf
        _check_number(first, "first", 0 if not distance_to_one else -math.inf, high,
                      closed_low=False, closed_high=False)
        _check_number(last, "last", 0 if not distance_to_one else -math.inf, high,
                      closed_low=False, closed_high=False)
        check_positive_int(num, "num")
        self.first = first
        self.last = last
        self.num = num
        self.distance_to_one = bool(distance_to_one)

    def values(self):
        """All `num` values, in order."""
        if self.distance_to_one:
            return (1.0 - np.geomspace(1.0 - self.first, 1.0 - self.last, self.num)).tolist()
        return np.geomspace(self.first, self.last, self.num).tolist()

    def __call__(self, step):
        if not 0 <= step < self.num:
            return None
        return self.values()[step]

    def get_config(self):
        return {
            "first": self.first,
            "last": self.last,
            "num": self.num,
            "distance_to_one": self.distance_to_one,
        }

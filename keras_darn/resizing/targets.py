"""`Target`: what a method aims for, and the layers it must leave alone."""

import difflib
import inspect
import math
import numbers
import warnings

import keras

from keras_darn.graph import unit_groups
from keras_darn.graph.nodes import leaf_layers
from keras_darn.validation import check_layer_names

AMOUNTS = ("fraction", "units", "params", "flops", "max_accuracy_drop")


def _check_size(value, name):
    """An int > 0 (an absolute count) or a float in (0, 1] (of the original)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        ok = False
    elif isinstance(value, numbers.Integral):
        ok = value > 0
    else:
        ok = 0 < value <= 1
    if not ok:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a positive integer (a count) "
            f"or a float in (0, 1] (a fraction of the original count). Received: {name}={value!r}"
        )
    return value


@keras.saving.register_keras_serializable(package="keras_darn")
class Target:
    """What a method aims for: an amount, and per-layer limits.

    Give at most the amounts a method supports (each method's docstring
    lists them; an unsupported one is refused with the list). A method that
    decides the amount on its own (NodeDrop removes what it proves dead)
    takes a `Target` with no amount, or `None`.

    Args:
        fraction: fraction of the units of every resized group to remove,
            in `[0, 1)`. Defaults to `None`.
        units: the width every resized group ends at: an `int`, or a dict
            `{layer_name: int}` (layers missing from it are left alone).
            For pruning the width kept, for growth the largest width.
            Defaults to `None`.
        params: the parameter count to end at: an `int`, or a float in
            `(0, 1]` for that fraction of the original count. Pruning ends
            at or below it; growth never goes above it. Defaults to `None`.
        flops: the same for FLOPs per example. Defaults to `None`.
        max_accuracy_drop: the largest accuracy loss accepted, as a
            fraction (`0.01` is one point), measured on the validation
            data. Defaults to `None`.
        min_units: units every group keeps: an `int`, or a dict
            `{layer_name: int}` over a default of 1. Defaults to `1`.
        exclude: names of layers left alone (their groups keep their
            width). Defaults to `()`.

    Raises:
        ValueError: naming the argument and the value received, for values
            out of range.

    Example:

    ```python
    target = darn.Target(fraction=0.5, min_units=4, exclude=["logits"])
    ```
    """

    def __init__(
        self,
        fraction=None,
        units=None,
        params=None,
        flops=None,
        max_accuracy_drop=None,
        min_units=1,
        exclude=(),
    ):
        if fraction is not None and (
            isinstance(fraction, bool)
            or not isinstance(fraction, numbers.Real)
            or not 0 <= fraction < 1
        ):
            raise ValueError(
                "Received an invalid value for `fraction`, expected a number in [0, 1). "
                f"Received: fraction={fraction!r}"
            )
        _check_widths(units, "units", allow_none=True)
        if max_accuracy_drop is not None and (
            isinstance(max_accuracy_drop, bool)
            or not isinstance(max_accuracy_drop, numbers.Real)
            or not 0 <= max_accuracy_drop <= 1
        ):
            raise ValueError(
                "Received an invalid value for `max_accuracy_drop`, expected a fraction in "
                f"[0, 1] (0.01 is one point). Received: max_accuracy_drop={max_accuracy_drop!r}"
            )
        _check_widths(min_units, "min_units", allow_none=False)
        check_layer_names(exclude, "exclude")
        self.fraction = None if fraction is None else float(fraction)
        self.units = units
        self.params = _check_size(params, "params")
        self.flops = _check_size(flops, "flops")
        self.max_accuracy_drop = None if max_accuracy_drop is None else float(max_accuracy_drop)
        self.min_units = min_units
        self.exclude = tuple(exclude)

    @classmethod
    def get(cls, identifier):
        """A `Target` from a `Target`, `None` (no amount) or a config dict."""
        if identifier is None:
            return cls()
        if isinstance(identifier, Target):
            return identifier
        if isinstance(identifier, dict):
            allowed = list(inspect.signature(cls).parameters)
            unknown = [key for key in identifier if key not in allowed]
            if unknown:
                close = difflib.get_close_matches(str(unknown[0]), allowed, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ValueError(
                    f"Unknown Target argument {unknown[0]!r}.{hint} Target takes {allowed}. "
                    f"Received: target={identifier!r}"
                )
            return cls(**identifier)
        raise ValueError(
            "Expected a `keras_darn.Target` (e.g. darn.Target(fraction=0.5)), a dict of its "
            f"arguments, or None. Received: target={identifier!r}"
        )

    @property
    def amounts(self):
        """The amounts given, `{name: value}`."""
        return {name: getattr(self, name) for name in AMOUNTS if getattr(self, name) is not None}

    def check_supported(self, method_name, supported, required=False):
        """Refuses amounts a method does not support.

        Args:
            method_name: the method's name, for the message.
            supported: the amount names it supports.
            required: whether it needs at least one amount.

        Raises:
            ValueError: naming the unsupported amounts and the supported ones.
        """
        unsupported = sorted(set(self.amounts) - set(supported))
        if unsupported:
            raise ValueError(
                f"Method '{method_name}' does not support the target amount(s) {unsupported}; "
                f"it supports {list(supported) or 'none (it decides the amount itself)'}. "
                f"Received: target={self!r}"
            )
        if required and not self.amounts:
            raise ValueError(
                f"Method '{method_name}' needs a target amount, one of {list(supported)}. "
                f"Received: target={self!r}"
            )

    def check_model(self, model):
        """Checks the layer names and limits against `model`, before anything trains.

        Raises:
            ValueError: for a name in `exclude`, or a key of a `units` or
                `min_units` dict, that is not a layer with units in `model`
                (the closest names are suggested).

        Warns:
            UserWarning: when `min_units` keeps every unit of a group, so
                that nothing of it can be pruned.
        """
        groups = unit_groups(model, resizable_only=True)
        names = {name for group in groups for name in group.layers}
        known = names | {layer.name for layer in leaf_layers(model)}
        given = [("exclude", list(self.exclude))]
        for argument in ("units", "min_units"):
            value = getattr(self, argument)
            if isinstance(value, dict):
                given.append((argument, list(value)))
        for argument, layer_names in given:
            for name in layer_names:
                if name in known:
                    continue
                close = difflib.get_close_matches(name, sorted(known), n=3)
                hint = f" Did you mean {close}?" if close else ""
                raise ValueError(
                    f"Received an invalid value for `{argument}`: model '{model.name}' has no "
                    f"layer named '{name}'.{hint} Layers with resizable units: "
                    f"{sorted(names)}. Received: {argument}={getattr(self, argument)!r}"
                )
        kept_whole = [f"'{g.layers[0]}' ({g.size} units)" for g in groups
                      if g.layers[0] not in self.exclude
                      and self.min_units_of(g.layers[0]) >= g.size]
        if kept_whole:
            warnings.warn(
                f"min_units={self.min_units!r} keeps every unit of {', '.join(kept_whole)}: "
                "nothing of these groups can be pruned.",
                stacklevel=3,
            )

    def min_units_of(self, name):
        """The minimum width of the group of layer `name`."""
        if isinstance(self.min_units, dict):
            return int(self.min_units.get(name, 1))
        return int(self.min_units)

    def width_of(self, name, width):
        """The width the group of layer `name` (now `width` wide) should end at.

        From `units` when given, else from `fraction`; `None` when the layer
        is excluded, missing from a `units` dict, or no such amount is set.
        """
        if name in self.exclude:
            return None
        if self.units is not None:
            if isinstance(self.units, dict):
                return self.units.get(name)
            return int(self.units)
        if self.fraction is not None:
            keep = width - math.ceil(self.fraction * width - 1e-9)
            return max(keep, min(self.min_units_of(name), width))
        return None

    def get_config(self):
        return {
            "fraction": self.fraction,
            "units": self.units,
            "params": self.params,
            "flops": self.flops,
            "max_accuracy_drop": self.max_accuracy_drop,
            "min_units": self.min_units,
            "exclude": list(self.exclude),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Target) and self.get_config() == other.get_config()

    def __repr__(self):
        given = {k: v for k, v in self.get_config().items() if v not in (None, [], 1)}
        return "Target(" + ", ".join(f"{k}={v!r}" for k, v in given.items()) + ")"


def _check_widths(value, name, allow_none):
    if value is None and allow_none:
        return
    values = value.values() if isinstance(value, dict) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(
                f"Received an invalid value for `{name}`, expected a positive integer or a "
                f"dict of them by layer name. Received: {name}={value!r}"
            )

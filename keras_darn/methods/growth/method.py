"""Growth and DARN's add-and-remove loop at the front door (`darn.resize`)."""

import numbers

from keras_darn.metrics import count_params
from keras_darn.methods.growth.grow import INITS
from keras_darn.methods.growth.grow import NEW_SLOTS
from keras_darn.methods.growth.sources import source_criterion
from keras_darn.methods.growth.training import default_layers
from keras_darn.methods.growth.training import fit_with_growth
from keras_darn.methods.growth.unified import darn_unified
from keras_darn.rebuild import Rebuilder
from keras_darn.rebuild import compile_like
from keras_darn.resizing.entry import register_method
from keras_darn.resizing.method import Method
from keras_darn.resizing.schedules import Constant
from keras_darn.validation import check_layer_names
from keras_darn.validation import check_one_of
from keras_darn.validation import check_positive_int


def _copy_compiled(model, method_name):
    """A copy of a compiled `model`, compiled alike, optimizer state carried."""
    if not model.compiled:
        raise ValueError(
            f"Method '{method_name}' trains the model with its own compile settings: compile "
            f"model '{model.name}' (optimizer and loss) before darn.resize."
        )
    rebuilder = Rebuilder(model)
    copy = rebuilder.build()
    compile_like(copy, model, rebuilder.variable_map)
    return copy


def _params_limit(params, model):
    """A `Target.params` as a count: an int, or a fraction of the model's."""
    if params is None:
        return None
    if isinstance(params, numbers.Integral):
        return int(params)
    return max(1, int(params * count_params(model)))


def _layers(option, model, target):
    layers = list(option) if option is not None else default_layers(model)
    return [name for name in layers if name not in target.exclude]


def _check_optional_positive_int(value, name):
    if value is not None:
        check_positive_int(value, name)


def _fit_options(batch_size, validation_data):
    options = {}
    if batch_size is not None:
        options["batch_size"] = batch_size
    if validation_data is not None:
        options["validation_data"] = validation_data
    return options


@register_method(
    ("growth", {}),
    ("zeros_out", {"init": "zeros_out"}),
    ("net2net", {"init": "net2net"}),
    ("gradmax", {"init": "gradmax"}),
)
class Growth(Method):
    """Grows layers between epochs while training (`fit_with_growth`).

    Trains `epochs` epochs on `(x, y)` with the model's compile settings,
    in one-epoch stages; after each epoch `step` (Keras' epoch index, from 0) where
    `schedule(step)` is a number `r`, every growing layer of width `w`
    gains `max(1, ceil(r * w))` units, with function-preserving new units
    by default, and training goes on with the optimizer state carried.
    The inits: `"zeros_out"` (zero outgoing weights), `"net2net"`
    (Net2WiderNet, Chen, Goodfellow & Shlens, *Net2Net: Accelerating
    Learning via Knowledge Transfer*), `"gradmax"` (Evci et al., *GradMax:
    Growing Neural Networks using Gradient Information*), and
    `"pair_average"`, `"random"`, `"naive"` (Gandhi & Bandaru's DARN
    split, a baseline). The method names `"zeros_out"`, `"net2net"` and
    `"gradmax"` fix `init`.

    Target amounts: `units` (the largest width: an int, or a dict by layer
    name whose missing layers do not grow) and `params` (growth never goes
    above it: a growth that would is skipped; a float is a fraction of the
    model's count). `exclude` layers do not grow. The model must be
    compiled; it is not modified. `schedule` defaults to
    `darn.schedules.Constant(0.2, start=2)` (+20 % after the third epoch
    and every epoch after).

    Args:
        init: the new units' initialisation, see `grow_units`. Defaults to
            `"zeros_out"`.
        noise: relative noise on copies for `"net2net"`/`"naive"`.
            Defaults to `0.0`.
        incoming_norm: new units' incoming norm for `"zeros_out"`/`"random"`,
            a multiple of the mean unit's. Defaults to `1.0`.
        trigger: e.g. `EffectiveRankTrigger()`: layers grow only when it
            fires. Defaults to `None`.
        criterion: the units the split inits copy, highest score first: a
            `keras_darn.criteria` criterion or its name (`"variance"`,
            `"l1"`, ...); `"correlation"` for `"pair_average"`. Defaults
            to `None` (the init's default).
        layers: names of the layers that may grow. Defaults to `None` (the
            first layer of every resizable group).
        reset_optimizer: a fresh optimizer at every growth. Defaults to
            `False`.
        new_slots: Adam's `v` of new weights, `"zeros"` or `"mean"`.
            Defaults to `"zeros"`.
        seed: seed of the new units' draws. Defaults to `None`.
        shuffle_seed: seeded per-epoch data order. Defaults to `None`.
        batch_size: `fit`'s batch size. Defaults to `None`.
        probe_data: `(x, y)` for the trigger, criterion and GradMax.
            Defaults to `None` (the first 512 training examples).

    Example:

    ```python
    result = darn.resize(model, "net2net", darn.Target(units=64), x=x, y=y, epochs=6,
                         schedule=darn.schedules.Constant(0.5, start=1))
    wider = result.model
    ```
    """

    resize_amounts = ("units", "params")

    def __init__(self, init="zeros_out", noise=0.0, incoming_norm=1.0, trigger=None,
                 criterion=None, layers=None, reset_optimizer=False, new_slots="zeros",
                 seed=None, shuffle_seed=None, batch_size=None, probe_data=None):
        check_one_of(init, "init", INITS)
        check_one_of(new_slots, "new_slots", NEW_SLOTS)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
            raise ValueError(
                "Received an invalid value for `noise`, expected a number >= 0. "
                f"Received: noise={noise!r}"
            )
        if incoming_norm is not None and (
            isinstance(incoming_norm, bool) or not isinstance(incoming_norm, (int, float))
            or incoming_norm <= 0
        ):
            raise ValueError(
                "Received an invalid value for `incoming_norm`, expected a positive number or "
                f"None. Received: incoming_norm={incoming_norm!r}"
            )
        if trigger is not None and not callable(trigger):
            raise ValueError(
                f"Received an invalid value for `trigger`, expected a callable. Received: "
                f"trigger={trigger!r}"
            )
        source_criterion(init, criterion)
        check_layer_names(layers, "layers", allow_none=True)
        _check_optional_positive_int(batch_size, "batch_size")
        self.init = init
        self.noise = noise
        self.incoming_norm = incoming_norm
        self.trigger = trigger
        self.criterion = criterion
        self.layers = None if layers is None else list(layers)
        self.reset_optimizer = bool(reset_optimizer)
        self.new_slots = new_slots
        self.seed = seed
        self.shuffle_seed = shuffle_seed
        self.batch_size = batch_size
        self.probe_data = probe_data

    def resize(self, model, target, x=None, y=None, validation_data=None, epochs=1,
               schedule=None, verbose=0):
        copy = _copy_compiled(model, self.name or "growth")
        if x is None:
            raise ValueError(f"Method '{self.name}' trains: give `x` (and `y`). Received: x=None")
        result = fit_with_growth(
            copy, x, y, epochs=epochs, layers=_layers(self.layers, copy, target),
            schedule=schedule if schedule is not None else Constant(0.2, start=2),
            max_width=target.units, max_params=_params_limit(target.params, model),
            trigger=self.trigger, criterion=self.criterion, init=self.init, noise=self.noise,
            incoming_norm=self.incoming_norm, probe_data=self.probe_data,
            reset_optimizer=self.reset_optimizer, new_slots=self.new_slots,
            shuffle_seed=self.shuffle_seed, seed=self.seed, verbose=verbose,
            **_fit_options(self.batch_size, validation_data),
        )
        result.method = self.name
        return result

    def get_config(self):
        return {
            "init": self.init, "noise": self.noise, "incoming_norm": self.incoming_norm,
            "trigger": self.trigger, "criterion": self.criterion, "layers": self.layers,
            "reset_optimizer": self.reset_optimizer, "new_slots": self.new_slots,
            "seed": self.seed, "shuffle_seed": self.shuffle_seed, "batch_size": self.batch_size,
            "probe_data": self.probe_data,
        }


@register_method("unified")
class Unified(Method):
    """DARN's add-and-remove loop between fit stages (`darn_unified`).

    The loop Gandhi & Bandaru's *Dynamically Adding and Removing Neurons
    from Neural Networks* aims at: train for `epochs_per_round` epochs, then
    remove dead and redundant units (and, above the parameter target, the
    lowest-variance ones), then grow the layers that lost none and whose
    trigger fires (by default the effective rank of their activations nears
    their width) with function-preserving new units. It runs
    `epochs // epochs_per_round` rounds; the last one only trains.

    Target amounts: `params` (the parameter budget after every round; a
    float is a fraction of the model's count) and `units` (the largest
    width, an int or a dict by layer name). `min_units` (an int) and
    `exclude` apply. A `schedule` gives the growth rate of each round (its
    step is the round, from 0; `None` there: no growth that round); without
    one, `growth_rate` is used every round. The model must be compiled; it
    is not modified.

    Args:
        epochs_per_round: epochs per round. Defaults to `1`.
        growth_rate: relative growth of a firing layer per round, without a
            schedule. Defaults to `0.25`.
        trigger: `trigger(activations) -> bool`. Defaults to `None`
            (`EffectiveRankTrigger()`).
        init: new units' initialisation, see `grow_units`. Defaults to
            `"zeros_out"`.
        criterion: source units for the split inits. Defaults to `None`.
        noise: relative noise for `"net2net"`/`"naive"`. Defaults to `0.0`.
        incoming_norm: new units' incoming norm for `"zeros_out"`/`"random"`.
            Defaults to `1.0`.
        dead_tolerance: mean |activation| at or below which a unit is dead.
            Defaults to `1e-6`.
        redundancy: |correlation| at or above which a unit of a pair is
            redundant, `None` to keep them. Defaults to `0.98`.
        layers: the layers that change. Defaults to `None` (the first layer
            of every resizable group).
        seed: seed of the new units' draws. Defaults to `None`.
        shuffle_seed: seeded per-epoch data order. Defaults to `None`.
        batch_size: `fit`'s batch size. Defaults to `None`.
        probe_data: `(x, y)` or `x` for the statistics. Defaults to `None`
            (the first 512 training examples).

    Example:

    ```python
    result = darn.resize(model, "unified", darn.Target(params=50_000), x=x, y=y,
                         epochs=6, batch_size=128)
    ```
    """

    resize_amounts = ("params", "units")

    def __init__(self, epochs_per_round=1, growth_rate=0.25, trigger=None, init="zeros_out",
                 criterion=None, noise=0.0, incoming_norm=1.0, dead_tolerance=1e-6,
                 redundancy=0.98, layers=None, seed=None, shuffle_seed=None, batch_size=None,
                 probe_data=None):
        check_positive_int(epochs_per_round, "epochs_per_round")
        if isinstance(growth_rate, bool) or not isinstance(growth_rate, (int, float)) or (
            growth_rate <= 0
        ):
            raise ValueError(
                "Received an invalid value for `growth_rate`, expected a positive number. "
                f"Received: growth_rate={growth_rate!r}"
            )
        check_one_of(init, "init", INITS)
        source_criterion(init, criterion)
        if redundancy is not None and (
            isinstance(redundancy, bool) or not isinstance(redundancy, (int, float))
            or not 0 < redundancy <= 1
        ):
            raise ValueError(
                "Received an invalid value for `redundancy`, expected a number in (0, 1] or "
                f"None. Received: redundancy={redundancy!r}"
            )
        if isinstance(dead_tolerance, bool) or not isinstance(dead_tolerance, (int, float)) or (
            dead_tolerance < 0
        ):
            raise ValueError(
                "Received an invalid value for `dead_tolerance`, expected a number >= 0. "
                f"Received: dead_tolerance={dead_tolerance!r}"
            )
        _check_optional_positive_int(batch_size, "batch_size")
        self.epochs_per_round = epochs_per_round
        self.growth_rate = float(growth_rate)
        self.trigger = trigger
        self.init = init
        self.criterion = criterion
        self.noise = noise
        self.incoming_norm = incoming_norm
        self.dead_tolerance = dead_tolerance
        self.redundancy = redundancy
        self.layers = None if layers is None else list(layers)
        self.seed = seed
        self.shuffle_seed = shuffle_seed
        self.batch_size = batch_size
        self.probe_data = probe_data

    def resize(self, model, target, x=None, y=None, validation_data=None, epochs=1,
               schedule=None, verbose=0):
        copy = _copy_compiled(model, self.name or "unified")
        if x is None:
            raise ValueError(f"Method '{self.name}' trains: give `x` (and `y`). Received: x=None")
        if isinstance(target.min_units, dict):
            raise ValueError(
                f"Method '{self.name}' takes one `min_units` for every layer (an int). "
                f"Received: min_units={target.min_units!r}"
            )
        result = darn_unified(
            copy, x, y, rounds=max(1, epochs // self.epochs_per_round),
            epochs_per_round=self.epochs_per_round, layers=_layers(self.layers, copy, target),
            param_budget=_params_limit(target.params, model),
            growth_rate=schedule if schedule is not None else self.growth_rate,
            max_width=target.units, trigger=self.trigger, init=self.init,
            criterion=self.criterion, noise=self.noise, incoming_norm=self.incoming_norm,
            dead_tolerance=self.dead_tolerance, redundancy=self.redundancy,
            min_units=int(target.min_units), probe_data=self.probe_data,
            shuffle_seed=self.shuffle_seed, seed=self.seed, verbose=verbose,
            **_fit_options(self.batch_size, validation_data),
        )
        result.method = self.name
        return result

    def get_config(self):
        return {
            "epochs_per_round": self.epochs_per_round, "growth_rate": self.growth_rate,
            "trigger": self.trigger, "init": self.init, "criterion": self.criterion,
            "noise": self.noise, "incoming_norm": self.incoming_norm,
            "dead_tolerance": self.dead_tolerance, "redundancy": self.redundancy,
            "layers": self.layers, "seed": self.seed, "shuffle_seed": self.shuffle_seed,
            "batch_size": self.batch_size, "probe_data": self.probe_data,
        }

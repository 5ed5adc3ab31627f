"""The `Criterion` base class and the registry of criteria by name.

A criterion is a callable that returns one importance score per unit of each
resizable group of a model, the way Torch-Pruning's importance classes return
one score per channel of a group. Higher scores mean more important: pruning
removes the units with the lowest scores first. Variants of a criterion
differ only in constructor arguments, and every criterion round-trips through
`get_config` / `from_config` and `keras_darn.criteria.get`.

A criterion scores the groups of a `ProbedModel` (`keras_darn.criteria.probes`)
or of any unit state with the same `groups`, `live` and `member_layer`, such
as the pruning method's `PruningState`; the groups are chosen by
`keras_darn.graph.select_groups` and their live units read from the masks by
`keras_darn.rebuild.unit_masks.live_units`.
"""

import abc

import keras
import numpy as np

from keras_darn.criteria.probes import ProbedModel
from keras_darn.validation import check_positive_int

_REGISTRY = {}


def register_criterion(*names):
    """Class decorator: makes a criterion known to `get` under `names`."""

    def decorate(cls):
        for name in names:
            _REGISTRY[name] = cls
        return cls

    return decorate


def criterion_names():
    """The registered criterion names, sorted."""
    return sorted(_REGISTRY)


class Criterion(abc.ABC):
    """Base class of unit importance criteria.

    Subclasses implement `score(probed, x, y, strategy)` and set
    `needs_data` / `needs_labels`, and `reads_weights_only = True` when they
    score every group from the weights alone, groups whose outputs cannot
    be observed included (attention heads, layers of nested models).

    Args:
        batch_size: examples per batch when the criterion runs over data.
            Defaults to `256`.

    Example:

    ```python
    criterion = darn.criteria.ActivationVariance()
    scores = criterion(model, x_val)     # {"dense": array([...]), ...}
    ```
    """

    name = "criterion"
    needs_data = True
    needs_labels = False
    reads_weights_only = False

    def __init__(self, batch_size=256):
        check_positive_int(batch_size, "batch_size")
        self.batch_size = int(batch_size)

    def __call__(self, model, x=None, y=None, layers=None, strategy=None):
        """Scores every live unit of the probed groups.

        Args:
            model: a `keras.Model`, or a `ProbedModel` (reused across calls;
                its removed and masked units are not scored); criteria that
                read weights only (`reads_weights_only`) also take any unit
                state with `model`, `groups`, `live` and `member_layer` (the
                pruning method's `PruningState`).
            x: model inputs to compute the scores on. Required when
                `needs_data`.
            y: targets for `x`. Required when `needs_labels`.
            layers: names of layers whose groups are scored (only when
                `model` is a `keras.Model`). Defaults to `None` (all).
            strategy: a `tf.distribute.Strategy` whose replicas share the
                work; statistics are summed across replicas. TensorFlow
                only: on other backends it must be `None`. Defaults to
                `None` (the current strategy).

        Returns:
            `{group key: float64 array}` with one score per unit of the
            group, in group order (for a group of one layer, the layer's own
            unit order); `NaN` for units that are removed or masked off.

        Raises:
            ValueError: when data the criterion needs is missing, or for a
                `strategy` on a backend other than TensorFlow.
        """
        # A keras.Model gets a ProbedModel; a ProbedModel, or for criteria that
        # read weights only any unit state (`.model`, `.groups`, `.live`,
        # `member_layer`), is scored as it is.
        probed = ProbedModel(model, layers=layers) if isinstance(model, keras.Model) else model
        if self.needs_data and x is None:
            raise ValueError(
                f"Criterion '{self.name}' computes its scores on data: pass `x`. "
                "Received: x=None"
            )
        if self.needs_labels and y is None:
            raise ValueError(
                f"Criterion '{self.name}' needs targets to compute the loss: pass `y`. "
                "Received: y=None"
            )
        scores = self.score(probed, x, y, strategy)
        return {
            key: np.where(probed.live[key], np.asarray(value, dtype=np.float64), np.nan)
            for key, value in scores.items()
        }

    @abc.abstractmethod
    def score(self, probed, x, y, strategy):
        """Returns `{key: scores}` for the groups of `probed` (subclasses)."""

    def get_config(self):
        return {"batch_size": self.batch_size}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def get(identifier):
    """Returns a criterion from a name, a config dict or a criterion.

    Args:
        identifier: a `Criterion` (returned as is), a registered name
            (`"brute_force"`, `"taylor1"`, `"taylor2"`, `"variance"`, `"l1"`,
            `"correlation"`, `"weight_l1"`, `"random"`), or a dict
            `{"class_name": name, "config": {...}}`.

    Returns:
        A `Criterion`.

    Raises:
        ValueError: for an unknown identifier.

    Example:

    ```python
    criterion = darn.criteria.get("taylor2")
    ```
    """
    if isinstance(identifier, Criterion):
        return identifier
    if isinstance(identifier, dict):
        cls = _REGISTRY.get(identifier.get("class_name"))
        if cls is not None:
            return cls.from_config(identifier.get("config", {}))
    elif isinstance(identifier, str) and identifier in _REGISTRY:
        return _REGISTRY[identifier]()
    raise ValueError(
        f"Unknown criterion. Known names: {sorted(_REGISTRY)}. Received: {identifier!r}"
    )


def serialize(criterion):
    """`{"class_name", "config"}` of a criterion, for `get`."""
    return {"class_name": type(criterion).__name__, "config": criterion.get_config()}


def group_mean(probed, per_gate):
    """Averages per-gate values into group order.

    Args:
        probed: the `ProbedModel`.
        per_gate: `{gate name: array over the member layer's own units}`;
            a gate is named after its member layer (`"dense"`, then
            `"dense#1"`... when the layer's output branches).

    Returns:
        `{key: array in group order}`, the mean over the group's gates.
    """
    result = {}
    for group in probed.groups:
        rows = [
            per_gate[gate.name][group.indices(gate.layer.name)]
            for gate in probed.gates_of(group.key)
        ]
        result[group.key] = np.mean(rows, axis=0)
    return result

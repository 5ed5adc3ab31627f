"""ProbedModel: a model's forward pass with a gain on every prunable unit.

Data-driven criteria need two things from a model: the output of every unit
as the next layer sees it, and the model's outputs when some units are
switched off (or scaled). `ProbedModel` re-runs the model's own layers (the
weights are shared, nothing is copied) with a multiplicative gain inserted
where each resizable unit leaves its producer's chain of channel-preserving
layers (BatchNormalization, activations, dropout, pooling): for
`Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D -> Conv2D` the gain
sits after the pooling, on the input of the next convolution. Zeroing a unit
there is exactly what removing it with `keras_darn.remove_units` does to the
rest of the network, so a criterion's "unit switched off" is the pruned
model.

The gains can differ per example, and a batch can be replicated at a gain
with a different unit zeroed in every replica: everything upstream of the
unit is computed once, everything downstream on all replicas in one pass.
This is what makes brute-force ranking cheap (`BruteForce`).
"""

import keras
import numpy as np
from keras import ops

from keras_darn import backend
from keras_darn.criteria.gates import apply_gate
from keras_darn.criteria.gates import make_gates
from keras_darn.criteria.gates import tile
from keras_darn.criteria.per_example import per_example_correct
from keras_darn.criteria.per_example import per_example_loss
from keras_darn.graph.groups import find_group
from keras_darn.graph.groups import select_groups
from keras_darn.graph.nodes import functional_of
from keras_darn.graph.nodes import nodes_in_order
from keras_darn.rebuild.operations import remove_units
from keras_darn.rebuild.unit_masks import live_units


class ProbedModel:
    """Runs a model with a gain on each unit of its resizable groups.

    Args:
        model: a built functional or Sequential `keras.Model` with one
            output. It is not modified; its layers (and weights) are shared.
        layers: names of layers whose groups are probed; a name selects the
            resizable group it belongs to. Defaults to `None` (every
            resizable group whose layers are in the top-level graph).
        loss: Keras loss identifier used by loss-based criteria. Defaults to
            `None` (the model's compiled loss, when there is one).
        parts: also take the groups outside the top-level graph: units
            inside layers (attention heads, a `Bidirectional` layer's
            backward direction) and layers of nested models, which only
            criteria that read weights can score (their outputs cannot be
            gated). Defaults to `False`.

    Attributes:
        groups: list of `UnitGroup`, in trace order.
        gains: `{key: float32 array}` of the units' current gains: 1 for
            units in place, 0 for units switched off by `remove`.
        live: `{key: bool array}` of the units that may still be scored and
            removed (not removed, not masked off).

    Raises:
        ValueError: for a subclassed model, a model with several outputs, an
            unknown or non-resizable layer name, or a probed layer inside a
            nested model or called more than once.

    Example:

    ```python
    probed = darn.criteria.ProbedModel(model)
    probed.remove("dense", [3, 7])          # switch two units off
    loss, accuracy = probed.evaluate(x_val, y_val)
    smaller = probed.pruned_model()         # the same network, rebuilt
    ```
    """

    def __init__(self, model, layers=None, loss=None, parts=False):
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"Expected a keras.Model. Received: model of type {type(model).__name__}"
            )
        self.model = model
        self._function = functional_of(model)
        # Only the forward pass needs one output: a weights-only probe
        # (`parts=True`) takes any model.
        if not parts and len(self._function.outputs) != 1:
            raise ValueError(
                "Criteria that read outputs support models with one output. Received: model "
                f"'{model.name}' with {len(self._function.outputs)} outputs"
            )
        self._loss = loss if loss is not None else getattr(model, "loss", None)
        self._loss_fn = None
        self._order = nodes_in_order(self._function)
        self.groups, self._inner = select_groups(model, self._order, layers, parts)
        # Without `parts`, a named group outside the top level is refused here.
        self._gates = make_gates(self._order, self._function,
                                 [g for g in self.groups if g.observable or not parts])
        self._gate_edges = {}
        for member in self._gates.values():
            for gate in member:
                for consumer in gate.consumers:
                    self._gate_edges[(gate.tensor_id, consumer)] = gate
        self.gains = {g.key: np.ones(g.size, dtype="float32") for g in self.groups}
        self.live = {g.key: np.ones(g.size, dtype=bool) for g in self.groups}
        self._compiled = {}
        self.refresh_from_masks()

    def gates_of(self, key):
        """The gates of a group's member layers (one or more per layer)."""
        group = self.group(key)
        return [gate for name in group.layers for gate in self._gates[name]]

    def member_layer(self, name):
        """The member layer object called `name` (a `UnitPart` for a layer's part)."""
        if name in self._inner:
            return self._inner[name]
        if name in self._gates:
            return self._gates[name][0].layer
        # A top-level member of a group that also has members inside a layer.
        return next(node.operation for node in self._order if node.operation.name == name)

    # ---- State ------------------------------------------------------------
    @property
    def keys(self):
        """Keys of the probed groups, in trace order."""
        return [g.key for g in self.groups]

    def group(self, key):
        """The `UnitGroup` with key (or member layer name) `key`."""
        return find_group(self.groups, key)

    @property
    def loss_fn(self):
        """The per-example loss function used by loss-based criteria."""
        if self._loss_fn is None:
            self._loss_fn = per_example_loss(self._loss)
        return self._loss_fn

    def refresh_from_masks(self):
        """Marks masked units as not live (`rebuild.unit_masks.live_units`).

        They keep gain 1: the mask already decides what they output.
        """
        live = live_units(self.model, self.groups, self.member_layer)
        for group in self.groups:
            self.live[group.key] = live[group.key] & (self.gains[group.key] != 0)

    def remove(self, key, units):
        """Switches group units off (gain 0) so that they count as removed.

        Args:
            key: group key or member layer name.
            units: unit indices in group order.
        """
        group = self.group(key)
        units = np.atleast_1d(np.asarray(units, dtype=np.int64))
        if units.size and (units.min() < 0 or units.max() >= group.size):
            raise ValueError(
                f"Unit indices out of range for group '{group.key}' with {group.size} "
                f"units. Received: {units.tolist()}"
            )
        self.gains[group.key][units] = 0.0
        self.live[group.key][units] = False

    def removed(self, key):
        """Group-order indices of the units switched off with `remove`."""
        return np.flatnonzero(self.gains[self.group(key).key] == 0)

    def removal_plan(self):
        """`{layer_name: [indices]}` of the removed units, for `remove_units`."""
        plan = {}
        for group in self.groups:
            units = np.flatnonzero(self.gains[group.key] == 0)
            if units.size:
                plan[group.key] = group.layer_indices(units).tolist()
        return plan

    def pruned_model(self, compile=True):
        """The model with the removed units taken out by the Rebuilder.

        Returns `model` itself when nothing was removed.
        """
        plan = self.removal_plan()
        if not plan:
            return self.model
        return remove_units(self.model, plan, compile=compile)

    def gain_tensors(self, gains=None):
        """The gains as a dict of float32 tensors (defaults to `self.gains`)."""
        gains = self.gains if gains is None else gains
        return {k: ops.convert_to_tensor(v, dtype="float32") for k, v in gains.items()}

    # ---- The forward pass -------------------------------------------------
    def forward(self, inputs, gains, replicate=None, collect=False):
        """Runs the model with unit gains (`keras.ops`; usable in a `tf.function`).

        Args:
            inputs: a tensor, or a list with one tensor per model input.
            gains: `{key: tensor}` with shape `(units,)` (the same for every
                example) or `(batch, units)` (one row per example).
            replicate: optional `(key, variants)` with `variants` of shape
                `(replicas, units)`: the batch is run once per row of
                `variants`, whose gains replace group `key`'s. Layers upstream
                of the group run once. Output rows are replica-major:
                `replica * batch + example`.
            collect: also return `{layer_name: gated output}` of every probed
                member layer.

        Returns:
            The model output, and the collected outputs when `collect`.
        """
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        values = {id(t): v for t, v in zip(self._function.inputs, inputs)}
        replicated = set()
        key = variants = None
        if replicate is not None:
            key, variants = replicate
            key = self.group(key).key
            variants = ops.convert_to_tensor(variants, dtype="float32")
        gated = {}  # gate name -> (value, replicated)
        collected = {}
        for node in self._order:
            local, flags = {}, {}
            for tensor in node.input_tensors:
                i = id(tensor)
                gate = self._gate_edges.get((i, id(node)))
                if gate is None:
                    local[i], flags[i] = values[i], i in replicated
                    continue
                if gate.name not in gated:
                    gated[gate.name] = self._gated_value(
                        gate, values[i], i in replicated, gains, key, variants
                    )
                    collected[gate.name] = gated[gate.name][0]
                local[i], flags[i] = gated[gate.name]
            is_replicated = any(flags.values())
            if is_replicated:
                for i, flag in flags.items():
                    if not flag:
                        local[i] = tile(local[i], ops.shape(variants)[0])
            args, kwargs = node.arguments.fill_in(local)
            operation = node.operation
            if isinstance(operation, keras.layers.Layer):
                kwargs["training"] = False
            outputs = keras.tree.flatten(operation(*args, **kwargs))
            for tensor, value in zip(node.outputs, outputs):
                values[id(tensor)] = value
                if is_replicated:
                    replicated.add(id(tensor))
        output = values[id(self._function.outputs[0])]
        if key is not None and id(self._function.outputs[0]) not in replicated:
            output = tile(output, ops.shape(variants)[0])
        return (output, collected) if collect else output

    def _gated_value(self, gate, value, is_replicated, gains, key, variants):
        hit = key is not None and any(k == key for k, _ in gate.parts)
        rows = None
        if hit:
            replicas = ops.shape(variants)[0]
            if is_replicated:
                batch = ops.shape(value)[0] // replicas
            else:
                batch = ops.shape(value)[0]
                value = tile(value, replicas)
                is_replicated = True
            rows = ops.repeat(variants, batch, axis=0)
        return apply_gate(gate, value, gains, key, rows), is_replicated

    # ---- Running over data ------------------------------------------------
    def accumulate(self, batch_fn, x, y=None, batch_size=256, strategy=None, args=()):
        """Sums `batch_fn(x_batch, y_batch, *args)` over batches and replicas.

        See `keras_darn.backend.accumulate`; compiled functions are cached
        on this `ProbedModel`.
        """
        return backend.accumulate(self._compiled, batch_fn, x, y, batch_size, strategy, args)

    def _evaluate_batch(self, x, y, gains):
        y_pred = self.forward(x, gains)
        return {
            "loss": ops.sum(self.loss_fn(y, y_pred)),
            "correct": ops.sum(per_example_correct(y, y_pred)),
            "count": ops.cast(ops.shape(y_pred)[0], "float32"),
        }

    def evaluate(self, x, y, batch_size=256, gains=None, strategy=None):
        """Mean loss and accuracy with the current (or given) gains.

        Args:
            x: inputs (array, list of arrays, or batches of `(x, y)` from
                `keras_darn.backend.make_batches` or a batched
                `tf.data.Dataset`, then `y` is ignored).
            y: targets.
            batch_size: examples per batch. Defaults to `256`.
            gains: `{key: array}` replacing `self.gains`. Defaults to `None`.
            strategy: see `accumulate`. Defaults to `None`.

        Returns:
            `(loss, accuracy)` as floats.
        """
        sums = self.accumulate(
            self._evaluate_batch, x, y, batch_size, strategy, (self.gain_tensors(gains),)
        )
        return float(sums["loss"] / sums["count"]), float(sums["correct"] / sums["count"])

    def _variant_fn(self, key):
        cache_key = ("variants", key)
        if cache_key not in self._compiled:

            def batch_fn(x, y, gains, variants):
                replicas = ops.shape(variants)[0]
                y_pred = self.forward(x, gains, replicate=(key, variants))
                y_true = tile(ops.convert_to_tensor(y), replicas)
                losses = ops.reshape(self.loss_fn(y_true, y_pred), (replicas, -1))
                correct = ops.reshape(per_example_correct(y_true, y_pred), (replicas, -1))
                return {
                    "loss": ops.sum(losses, axis=1),
                    "correct": ops.sum(correct, axis=1),
                    "count": ops.cast(ops.shape(losses)[1], "float32"),
                }

            self._compiled[cache_key] = batch_fn
        return self._compiled[cache_key]

    def evaluate_variants(self, key, variants, x, y, max_rows=16384, strategy=None):
        """Mean loss and accuracy for many gain settings of one group at once.

        Each row of `variants` replaces the gains of group `key` (the other
        groups keep `self.gains`). The data are replicated once per row at
        the group's gates, so layers upstream of the group run once and all
        variants run through the rest of the network in the same pass.

        Args:
            key: group key or member layer name.
            variants: array of shape `(num_variants, group size)`.
            x: inputs (array or list of arrays).
            y: targets.
            max_rows: rows per pass (examples times variants); the batch
                size is `max(1, max_rows // num_variants)`. Defaults to
                `16384`.
            strategy: see `accumulate`. Defaults to `None`.

        Returns:
            `(losses, accuracies)`: float64 arrays of shape `(num_variants,)`.
        """
        group = self.group(key)
        variants = np.asarray(variants, dtype="float32")
        if variants.ndim != 2 or variants.shape[1] != group.size:
            raise ValueError(
                f"Expected `variants` of shape (num_variants, {group.size}) for group "
                f"'{group.key}'. Received: shape {variants.shape}"
            )
        batch_size = max(1, int(max_rows) // len(variants))
        sums = self.accumulate(
            self._variant_fn(group.key),
            x,
            y,
            batch_size,
            strategy,
            (self.gain_tensors(), ops.convert_to_tensor(variants)),
        )
        return sums["loss"] / sums["count"], sums["correct"] / sums["count"]

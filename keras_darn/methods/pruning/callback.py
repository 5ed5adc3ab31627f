"""Scheduled pruning by any criterion during `fit`, through unit masks.

At the end of the epochs a `Schedule` picks, the callback scores the live
units of the model's coupled unit groups with a `keras_darn.criteria`
criterion (on held-out data, or on the weights alone for data-free
criteria) and masks the lowest-scored ones: in one ranking over all groups
(global pruning) or the same fraction of every group, until the `Target` is
reached. A masked unit's weights are zeroed on every member of its group
(`keras_darn.rebuild.unit_masks`) and kept zero for the rest of training, so
`keras_darn.shrink(model)` returns the plain smaller model with the same
outputs. Groups that cannot be masked exactly (units normalized together by
`LayerNormalization`) are left out, and `skipped` says why. Under a
`tf.distribute` strategy the criterion's statistics are computed by all
replicas and summed (`ProbedModel.accumulate`). The groups and their live
units are a `PruningState`, read from the masks (the pruning between fits,
`prune_and_fine_tune`, keeps one too).

What has been pruned follows from the events, saved with the model's
weights, and every step's goal follows from the target, the schedule and
the full-width model alone, so a training restarted from a checkpoint
(`keras.callbacks.BackupAndRestore`) goes on exactly where it stopped.
"""

from keras_darn import backend
from keras_darn import criteria
from keras_darn.criteria.probes import ProbedModel
from keras_darn.graph import unit_groups
from keras_darn.graph.groups import find_group
from keras_darn.graph.groups import select_groups
from keras_darn.graph.nodes import functional_of
from keras_darn.graph.nodes import nodes_in_order
from keras_darn.methods.pruning import budget
from keras_darn.rebuild.unit_masks import live_units
from keras_darn.rebuild.unit_masks import masks_of
from keras_darn.resizing.method import ResumableCallback
from keras_darn.resizing.method import schedule_epochs
from keras_darn.resizing.schedules import Linear
from keras_darn.resizing.schedules import Schedule
from keras_darn.resizing.targets import Target


class PruningState:
    """The unit groups a pruning run works on and which of their units are live.

    Masked units are not live: what has been pruned is read from the
    model's unit masks, so the state follows the masks across epochs and
    restarts. Criteria that score from the weights alone
    (`reads_weights_only`) score this state directly; the others get a
    `ProbedModel` over the same groups (`probed()`), built the first time one
    is asked for, so the data-free default never builds one.

    Args:
        model: a built functional or Sequential `keras.Model`.
        layers: names of layers whose groups are pruned. Defaults to `None`
            (every resizable group of the top-level graph, and with `parts`
            the others too).
        parts: also take the groups outside the top-level graph (attention
            heads, layers of nested models), which only criteria that read
            weights can score. Defaults to `False`.

    Attributes:
        model: the model.
        groups: the `UnitGroup`s pruned (a method may narrow the list).
        live: `{group key: bool array}` of the units not masked off.
    """

    def __init__(self, model, layers=None, parts=False):
        self.model = model
        order = nodes_in_order(functional_of(model))
        self.groups, self._inner = select_groups(model, order, layers, parts)
        self._top = {node.operation.name: node.operation for node in order}
        self._probed = None
        self.live = {}
        self.refresh_from_masks()

    @property
    def keys(self):
        """Keys of the groups, in trace order."""
        return [g.key for g in self.groups]

    def group(self, key):
        """The `UnitGroup` with key (or member layer name) `key`."""
        return find_group(self.groups, key)

    def member_layer(self, name):
        """The member layer object called `name` (a `UnitPart` for a layer's part)."""
        return self._inner[name] if name in self._inner else self._top[name]

    def refresh_from_masks(self):
        """Reads which units are live from the model's masks."""
        self.live = live_units(self.model, self.groups, self.member_layer)

    def probed(self):
        """A `ProbedModel` over the same groups, its live units read from the masks."""
        if self._probed is None:
            self._probed = ProbedModel(self.model, layers=self.keys)
        self._probed.groups = [self._probed.group(key) for key in self.keys]
        self._probed.refresh_from_masks()
        return self._probed

    def scored_by(self, criterion):
        """What `criterion` scores: this state, or a `ProbedModel` when it reads outputs."""
        return self if criterion.reads_weights_only else self.probed()


class CriterionPruning(ResumableCallback):
    """Masks the lowest-scored units of coupled unit groups on a schedule.

    Pruning events happen at the end of the epochs where `schedule(epoch)`
    is not `None`, `epoch` being Keras' absolute epoch index (the one `fit`
    passes to callbacks: `fit(initial_epoch=3)` starts at epoch 3). The
    schedule's amount is the share of the target reached after the event:
    for a `fraction` target, that share of the units; for a `params` or
    `flops` target, the model is brought to `original * (goal / original)
    ** amount`, so the last event lands on the target itself (the largest
    model along the ranking at or below it: no conversion to per-layer
    fractions by hand). With `global_pruning` all live units of all groups
    compete in one ranking of scores normalized by their group's mean;
    otherwise every group loses the same fraction of its width, its
    lowest-scored units first. Any functional or Sequential model the
    Rebuilder supports works as it is (masks act on its weights, in place).
    After every epoch `logs["live_units"]` holds the number of live units of
    the pruned groups. A schedule with no event within the epochs of a `fit`
    warns once at its first epoch.

    Args:
        criterion: a `keras_darn.criteria.Criterion` or a registered name.
        x: held-out inputs the scores are computed on; `None` for data-free
            criteria (`"magnitude"`, `"weight_l1"`, `"bn_scale"`).
            Defaults to `None`.
        y: their targets (for loss-based criteria). Defaults to `None`.
        target: a `keras_darn.Target` with `fraction`, `params` or `flops`
            (and `min_units`, `exclude`). Defaults to
            `Target(fraction=0.5)`.
        schedule: a `keras_darn.Schedule`. Defaults to `Linear(start=0)`
            (one event, at the end of epoch 0).
        layers: names of layers whose groups are pruned. Defaults to
            `None` (every resizable group of the top-level graph).
        verbose: 1 prints each event. Defaults to `0`.
        global_pruning: one ranking over all groups. Defaults to `False`
            (the same fraction of every group).
        round_to: every pruned width stays a multiple of this (rounded
            up). Defaults to `1`.
        max_ratio: the largest fraction of a group's width that may go: a
            float in `(0, 1]`, or a dict `{layer_name: float}`. Defaults to
            `None` (no limit beyond `min_units`).

    Attributes:
        events: list of dicts `{"step", "action", "layer", "units",
            "fraction", "live_units"}`, one per group and event (`units`:
            the unit indices of the group's first layer switched off;
            `fraction`: the share of the group's width now off). Reset when
            training begins.
        skipped: `{group key: reason}` of the groups left out (units a mask
            cannot remove exactly, or the criterion cannot score).

    Raises:
        ValueError: for invalid arguments, or at the start of training when
            no unit group can be pruned or the target cannot be reached.

    Example:

    ```python
    model, callback = darn.prepare(model, "taylor1", darn.Target(fraction=0.5),
                                   validation_data=(x_val, y_val),
                                   schedule=darn.schedules.Linear(start=1, end=4))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=6, callbacks=[callback])
    small = callback.finish().model
    ```
    """

    def __init__(self, criterion, x=None, y=None, target=None, schedule=None, layers=None,
                 verbose=0, global_pruning=False, round_to=1, max_ratio=None):
        super().__init__()
        self.criterion = criteria.get(criterion)
        self.target = Target.get(target) if target is not None else Target(fraction=0.5)
        self.target.check_supported("CriterionPruning", ("fraction", "params", "flops"), True)
        if len(self.target.amounts) > 1:
            raise ValueError(
                "Pruning during fit aims at one amount: give one of `fraction`, `params` or "
                f"`flops` in the Target. Received: {sorted(self.target.amounts)} in "
                f"target={self.target!r}"
            )
        self.schedule = Schedule.get(schedule) if schedule is not None else Linear(start=0)
        if self.criterion.needs_data and x is None:
            raise ValueError(
                f"Criterion '{self.criterion.name}' scores units on data: pass `x`. "
                "Received: x=None"
            )
        if self.criterion.needs_labels and y is None:
            raise ValueError(
                f"Criterion '{self.criterion.name}' needs targets: pass `y`. Received: y=None"
            )
        self.allocation = budget.Allocation(global_pruning, round_to, max_ratio, self.target)
        self.x = x
        self.y = y
        self.layer_names = layers
        self.verbose = verbose
        self.events = []
        self.skipped = {}
        self._state = None
        self._sizes = None
        self._original = None

    def reset_state(self):
        self.events = []

    def get_state(self):
        # The masks travel with the weights; the event history travels here.
        return {"events": self.events}

    def set_state(self, state, epoch):
        self.events = [e for e in state.get("events", []) if e["step"] < epoch]
        # The masks follow from the events: the weights file holds the
        # zeroed weights, the constraints that keep them zero live here.
        plan = {}
        for event in self.events:
            plan.setdefault(event["layer"], set()).update(event["units"])
        self._masks.set({name: sorted(units) for name, units in plan.items()})
        self._state.refresh_from_masks()

    def schedule_summary(self, first_epoch, last_epoch):
        return repr(self.schedule), schedule_epochs(self.schedule, first_epoch, last_epoch)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        state = PruningState(self.model, layers=self.layer_names,
                              parts=self.criterion.reads_weights_only)
        masks = masks_of(self.model)
        maskable = self._maskable_groups(state, masks)
        if not maskable:
            raise ValueError(
                f"CriterionPruning found no unit group of model '{self.model.name}' to prune "
                f"during fit.{self._left_out()}"
            )
        masks.install()
        state.groups = maskable
        state.refresh_from_masks()
        # A criterion that reads outputs probes the model now, so that a
        # model it cannot probe is refused before training.
        state.scored_by(self.criterion)
        self._state = state
        self._masks = masks
        # Masks do not change the graph: the counts of the full-width model
        # are the original ones, also after a restart.
        self._sizes = {g.key: g.size for g in maskable}
        counting = budget.counter_of(self.target)
        self._original = counting[2](self.model) if counting else None
        try:
            budget.check_reachable(state, self.allocation, self.target, self._sizes,
                                   self._original)
        except ValueError as error:
            if not self.skipped:
                raise
            raise ValueError(f"{error} These groups are left out of pruning during fit:"
                             f"{self._left_out()}") from None

    def _left_out(self):
        """The groups in `skipped` and why, one line each."""
        return "".join(f"\n- '{key}': {reason}" for key, reason in self.skipped.items())

    def _maskable_groups(self, state, masks):
        """The groups to prune; says in `skipped` why the others are left out."""
        self.skipped = {}
        scored_keys = {g.key for g in state.groups}
        if self.layer_names is None:
            for group in unit_groups(self.model, resizable_only=True):
                if group.layers[0] not in scored_keys:
                    self.skipped[group.layers[0]] = (
                        f"criterion '{self.criterion.name}' scores units by their outputs or "
                        "their producer's kernel, and these units are not in the top-level "
                        "graph (units inside a layer, such as attention heads, or layers of "
                        "a nested model); 'magnitude', 'magnitude_l1' and 'bn_scale' prune them")
        maskable = []
        for group in state.groups:
            if set(group.layers) & set(self.target.exclude):
                continue
            reason = masks.inexact_reason(group.key)
            if reason is not None:
                self.skipped[group.key] = (
                    f"not pruned during fit: {reason}; darn.resize removes its units "
                    "between fits")
            elif self.allocation.global_pruning and budget.one_direction(state, group):
                self.skipped[group.key] = (
                    "not pruned with global_pruning=True: the two directions of a "
                    "Bidirectional layer keep equal widths, which one global ranking "
                    "does not ensure")
            else:
                maskable.append(group)
        return maskable

    def on_epoch_end(self, epoch, logs=None):
        amount = self.schedule(epoch)
        if amount is not None:
            self._prune(epoch, min(1.0, float(amount)))
        if logs is not None and self._state is not None:
            logs["live_units"] = int(sum(self._state.live[k].sum() for k in self._state.keys))
        super().on_epoch_end(epoch, logs)

    def _prune(self, epoch, amount):
        state = self._state
        scored = state.scored_by(self.criterion)
        if self.criterion.needs_data:
            scores = self.criterion(
                scored, self.x, self.y, strategy=backend.strategy_of(self.model)
            )
        else:
            scores = self.criterion(scored)
        plan = budget.select(state, scores, self.allocation, self.target, amount,
                             self._sizes, self._original)
        self._masks.add(budget.layer_plan(state, plan))
        state.refresh_from_masks()
        for group in state.groups:
            units = plan.get(group.key)
            if units is None or not len(units):
                continue
            live = int(state.live[group.key].sum())
            self.events.append(
                {
                    "step": epoch,
                    "action": "remove",
                    "layer": group.key,
                    "units": group.layer_indices(units).tolist(),
                    "fraction": 1.0 - live / group.size,
                    "live_units": live,
                }
            )
            if self.verbose:
                print(
                    f"CriterionPruning: epoch {epoch}, masked {len(units)} units of "
                    f"'{group.key}' by {self.criterion.name}; {live} live"
                )


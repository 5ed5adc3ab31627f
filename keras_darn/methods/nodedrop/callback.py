"""NodeDrop callback: switch provably dead units off during `model.fit`."""

import numbers
import warnings

import keras
import numpy as np

from keras_darn.methods.nodedrop import condition
from keras_darn.metrics import count_params
from keras_darn.resizing.method import ResumableCallback


class NodeDrop(ResumableCallback):
    """Masks the units that the NodeDrop condition proves dead, during `fit`.

    Every epoch (or every `check_every` training steps) the callback
    evaluates the NodeDrop condition (`nodedrop_dead_units`) and switches
    each newly dead unit off with `set_unit_mask` of the `PrunableDense` /
    `PrunableConv2D` layer that computes it, so it stays dead whatever the
    optimizer does next. For plain NodeDrop units this changes no output: the
    unit was already 0 for every input in range. It writes `live_units` (the
    active units of the layers NodeDrop covers) and `live_params` (the
    parameter count once masked units are removed,
    `keras_darn.metrics.count_params(model, active_only=True)`) into `logs`,
    so they appear in the progress bar, in `History` and in a `TensorBoard`
    callback listed after this one. After training, `keras_darn.shrink(model)`
    returns the plain smaller model.

    Epochs are Keras' absolute, 0-based epoch indices (the `epoch` that
    `fit` passes to callbacks) and training steps count from the first
    step of epoch 0, so a `fit(initial_epoch=...)` or a run resumed by
    `keras.callbacks.BackupAndRestore` goes on counting where it stopped.
    The event history and the step count are saved with the model's
    weights (list this callback before `BackupAndRestore`), and reset when
    training begins.

    NodeDrop-BN units (Dense/Conv2D -> BatchNormalization -> ReLU) are dead on
    every training batch of at most `batch_size` examples, but the paper's
    guarantee does not cover inference with BN's moving statistics. When such
    a unit is dropped its moving mean is set to 0 (with
    `reset_bn_moving_mean=True`), so afterwards the unit is exactly 0 at
    inference too (BN outputs beta <= 0 there); what dropping it changed at
    inference is measured on `check_data`, when given, and recorded in
    `events` (`max_inference_output`). Nothing is claimed where nothing was
    measured: without `check_data` those fields are `None`.

    Args:
        check_every: `"epoch"` to check at the end of every epoch, or a
            positive int N to check after every training step that is a
            multiple of N (steps counted from the start of epoch 0).
            Defaults to `"epoch"`.
        input_range: range of the model inputs, as for
            `nodedrop_eligibility`: `(0, 1)` when the inputs are scaled to
            [0, 1]. Defaults to `None` (unknown: layers reading the raw input
            are not covered).
        batch_size: training batch size m that BatchNormalization normalizes
            over (per replica under a distribution strategy), needed for
            NodeDrop-BN units. Defaults to `None`.
        weaker: use the weaker condition `sum(|w|) + b <= 0`. Defaults to
            `False`.
        reset_bn_moving_mean: set a dropped NodeDrop-BN unit's BN moving mean
            to 0. Defaults to `True`.
        check_data: optional small batch of model inputs. At every drop the
            callback runs the model on it (inference mode) right before and
            after masking and records, per drop, the largest inference-time
            activation the dropped units had (`max_inference_output`) and the
            largest change of the model output (`output_change`). Defaults
            to `None`.
        count_params: write `live_params` into `logs`, recomputed after
            every drop with `keras_darn.shrink` (NaN, with a warning, if
            `shrink` cannot rebuild the model). Defaults to `True`.
        verbose: 1 prints a line per drop. Defaults to `0`.

    Attributes:
        events: list of dicts, one per layer and drop, with keys `step` (the
            epoch), `action` (`"remove"`), `train_step` (the training step of
            a step-wise check, else `None`), `layer`, `kind`, `units`
            (indices), `max_inference_output`
            and `output_change` (floats or `None`). Reset at `on_train_begin`.

    Raises:
        ValueError: for an invalid `check_every`, or at the start of training
            when the model has NodeDrop-BN units and `batch_size` is missing.

    Example:

    ```python
    model, callback = darn.prepare(model, "nodedrop", lam=1e-5, input_range=(0, 1))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=1024, epochs=20, callbacks=[callback])
    small = callback.finish().model
    ```
    """

    def __init__(
        self,
        check_every="epoch",
        input_range=None,
        batch_size=None,
        weaker=False,
        reset_bn_moving_mean=True,
        check_data=None,
        count_params=True,
        verbose=0,
    ):
        super().__init__()
        self.events = []
        valid_steps = (
            isinstance(check_every, numbers.Integral)
            and not isinstance(check_every, bool)
            and check_every > 0
        )
        if check_every != "epoch" and not valid_steps:
            raise ValueError(
                "Received an invalid value for `check_every`, expected "
                '"epoch" or a positive integer number of steps. Received: '
                f"check_every={check_every!r}"
            )
        self.check_every = check_every
        self.input_range = input_range
        self.batch_size = batch_size
        self.weaker = weaker
        self.reset_bn_moving_mean = reset_bn_moving_mean
        self.check_data = check_data
        self.count_params = count_params
        self.verbose = verbose

    def reset_state(self):
        self.events = []
        self._steps_done = None
        self._live_units = None
        self._live_params = None
        self._params_warned = False

    def get_state(self):
        return {"events": self.events, "steps_done": self._steps_done}

    def set_state(self, state, epoch):
        self.events = [e for e in state.get("events", []) if e["step"] < epoch]
        self._steps_done = state.get("steps_done")

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._eligibility = condition.nodedrop_eligibility(
            self.model, self.input_range
        )
        has_bn = any(
            g.nodedrop.kind == condition.KIND_NODEDROP_BN
            for g in self._eligibility.groups
        )
        if has_bn and self.batch_size is None:
            raise ValueError(
                "The model has NodeDrop-BN units (Dense/Conv2D -> "
                "BatchNormalization -> ReLU); pass the training batch size "
                "to NodeDrop(batch_size=...). Received: batch_size=None"
            )
        self._groups = [
            g
            for g in self._eligibility.groups
            if hasattr(g.nodedrop.layer, "set_unit_mask")
        ]
        plain = [g.key for g in self._eligibility.groups if g not in self._groups]
        if plain:
            warnings.warn(
                f"NodeDrop cannot switch off dead units of {plain}: they are "
                "plain Dense/Conv2D layers without a unit mask. Convert the "
                "model with `keras_darn.prepare(model, \"nodedrop\", ...)` or "
                "`keras_darn.layers.to_prunable`.",
                stacklevel=2,
            )
        if not self._groups:
            warnings.warn(
                "NodeDrop found no maskable layer it covers; nothing will be "
                "dropped. Eligibility:\n" + self._eligibility.summary(),
                stacklevel=2,
            )

    def on_epoch_begin(self, epoch, logs=None):
        first = self._first_epoch is None
        super().on_epoch_begin(epoch, logs)
        self._epoch = epoch
        if first:
            # The masks may just have been restored from a checkpoint.
            self._live_units = None
            self._live_params = None
            if self._steps_done is None:
                steps = (self.params or {}).get("steps")
                self._steps_done = epoch * steps if steps else 0
        self._step_in_epoch = 0

    def on_train_batch_end(self, batch, logs=None):
        self._step_in_epoch = batch + 1
        if self.check_every == "epoch":
            return
        step = self._steps_done + self._step_in_epoch
        if step % self.check_every == 0:
            self._check(step)
        if logs is not None:
            logs.update(self._live_logs())

    def on_epoch_end(self, epoch, logs=None):
        if self.check_every == "epoch":
            self._check(None)
        self._steps_done += self._step_in_epoch
        self._step_in_epoch = 0
        if logs is not None:
            logs.update(self._live_logs())
        super().on_epoch_end(epoch, logs)

    def _check(self, step):
        dead = condition.nodedrop_dead_units(
            self.model,
            batch_size=self.batch_size,
            weaker=self.weaker,
            eligibility=self._eligibility,
        )
        new = {}
        for group in self._groups:
            newly_dead = dead[group.key] & (group.nodedrop.layer.get_unit_mask() > 0)
            if newly_dead.any():
                new[group.key] = newly_dead
        if not new:
            return
        measured, before = {}, None
        if self.check_data is not None:
            measured = condition.measure_dropped_unit_outputs(
                self.model, self.check_data, units=new, eligibility=self._eligibility
            )
            before = self._predict()
        for group in self._groups:
            if group.key in new:
                self._drop(group.nodedrop, new[group.key])
        change = None
        if before is not None:
            change = float(np.max(np.abs(self._predict() - before)))
        for group in self._groups:
            if group.key not in new:
                continue
            cover = group.nodedrop
            worst = None
            if group.key in measured:
                worst = float(np.nanmax(measured[group.key]))
            event = {
                "step": getattr(self, "_epoch", 0),
                "action": "remove",
                "train_step": step,
                "layer": group.key,
                "kind": cover.kind,
                "units": np.flatnonzero(new[group.key]).tolist(),
                "max_inference_output": worst,
                "output_change": change,
            }
            self.events.append(event)
            if self.verbose:
                print(
                    f"\nNodeDrop: dropped {len(event['units'])} unit(s) of "
                    f"'{group.key}' ({cover.kind}); {cover.layer.active_units}"
                    " left."
                )
        self._live_units = None
        self._live_params = None

    def _drop(self, cover, newly_dead):
        mask = cover.layer.get_unit_mask()
        mask[newly_dead] = 0.0
        cover.layer.set_unit_mask(mask)
        if cover.bn_layer is not None and self.reset_bn_moving_mean:
            moving_mean = cover.bn_layer.moving_mean
            values = np.array(keras.ops.convert_to_numpy(moving_mean))
            values[newly_dead] = 0.0
            moving_mean.assign(values)

    def _predict(self):
        outputs = self.model(self.check_data, training=False)
        flat = keras.tree.flatten(outputs)
        return np.concatenate(
            [np.ravel(keras.ops.convert_to_numpy(o)) for o in flat]
        ).astype("float64")

    def _live_logs(self):
        if self._live_units is None:
            self._live_units = sum(
                g.nodedrop.layer.active_units if g in self._groups else g.size
                for g in self._eligibility.groups
            )
        logs = {"live_units": self._live_units}
        if self.count_params:
            if self._live_params is None:
                self._live_params = self._count_live_params()
            if self._live_params is not None:
                logs["live_params"] = self._live_params
        return logs

    def _count_live_params(self):
        try:
            return count_params(self.model, active_only=True)
        except ValueError as error:
            # `shrink` refuses models it cannot rebuild; training goes on and
            # the log says NaN rather than a number that was not measured.
            if not self._params_warned:
                self._params_warned = True
                warnings.warn(
                    f"NodeDrop cannot count `live_params`, logging NaN: {error}",
                    stacklevel=2,
                )
            return float("nan")

"""Iterative pruning with fine-tuning between the steps, between fits.

The loop Torch-Pruning's users write by hand (train, then `pruner.step()`
and fine-tune, a few times): `epochs` epochs of `model.fit`, and at the end
of every epoch the schedule picks, one pruning step towards the target.
With `shrink=True` every step rebuilds the model without the removed units
(`remove_units`, optimizer state carried by
`keras_darn.rebuild.training_state`), so each later epoch computes at the
new, smaller width; with `shrink=False` the units are masked and the model
is rebuilt once at the end (the same units go either way). With
`epochs=0` the model is pruned once, at once (one-shot; no data needed for
data-free criteria).
"""


from keras_darn.methods.pruning import budget
from keras_darn.methods.pruning.callback import PruningState
from keras_darn.rebuild import Rebuilder
from keras_darn.rebuild import remove_units
from keras_darn.rebuild import shrink as shrink_model
from keras_darn.rebuild.training_state import compile_fresh
from keras_darn.rebuild.training_state import compile_like
from keras_darn.rebuild.unit_masks import masks_of


class _Run:
    """The model being pruned and what stays fixed across its rebuilds."""

    def __init__(self, model, layers, target, allocation, counting, weights_only):
        self.model = model
        self.layers = layers
        self.weights_only = weights_only
        self.target = target
        self.allocation = allocation
        self.counting = counting
        self.sizes = None
        self.original = counting[2](model) if counting else None

    def state(self):
        state = PruningState(self.model, layers=self.layers, parts=self.weights_only)
        state.groups = [
            g for g in state.groups if not set(g.layers) & set(self.target.exclude)
            and not (self.allocation.global_pruning and budget.one_direction(state, g))
        ]
        if not state.groups:
            raise ValueError(
                "No resizable group is left to prune once `exclude` is applied. Received: "
                f"exclude={list(self.target.exclude)}"
            )
        state.refresh_from_masks()
        if self.sizes is None:
            self.sizes = {g.key: g.size for g in state.groups}
        return state


def prune_and_fine_tune(model, criterion, target, allocation, x=None, y=None, score_data=None,
                        epochs=0, schedule=None, shrink=True, batch_size=None, layers=None,
                        initial_epoch=0, reset_optimizer=False, verbose=0, distillation=None):
    """Trains `epochs` epochs and prunes at the epochs of `schedule`.

    Args:
        model: a built Keras model, compiled when `epochs > 0`; not modified.
        criterion: a `keras_darn.criteria.Criterion`.
        target: the `Target` (one of `fraction`, `params`, `flops`).
        allocation: a `budget.Allocation`.
        x: training inputs (or a `tf.data.Dataset`). Defaults to `None`.
        y: training targets. Defaults to `None`.
        score_data: `(x, y)` the criterion scores on, for data criteria.
            Defaults to `None`.
        epochs: the epoch to train up to (as `fit`'s `epochs`). Defaults to
            `0` (one-shot).
        schedule: a `Schedule` over the absolute epochs (events at their
            end). Defaults to `None` (required when `epochs > 0`).
        shrink: rebuild smaller after every step. Defaults to `True`.
        batch_size: `fit` batch size. Defaults to `None` (Keras' 32).
        layers: names of layers whose groups may be pruned. Defaults to
            `None` (all resizable groups).
        initial_epoch: epochs the model has already been trained (as
            `fit`'s `initial_epoch`): training runs epochs `initial_epoch`
            to `epochs - 1`, and the event of epoch `initial_epoch - 1` is
            applied first. Defaults to `0`.
        reset_optimizer: a fresh optimizer after every step (zero slots
            and step counter, see `compile_fresh`) instead of the carried
            state. Defaults to `False`.
        verbose: `fit` verbosity; 1 also prints every step. Defaults to `0`.
        distillation: a `darn.Distillation`: every epoch trains through a
            `keras.distillation.Distiller` on its teacher (by default
            `model` as given, frozen), with the model's own optimizer, loss
            and metrics. Defaults to `None`.

    Returns:
        `(plain smaller model, events, logs)`: `events` one dict per group
        and step, `logs` the `fit` logs of every epoch.
    """
    counting = budget.counter_of(target)
    if epochs > 0 and not model.compiled:
        raise ValueError(
            "Pruning with fine-tuning trains the model: compile it first (its loss, "
            "optimizer and metrics are used). Received: an uncompiled model"
        )
    # A copy to work on, compiled like the original with its optimizer state.
    rebuilder = Rebuilder(model)
    work = compile_like(rebuilder.build(), model, rebuilder.variable_map)
    if not shrink:
        masks_of(work).install()  # before the training step is traced
    run = _Run(work, layers, target, allocation, counting, criterion.reads_weights_only)
    teacher = distillation.teacher_for(model) if distillation is not None else None
    # With distillation, a Distiller of run.model, made again only when the
    # model is rebuilt or recompiled (a new Distiller traces its step anew).
    trainer = run.model
    first = run.state()
    budget.check_reachable(first, allocation, target, run.sizes, run.original)
    events, logs = [], {}
    if epochs == 0:
        steps = [(None, 1.0, False)]
    else:
        # Epochs already trained (`initial_epoch`) end with the event of
        # the last of them, applied before training goes on.
        steps = [(initial_epoch - 1, schedule(initial_epoch - 1), False)] if initial_epoch else []
        steps += [(e, schedule(e), True) for e in range(initial_epoch, epochs)]
    for epoch, amount, train in steps:
        if train:
            if teacher is None:
                trainer = run.model
            elif (getattr(trainer, "student", None) is not run.model
                  or trainer.optimizer is not run.model.optimizer):  # rebuilt or recompiled
                trainer = _distiller(run.model, distillation, teacher)
            history = trainer.fit(x, y, batch_size=batch_size, epochs=epoch + 1,
                                  initial_epoch=epoch, verbose=verbose)
            for key, values in history.history.items():
                logs.setdefault(key, []).extend(values)
        if amount is None:
            continue
        before = run.model
        _step(run, criterion, score_data, min(1.0, float(amount)), shrink, events,
              0 if epoch is None else max(epoch, 0), verbose, carry_state=not reset_optimizer)
        if reset_optimizer:  # compile_fresh leaves an uncompiled model as it is
            compile_fresh(run.model, before)
    final = run.model
    if not shrink:
        final = shrink_model(final, compile=model.compiled)
    return final, events, logs


def _distiller(model, distillation, teacher):
    """A `Distiller` training `model` on `teacher`, compiled with `model`'s own
    optimizer (its state goes on), loss and metrics."""
    config = model.get_compile_config() or {}
    distiller = distillation.distiller(model, teacher)
    metrics = config.get("metrics")
    distiller.compile(optimizer=model.optimizer, loss=model.loss,
                      metrics=list(metrics) if metrics else None)
    return distiller


def _step(run, criterion, score_data, amount, shrink, events, epoch, verbose, carry_state=True):
    state = run.state()
    scored = state.scored_by(criterion)
    if criterion.needs_data:
        x_score, y_score = score_data
        scores = criterion(scored, x_score, y_score)
    else:
        scores = criterion(scored)
    plan = budget.select(state, scores, run.allocation, run.target, amount, run.sizes,
                         run.original)
    if shrink:
        # Limits apply to the original widths (`run.sizes`); the rebuilt
        # model's groups are as wide as what is left.
        plan = {k: v for k, v in plan.items() if len(v)}
        if plan:
            old = run.model
            run.model = remove_units(old, budget.layer_plan(state, plan),
                                     compile=old.compiled and carry_state)
        widths = {g.key: g.size - len(plan.get(g.key, ())) for g in state.groups}
    else:
        masks_of(run.model).add(budget.layer_plan(state, plan))
        state.refresh_from_masks()
        widths = {g.key: int(state.live[g.key].sum()) for g in state.groups}
    for key, units in plan.items():
        if not len(units):
            continue
        group = state.group(key)
        events.append({
            "step": epoch, "action": "remove", "layer": key,
            "units": group.layer_indices(units).tolist(), "live_units": widths[key],
        })
        if verbose:
            print(f"pruning: epoch {epoch}, removed {len(units)} units of '{key}' by "
                  f"{criterion.name}; {widths[key]} left")


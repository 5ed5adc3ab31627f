"""What a prune-retrain driver records: one `PruningStep` per step, in a `PruningResult`."""

import dataclasses


@dataclasses.dataclass
class PruningStep:
    """One prune-retrain step (a row of the paper's Tables I and II).

    Attributes:
        step: 1-based step number.
        rate: the pruning rate used.
        remaining_weights: live kernel weights after the step.
        accuracy: accuracy after retraining.
        accuracy_after_pruning: accuracy after pruning, before retraining.
        mean_abs_weight: mean |w| of the live weights after retraining.
        accepted: whether the accuracy stayed at or above the floor (a
            rejected step is undone).
        trials: `(rate, accuracy)` of every rate tried by the adaptive
            search in this step (empty for the static driver).
    """

    step: int
    rate: float
    remaining_weights: int
    accuracy: float
    accuracy_after_pruning: float
    mean_abs_weight: float
    accepted: bool
    trials: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class PruningResult:
    """What a prune-retrain driver did.

    Attributes:
        model: the pruned model (the same object that was passed in), in the
            state of the last accepted step.
        history: every `PruningStep`, rejected ones included.
        base_accuracy: accuracy of the model before pruning (or as given).
        accuracy_floor: `base_accuracy - max_accuracy_drop`.
        initial_weights: live kernel weights before pruning.
        initial_accuracy: accuracy of the model before pruning, as measured
            (it differs from `base_accuracy` when that was given).
    """

    model: object
    history: list
    base_accuracy: float
    accuracy_floor: float
    initial_weights: int
    initial_accuracy: float

    @property
    def accepted_steps(self):
        """Number of accepted prune-retrain steps."""
        return sum(step.accepted for step in self.history)

    @property
    def prune_retrain_steps(self):
        """Number of prune-retrain steps run, the rejected last one included."""
        return len(self.history)

    @property
    def trial_evaluations(self):
        """Number of accuracy evaluations of trial rates (adaptive search)."""
        return sum(len(step.trials) for step in self.history)

    @property
    def failed(self):
        """True when not even the first step was accepted (paper: "Failed")."""
        return self.accepted_steps == 0

    @property
    def remaining_weights(self):
        """Live kernel weights of the final model."""
        accepted = [s for s in self.history if s.accepted]
        return accepted[-1].remaining_weights if accepted else self.initial_weights

    @property
    def accuracy(self):
        """Accuracy of the final model (`initial_accuracy` if no step was
        accepted; it can then be below the floor)."""
        accepted = [s for s in self.history if s.accepted]
        return accepted[-1].accuracy if accepted else self.initial_accuracy

    def rows(self):
        """The history as a list of dicts (JSON-friendly)."""
        return [dataclasses.asdict(step) for step in self.history]

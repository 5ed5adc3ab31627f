"""What a prune-retrain driver records: one `PruningStep` per step, in a `darn.Result`."""

import dataclasses

from keras_darn.resizing.results import Result


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


def pruning_result(model, steps, before, base_accuracy, accuracy_floor, initial_weights,
                   initial_accuracy):
    """The `darn.Result` of a prune-retrain driver.

    Args:
        model: the pruned model, in the state of the last accepted step.
        steps: every `PruningStep`, rejected ones included.
        before: `figures` of the model before pruning.
        base_accuracy: accuracy the drops are measured from.
        accuracy_floor: `base_accuracy - max_accuracy_drop`.
        initial_weights: live kernel weights before pruning.
        initial_accuracy: accuracy of the model before pruning, as measured.

    Returns:
        A `Result` whose events are the accepted steps
        (`"prune_connections"`, with the step's rate, remaining weights and
        accuracies), and whose history holds `"steps"` (every step as a
        dict, rejected ones included), the four figures above, and the
        outcome: `"accepted_steps"`, `"remaining_weights"` and `"accuracy"`
        of the final model (the initial ones when no step was accepted,
        the paper's "Failed").
    """
    accepted = [step for step in steps if step.accepted]
    events = [
        {"step": step.step - 1, "action": "prune_connections", "layer": None,
         "rate": step.rate, "remaining_weights": step.remaining_weights,
         "accuracy": step.accuracy, "accuracy_after_pruning": step.accuracy_after_pruning,
         "trials": list(step.trials)}
        for step in accepted
    ]
    history = {
        "steps": [dataclasses.asdict(step) for step in steps],
        "base_accuracy": base_accuracy,
        "accuracy_floor": accuracy_floor,
        "initial_weights": initial_weights,
        "initial_accuracy": initial_accuracy,
        "accepted_steps": len(accepted),
        "remaining_weights": accepted[-1].remaining_weights if accepted else initial_weights,
        "accuracy": accepted[-1].accuracy if accepted else initial_accuracy,
    }
    return Result(model, events, before, history=history)

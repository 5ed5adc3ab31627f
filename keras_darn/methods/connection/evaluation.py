"""The accuracy evaluation and the retraining the prune-retrain drivers call."""

import numpy as np
from keras import ops


def accuracy_evaluator(x, y, batch_size=1024):
    """Returns `evaluate(model) -> accuracy` on fixed data.

    Args:
        x: inputs (a NumPy array).
        y: integer class labels, or one-hot labels.
        batch_size: examples per forward pass. Defaults to `1024`.

    Returns:
        A callable computing the fraction of `x` whose arg-max prediction is
        the label (inference mode).
    """
    x = np.asarray(x)
    y = np.asarray(y)
    labels = y.argmax(axis=-1) if y.ndim > 1 else y.astype("int64")

    def evaluate(model):
        correct = 0
        for start in range(0, len(x), batch_size):
            logits = ops.convert_to_numpy(model(x[start : start + batch_size], training=False))
            correct += int(np.sum(logits.argmax(axis=-1) == labels[start : start + batch_size]))
        return correct / len(x)

    return evaluate


def fit_retrainer(x, y, epochs=1, batch_size=32, **fit_kwargs):
    """Returns `retrain(model)`: `model.fit(x, y, ...)` on fixed data.

    Args:
        x: training inputs.
        y: training targets.
        epochs: epochs per retraining. Defaults to `1`.
        batch_size: batch size. Defaults to `32`.
        **fit_kwargs: other `model.fit` arguments (`verbose` defaults to 0).

    Returns:
        A callable that retrains a compiled model in place.
    """
    fit_kwargs.setdefault("verbose", 0)

    def retrain(model):
        model.fit(x, y, epochs=epochs, batch_size=batch_size, **fit_kwargs)

    return retrain

"""Per-example loss and correctness, the quantities data-driven criteria sum.

Criteria need the loss of every example separately (so that batches and
replicas can be summed, and so that a batch can hold several variants of the
network side by side), not the reduced scalar a compiled model reports.
"""

import keras
from keras import ops


def per_example_loss(loss):
    """Returns `fn(y_true, y_pred) -> (batch,)` for a Keras loss identifier.

    Args:
        loss: a Keras loss identifier: a name such as `"mse"`, a loss function,
            or a `keras.losses.Loss` instance. Losses that return one value
            per output element are averaged over the non-batch axes, as Keras
            does.

    Returns:
        A function of `(y_true, y_pred)` returning a float tensor of shape
        `(batch,)`.

    Raises:
        ValueError: if `loss` is `None`, a dict or list (one loss per output),
            or not a known Keras loss.

    Example:

    ```python
    fn = per_example_loss("mse")
    fn(np.zeros((2, 3)), np.ones((2, 3)))  # [1., 1.]
    ```
    """
    if loss is None:
        raise ValueError(
            "Received an invalid value for `loss`: criteria that use data need "
            "a loss. Pass `loss=` or compile the model. Received: loss=None"
        )
    if isinstance(loss, (dict, list, tuple)):
        raise ValueError(
            "Received an invalid value for `loss`: criteria support models "
            f"with one output and one loss. Received: loss={loss!r}"
        )
    resolved = keras.losses.get(loss)
    if resolved is None:
        raise ValueError(f"Unknown loss. Received: loss={loss!r}")
    if isinstance(resolved, keras.losses.Loss):
        raw = resolved.call
    else:
        raw = resolved

    def fn(y_true, y_pred):
        values = ops.convert_to_tensor(raw(y_true, y_pred))
        rank = len(values.shape)
        if rank > 1:
            values = ops.mean(values, axis=tuple(range(1, rank)))
        return values

    return fn


def per_example_correct(y_true, y_pred):
    """1.0 where the prediction is right, per example.

    Three label layouts are understood: one-hot or probability targets with
    the shape of `y_pred` (compared by argmax), integer class labels with
    one axis fewer (or a trailing axis of 1) compared with `argmax(y_pred)`,
    and single-output binary predictions (`y_pred.shape[-1] == 1`) compared
    with `y_pred > 0.5`.

    Args:
        y_true: targets of a batch.
        y_pred: model outputs of the same batch.

    Returns:
        A float32 tensor of shape `(batch,)` with values 0 and 1.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if y_pred.shape[-1] == 1:
        predicted = ops.reshape(y_pred, (-1,)) > 0.5
        truth = ops.reshape(y_true, (-1,)) > 0.5
        return ops.cast(ops.equal(predicted, truth), "float32")
    predicted = ops.argmax(y_pred, axis=-1)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1]:
        truth = ops.argmax(y_true, axis=-1)
    else:
        truth = ops.cast(ops.reshape(y_true, ops.shape(predicted)), predicted.dtype)
    return ops.cast(ops.equal(predicted, truth), "float32")

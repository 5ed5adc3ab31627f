"""NodeDrop regularizers (Jensen, Harer & Chin, *NodeDrop*, eqs. 5 and 7).

A unit of a Dense or Conv2D layer whose inputs lie in [0, 1] and whose
activation is 0 for every v <= 0 is dead for every input once
`sum(max(w, 0)) + b <= 0` (the NodeDrop condition, eq. 1). The NodeDrop
penalty pushes units towards that state, aiming at `sum(max(w, 0)) + b = -C`,
safely inside the dead region:

    lambda * sum_over_units(sum(max(w, 0)) + |b + C|)                  (eq. 5)

For a conv filter the inner sum runs over its whole kernel. A Keras
regularizer sees one weight tensor at a time, so the penalty is split into the
kernel term `lambda * sum(max(W, 0))` and the bias term
`lambda * sum(|b + C|)`; their sum is exactly eq. 5 summed over the units.
`NodeDropRegularizer` tells the two apart by rank (kernels have rank >= 2,
biases rank 1), so the same instance can be passed as both `kernel_regularizer`
and `bias_regularizer`; `target="kernel"` or `"bias"` pins it.

For BatchNormalization followed by ReLU (NodeDrop-BN), a unit is dead on every
training batch of size m once `|gamma| * sqrt(m) + beta <= 0` (eq. 6); the
penalty (eq. 7, with lambda) is

    lambda * sum_over_units(|gamma| * sqrt(m) + |beta + C|)

split into `gamma_regularizer` and `beta_regularizer` the same way
(`NodeDropBNRegularizer`, whose `target` is required because gamma and beta
both have rank 1).

Both serialize through `get_config` and are registered with
`keras.saving.register_keras_serializable(package="keras_darn")`, so models
saved with them load without `custom_objects`.
"""

import math
import numbers

import keras
from keras import ops

from keras_darn.validation import check_one_of

_PACKAGE = "keras_darn"


def _validate_lam(lam):
    if isinstance(lam, bool) or not isinstance(lam, (int, float)):
        raise ValueError(
            "Received an invalid value for `lam`, expected a non-negative "
            f"float. Received: lam={lam!r}"
        )
    if not math.isfinite(lam) or lam < 0:
        raise ValueError(
            "Received an invalid value for `lam`, expected a non-negative "
            f"finite float. Received: lam={lam}"
        )
    return float(lam)


def _validate_c(c):
    if isinstance(c, bool) or not isinstance(c, (int, float)):
        raise ValueError(
            "Received an invalid value for `c`, expected a positive float. "
            f"Received: c={c!r}"
        )
    if not math.isfinite(c) or c <= 0:
        raise ValueError(
            "Received an invalid value for `c`, expected a positive finite "
            f"float (the bias target is -c, inside the dead region). "
            f"Received: c={c}"
        )
    return float(c)


def validate_batch_size(batch_size):
    """Checks the NodeDrop-BN batch size `m` and returns it as an int.

    Args:
        batch_size: the training batch size m (per replica when BN statistics
            are computed per replica).

    Returns:
        `batch_size` as a Python int.

    Raises:
        ValueError: if `batch_size` is not a positive integer.
    """
    is_integer = isinstance(batch_size, numbers.Integral) and not isinstance(
        batch_size, bool
    )
    if not is_integer or batch_size < 1:
        raise ValueError(
            "Received an invalid value for `batch_size`, expected a positive "
            f"integer (the training batch size m). Received: "
            f"batch_size={batch_size!r}"
        )
    return int(batch_size)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NodeDropRegularizer(keras.regularizers.Regularizer):
    """NodeDrop penalty for the units of a Dense or Conv2D layer (eq. 5).

    On a kernel (rank >= 2) it returns `lam * sum(max(kernel, 0))`; on a bias
    (rank 1) it returns `lam * sum(|bias + c|)`. Used as both the kernel and
    the bias regularizer of a layer, the total is
    `lam * sum_units(sum(max(w, 0)) + |b + c|)`: it pulls the positive weights
    of every unit to 0 and its bias to `-c`, where the unit satisfies the
    NodeDrop condition `sum(max(w, 0)) + b <= 0` with margin `c`.

    Args:
        lam: penalty weight lambda, >= 0. The paper recommends `1e-5` for a
            cross-entropy loss. Defaults to `1e-5`.
        c: positive distance of the bias target below 0. Defaults to `1.0`.
        target: `"auto"` (kernel term for rank >= 2 tensors, bias term for
            rank-1 tensors), `"kernel"` or `"bias"`. Defaults to `"auto"`.

    Raises:
        ValueError: if `lam < 0`, `c <= 0` or `target` is unknown.

    Example:

    >>> reg = NodeDropRegularizer(lam=1e-5)
    >>> layer = keras.layers.Dense(
    ...     64, activation="relu", kernel_regularizer=reg, bias_regularizer=reg)
    """

    def __init__(self, lam=1e-5, c=1.0, target="auto"):
        self.lam = _validate_lam(lam)
        self.c = _validate_c(c)
        check_one_of(target, "target", ("auto", "kernel", "bias"))
        self.target = target

    def _term(self, x):
        if self.target != "auto":
            return self.target
        rank = len(x.shape)
        if rank == 0:
            raise ValueError(
                "NodeDropRegularizer with target='auto' needs a kernel "
                "(rank >= 2) or a bias (rank 1); received a scalar weight."
            )
        return "bias" if rank == 1 else "kernel"

    def __call__(self, x):
        lam = ops.cast(self.lam, dtype=x.dtype)
        if self._term(x) == "kernel":
            return lam * ops.sum(ops.relu(x))
        return lam * ops.sum(ops.absolute(x + ops.cast(self.c, x.dtype)))

    def get_config(self):
        return {"lam": self.lam, "c": self.c, "target": self.target}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NodeDropBNRegularizer(keras.regularizers.Regularizer):
    """NodeDrop-BN penalty for a BatchNormalization followed by ReLU (eq. 7).

    With `target="gamma"` it returns `lam * sqrt(batch_size) * sum(|gamma|)`;
    with `target="beta"` it returns `lam * sum(|beta + c|)`. Set the first as
    the BN layer's `gamma_regularizer` and the second as its
    `beta_regularizer` (`nodedrop_bn_regularizers` builds both): the total is
    `lam * sum_units(|gamma| * sqrt(m) + |beta + c|)`.

    Args:
        lam: penalty weight lambda, >= 0. Defaults to `1e-5`.
        c: positive distance of the beta target below 0. Defaults to `1.0`.
        target: `"gamma"` or `"beta"`. Required: both have rank 1.
        batch_size: training batch size m (the number of examples BN
            normalises over, i.e. per replica under a distribution strategy).
            Required for `target="gamma"`, ignored for `"beta"`. Defaults to
            `None`.

    Raises:
        ValueError: if `lam < 0`, `c <= 0`, `target` is unknown, or
            `target="gamma"` without a positive integer `batch_size`.

    Example:

    >>> bn = keras.layers.BatchNormalization(
    ...     gamma_regularizer=NodeDropBNRegularizer(
    ...         1e-5, target="gamma", batch_size=128),
    ...     beta_regularizer=NodeDropBNRegularizer(1e-5, target="beta"))
    """

    def __init__(self, lam=1e-5, c=1.0, target=None, batch_size=None):
        self.lam = _validate_lam(lam)
        self.c = _validate_c(c)
        if target not in ("gamma", "beta"):
            raise ValueError(
                "Received an invalid value for `target`, expected "
                f'"gamma" or "beta". Received: target={target!r}'
            )
        self.target = target
        if target == "gamma":
            batch_size = validate_batch_size(batch_size)
        elif batch_size is not None:
            batch_size = validate_batch_size(batch_size)
        self.batch_size = batch_size

    def __call__(self, x):
        lam = ops.cast(self.lam, dtype=x.dtype)
        if self.target == "gamma":
            scale = ops.cast(math.sqrt(self.batch_size), dtype=x.dtype)
            return lam * scale * ops.sum(ops.absolute(x))
        return lam * ops.sum(ops.absolute(x + ops.cast(self.c, x.dtype)))

    def get_config(self):
        return {
            "lam": self.lam,
            "c": self.c,
            "target": self.target,
            "batch_size": self.batch_size,
        }


def nodedrop_regularizers(lam=1e-5, c=1.0):
    """The NodeDrop kernel and bias regularizers, as layer keyword arguments.

    Args:
        lam: penalty weight lambda, >= 0. Defaults to `1e-5`.
        c: positive bias target distance. Defaults to `1.0`.

    Returns:
        A dict with `kernel_regularizer` and `bias_regularizer`.

    Example:

    >>> keras.layers.Conv2D(32, 3, **nodedrop_regularizers(1e-5))
    """
    return {
        "kernel_regularizer": NodeDropRegularizer(lam, c, target="kernel"),
        "bias_regularizer": NodeDropRegularizer(lam, c, target="bias"),
    }


def nodedrop_bn_regularizers(lam=1e-5, c=1.0, batch_size=None):
    """The NodeDrop-BN gamma and beta regularizers, as BN keyword arguments.

    Args:
        lam: penalty weight lambda, >= 0. Defaults to `1e-5`.
        c: positive beta target distance. Defaults to `1.0`.
        batch_size: training batch size m (per replica). Required.

    Returns:
        A dict with `gamma_regularizer` and `beta_regularizer`.

    Example:

    >>> keras.layers.BatchNormalization(
    ...     **nodedrop_bn_regularizers(1e-5, batch_size=128))
    """
    return {
        "gamma_regularizer": NodeDropBNRegularizer(
            lam, c, target="gamma", batch_size=batch_size
        ),
        "beta_regularizer": NodeDropBNRegularizer(lam, c, target="beta"),
    }

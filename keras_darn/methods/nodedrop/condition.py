"""The NodeDrop condition: which units of a model are provably dead.

Jensen, Harer & Chin, *NodeDrop*: a unit with inputs x in [0, 1]^n, weights w,
bias b and an activation with sigma(v) = 0 for every v <= 0 outputs 0 for every
input once

    sum(max(w, 0)) + b <= 0                                              (eq. 1)

(the weaker `sum(|w|) + b <= 0` also works but finds fewer units). A unit
followed by BatchNormalization and such an activation outputs 0 on every
training batch of size m once `|gamma| * sqrt(m) + beta <= 0` (eq. 6).

The units the condition applies to are found by walking the Keras functional
graph (`nodedrop_eligibility`, in `eligibility.py`, re-exported here).
This module evaluates the condition (`nodedrop_dead_units`) and measures what
a unit outputs at inference (`measure_dropped_unit_outputs`), which is what
NodeDrop-BN's guarantee does not cover.

The conditions here are evaluated with a float rounding slack: a unit counts as
dead only if its margin stays <= 0 after adding a bound on the float32 rounding
error of the dot product (about n * 2**-24 * (sum|w| + |b|)), so "dead" means
an exact 0 in the computed output, not only in exact arithmetic.
"""

import math

import keras
import numpy as np

# Eligibility names are re-exported so they stay importable from here.
from keras_darn.methods.nodedrop.eligibility import KIND_NODEDROP  # noqa: F401
from keras_darn.methods.nodedrop.eligibility import KIND_NODEDROP_BN
from keras_darn.methods.nodedrop.eligibility import IneligibleLayer  # noqa: F401
from keras_darn.methods.nodedrop.eligibility import NodeDropEligibility  # noqa: F401
from keras_darn.methods.nodedrop.eligibility import NodeDropCover  # noqa: F401
from keras_darn.methods.nodedrop.eligibility import nodedrop_eligibility
from keras_darn.graph.nodes import FunctionalGraph
from keras_darn.methods.nodedrop.regularizers import validate_batch_size


def _float_slack(scale, terms, dtype):
    """Bound on the rounding error of a dot product with `terms` products."""
    unit_roundoff = np.finfo(np.dtype(dtype)).eps / 2
    n = terms + 2
    return n * unit_roundoff / (1 - n * unit_roundoff) * scale


def _as_float64(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), "float64")


def _kernel_and_bias(layer):
    """The kernel as a float64 `(fan_in, units)` matrix, and the bias or None."""
    kernel = _as_float64(layer.kernel)
    kernel = kernel.reshape(-1, kernel.shape[-1])
    bias = None if layer.bias is None else _as_float64(layer.bias)
    return kernel, bias


def _bn_gamma_beta(bn_layer):
    """gamma and beta as float64 arrays (1 and 0 when the BN has none)."""
    size = bn_layer.moving_mean.shape[0]
    gamma = np.ones(size) if bn_layer.gamma is None else _as_float64(bn_layer.gamma)
    beta = np.zeros(size) if bn_layer.beta is None else _as_float64(bn_layer.beta)
    return gamma, beta


def unit_margins(layer, weaker=False, input_bound=1.0):
    """The NodeDrop margin `s * sum(max(w, 0)) + b` of every unit of a layer.

    A unit with inputs in [0, s] (s = 1 in the paper) and an activation that
    is 0 for v <= 0 is dead when its margin is <= 0 (eq. 1). For a conv
    filter the sum runs over its whole kernel.

    Args:
        layer: a built Dense or Conv2D layer.
        weaker: use the weaker `s * sum(|w|) + b` instead. Defaults to
            `False`.
        input_bound: the bound s of the inputs. Defaults to `1.0`.

    Returns:
        A float64 NumPy array with one margin per unit.
    """
    kernel, bias = _kernel_and_bias(layer)
    weights = np.abs(kernel) if weaker else np.maximum(kernel, 0.0)
    margin = input_bound * weights.sum(axis=0)
    if bias is not None:
        margin = margin + bias
    return margin


def bn_unit_margins(bn_layer, batch_size):
    """The NodeDrop-BN margin `|gamma| * sqrt(m) + beta` of every unit.

    Args:
        bn_layer: a built BatchNormalization layer (without `scale`, gamma is
            1; without `center`, beta is 0).
        batch_size: the training batch size m BN normalizes over.

    Returns:
        A float64 NumPy array with one margin per unit.
    """
    m = validate_batch_size(batch_size)
    gamma, beta = _bn_gamma_beta(bn_layer)
    return np.abs(gamma) * math.sqrt(m) + beta


def _dead_nodedrop(cover, weaker):
    layer = cover.layer
    margin = unit_margins(layer, weaker=weaker, input_bound=cover.input_bound)
    kernel, bias = _kernel_and_bias(layer)
    scale = cover.input_bound * np.abs(kernel).sum(axis=0)
    if bias is not None:
        scale = scale + np.abs(bias)
    slack = _float_slack(scale, kernel.shape[0], layer.compute_dtype)
    return margin + slack <= 0.0


def _dead_nodedrop_bn(bn_layer, batch_size):
    margin = bn_unit_margins(bn_layer, batch_size)
    _, beta = _bn_gamma_beta(bn_layer)
    # BN's few float operations per value; 16 roundings is generous.
    slack = _float_slack(margin - beta + np.abs(beta), 14, bn_layer.compute_dtype)
    return margin + slack <= 0.0


def nodedrop_dead_units(
    model, input_range=None, batch_size=None, weaker=False, eligibility=None
):
    """Tells, for every unit NodeDrop covers, whether it is provably dead.

    For `"nodedrop"` groups a unit is dead when `sum(max(w, 0)) + b <= 0`
    (or `sum(|w|) + b <= 0` with `weaker=True`), for `"nodedrop_bn"` groups
    when `|gamma| * sqrt(batch_size) + beta <= 0` (dead on every training
    batch of at most `batch_size` examples; inference with moving statistics
    is not covered, see `measure_dropped_unit_outputs`). Both include a
    float32 rounding slack. The current unit masks are not consulted.

    Args:
        model: a built Functional or Sequential `keras.Model`.
        input_range: range of the model inputs, see `nodedrop_eligibility`.
            Defaults to `None`.
        batch_size: the training batch size m (per replica), required when
            the model has NodeDrop-BN units. Defaults to `None`.
        weaker: use the weaker `sum(|w|) + b <= 0`. Defaults to `False`.
        eligibility: a precomputed `nodedrop_eligibility(model, input_range)`
            to skip the graph walk. Defaults to `None`.

    Returns:
        A dict from layer name (the Dense/Conv2D layer computing the units)
        to a boolean NumPy array, `True` for a dead unit.

    Raises:
        ValueError: if the model has NodeDrop-BN units and `batch_size` is
            not a positive integer.

    Example:

    >>> dead = nodedrop_dead_units(model, input_range=(0, 1))
    >>> {name: int(mask.sum()) for name, mask in dead.items()}
    {'conv2d': 0}
    """
    if eligibility is None:
        eligibility = nodedrop_eligibility(model, input_range)
    dead = {}
    for group in eligibility.groups:
        cover = group.nodedrop
        if cover.kind == KIND_NODEDROP_BN:
            if batch_size is None:
                raise ValueError(
                    f"Layer '{group.key}' is followed by BatchNormalization "
                    f"'{cover.bn_layer.name}' and ReLU (NodeDrop-BN), whose "
                    "condition needs the training batch size m. Received: "
                    "batch_size=None"
                )
            dead[group.key] = _dead_nodedrop_bn(cover.bn_layer, batch_size)
        else:
            dead[group.key] = _dead_nodedrop(cover, weaker)
    return dead


def measure_dropped_unit_outputs(
    model, data, units=None, input_range=None, batch_size=None, eligibility=None
):
    """Largest inference-time activation of selected units, measured on data.

    Runs `model` in inference mode (`training=False`, so BatchNormalization
    uses its moving statistics) on `data` and returns, per unit, the largest
    |activation| it produced. Call it BEFORE masking units to learn what
    dropping them changes at inference: for `"nodedrop"` units the result is
    0 by construction, for `"nodedrop_bn"` units it may not be, because eq. 6
    bounds training-batch outputs only.

    Args:
        model: a built Functional or Sequential `keras.Model`.
        data: a batch of model inputs (array, or list/dict for several
            inputs). Keep it small: it is run in one call.
        units: dict from layer name to a boolean array of the units to
            measure. `None` measures the units `nodedrop_dead_units` reports.
            Defaults to `None`.
        input_range: range of the model inputs, see `nodedrop_eligibility`.
            Defaults to `None`.
        batch_size: training batch size m for NodeDrop-BN, see
            `nodedrop_dead_units`. Defaults to `None`.
        eligibility: a precomputed `nodedrop_eligibility`. Defaults to
            `None`.

    Returns:
        A dict from layer name to a float64 array of shape `(units,)`: the
        largest |activation| of each selected unit over `data`, NaN for
        units not selected.

    Example:

    >>> dead = nodedrop_dead_units(model, batch_size=128)
    >>> worst = measure_dropped_unit_outputs(model, x_val[:256], units=dead,
    ...                                      batch_size=128)
    """
    if eligibility is None:
        eligibility = nodedrop_eligibility(model, input_range)
    if units is None:
        units = nodedrop_dead_units(
            model, batch_size=batch_size, eligibility=eligibility
        )
    groups = [g for g in eligibility.groups if np.any(units.get(g.key, False))]
    result = {}
    if not groups:
        return result
    graph = FunctionalGraph(model)
    inputs = graph.inputs[0] if len(graph.inputs) == 1 else graph.inputs
    probe = keras.Model(inputs, [g.nodedrop.output for g in groups])
    activations = probe(data, training=False)
    for group, values in zip(groups, activations):
        values = np.abs(_as_float64(values))
        values = np.moveaxis(values, group.nodedrop.unit_axis, -1)
        largest = values.reshape(-1, values.shape[-1]).max(axis=0)
        selected = np.asarray(units[group.key], dtype=bool)
        result[group.key] = np.where(selected, largest, np.nan)
    return result

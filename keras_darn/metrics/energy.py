"""Energy of one inference from 45 nm operation costs (Horowitz, ISSCC 2014).

Esfandiarpoor et al. (Table V) estimate the energy of a pruned network from
the energy of its arithmetic operations in 45 nm CMOS:

| operation             | multiply | add     |
|-----------------------|----------|---------|
| 8-bit integer         | 0.2 pJ   | 0.03 pJ |
| 32-bit integer        | 3.1 pJ   | 0.1 pJ  |
| 16-bit floating point | 1.1 pJ   | 0.4 pJ  |
| 32-bit floating point | 3.7 pJ   | 0.9 pJ  |

What is counted, per example (no batch dimension):

- Only the weighted sums of `Dense`, `Conv1D`/`Conv2D`/`Conv3D` (any
  `groups`) and `DepthwiseConv1D`/`DepthwiseConv2D` layers, keras_darn's
  prunable versions included. Only live weights count
  (`keras_darn.layers.connection_masks.live_connections`): in a masked
  layer those whose `kernel_mask` and `unit_mask` are 1, in a plain layer
  the non-zero ones (where `shrink` leaves the pruned ones). Pruned
  connections cost nothing, as on hardware that skips them, so a masked
  model and its `keras_darn.shrink` result cost the same (less the outgoing
  weights of constant units, which `shrink` folds into biases).
- Multiplies: every live weight once per output position (1 for `Dense` on a
  vector; the output's spatial size for a convolution, padded positions
  included; every position for `Dense` on a sequence).
- Additions: an output unit with `n >= 1` live incoming weights needs
  `n - 1` additions to accumulate its products plus 1 for its bias (when the
  layer has one); a unit with no live weight outputs its bias and costs
  nothing. With biases, additions therefore equal multiplies.
- Not counted: activations, normalization, pooling, merges, the memory
  traffic (which Horowitz shows usually dominates), and units that only
  feed pruned connections (`shrink` the model first to drop them). Other
  layers with weights are reported with zero operations and a warning.

The paper's "16 nJ" for its 4,389-weight network equals the multiplies alone
(4,389 x 3.7 pJ = 16.2 nJ); `include_additions=False` reproduces that
convention.
"""

import math
import warnings

import keras
import numpy as np

from keras_darn.graph import shape_walk as _graph_walk
from keras_darn.layers import connection_masks
from keras_darn.validation import check_one_of

# (multiply, add) energy in picojoules, 45 nm (the paper's Table V).
ENERGY_COSTS_45NM = {
    "int8": (0.2, 0.03),
    "int32": (3.1, 0.1),
    "float16": (1.1, 0.4),
    "float32": (3.7, 0.9),
}

_CONVOLUTIONS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def _unit_columns(layer, live):
    """The live-connection array as (fan-in, output units) columns."""
    if isinstance(layer, _DEPTHWISE):
        # (..., in_channels, multiplier): output channel c * m + k.
        return live.reshape(-1, live.shape[-2] * live.shape[-1])
    return live.reshape(-1, live.shape[-1])


def _counted(layer):
    return isinstance(layer, (keras.layers.Dense,) + _CONVOLUTIONS + _DEPTHWISE)


def _layer_operations(layer, output_shape):
    """(live weights, multiplies, additions) of one call of `layer`."""
    columns = _unit_columns(layer, connection_masks.live_connections(layer))
    fan_in = np.count_nonzero(columns, axis=0)
    live = int(fan_in.sum())
    live_units = int(np.count_nonzero(fan_in))
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        spatial = output_shape[2:]
    else:
        spatial = output_shape[1:-1]
    positions = math.prod(spatial) if len(output_shape) > 2 else 1
    bias = 1 if getattr(layer, "use_bias", False) else 0
    additions = live - live_units + bias * live_units
    return live, live * positions, additions * positions


def energy_by_layer(model, dtype="float32", add_dtype=None, include_additions=True, input_shape=None):
    """Energy of one inference per layer, from the paper's Table V costs.

    See the module docstring for exactly what is counted.

    Args:
        model: a functional or Sequential `keras.Model` with known input
            shapes (masked or plain).
        dtype: precision of the multiplies (and additions, unless
            `add_dtype` is given): `"float32"`, `"float16"`, `"int32"` or
            `"int8"`. Defaults to `"float32"`.
        add_dtype: precision of the additions, e.g. `"int32"` for int8
            multiplies accumulated in 32 bits. Defaults to `None` (`dtype`).
        include_additions: count the additions. Defaults to `True`.
        input_shape: shape of one example, when the model's input has
            unknown dimensions. Defaults to `None`.

    Returns:
        `{layer_name: {"weights": live weights, "multiplies": int,
        "additions": int, "energy_pj": float}}` for every counted layer, in
        call order (a layer called several times sums its calls).

    Raises:
        ValueError: for an unknown `dtype` or `add_dtype`, or a model whose
            graph cannot be walked.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    energy_by_layer(model)
    # {"dense": {"weights": 12, "multiplies": 12, "additions": 12,
    #            "energy_pj": 12 * 3.7 + 12 * 0.9}}
    ```
    """
    check_one_of(dtype, "dtype", sorted(ENERGY_COSTS_45NM))
    add_dtype = dtype if add_dtype is None else add_dtype
    check_one_of(add_dtype, "add_dtype", sorted(ENERGY_COSTS_45NM))
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Expected a keras.Model. Received: model={model!r} of type {type(model).__name__}"
        )
    multiply_cost = ENERGY_COSTS_45NM[dtype][0]
    add_cost = ENERGY_COSTS_45NM[add_dtype][1] if include_additions else 0.0
    report = {}
    skipped = []

    def visit(operation, name, input_shapes, output_shapes):
        if not isinstance(operation, keras.layers.Layer):
            return
        if not _counted(operation):
            if operation.weights and type(operation).__name__ not in skipped:
                skipped.append(type(operation).__name__)
            return
        live, multiplies, additions = _layer_operations(operation, output_shapes[0])
        if not include_additions:
            additions = 0
        entry = report.setdefault(
            name, {"weights": live, "multiplies": 0, "additions": 0, "energy_pj": 0.0}
        )
        entry["multiplies"] += multiplies
        entry["additions"] += additions
        entry["energy_pj"] += multiplies * multiply_cost + additions * add_cost

    _graph_walk.walk(model, _graph_walk.input_specs(model, input_shape), visit)
    if skipped:
        warnings.warn(
            f"energy_by_layer: layers of type {skipped} have weights but are not counted "
            "(only Dense, Conv and DepthwiseConv weighted sums are).",
            stacklevel=2,
        )
    return report


def estimate_energy(model, dtype="float32", add_dtype=None, include_additions=True, input_shape=None):
    """Energy of one inference in picojoules, from the paper's Table V costs.

    The sum of `energy_by_layer`; see the module docstring for exactly what
    is counted.

    Args:
        model: a functional or Sequential `keras.Model`.
        dtype: `"float32"`, `"float16"`, `"int32"` or `"int8"`. Defaults to
            `"float32"`.
        add_dtype: precision of the additions. Defaults to `None` (`dtype`).
        include_additions: count the additions. Defaults to `True`.
        input_shape: shape of one example, when the model's input has
            unknown dimensions. Defaults to `None`.

    Returns:
        A float, picojoules per example (divide by 1000 for nJ).

    Raises:
        ValueError: see `energy_by_layer`.

    Example:

    ```python
    estimate_energy(pruned_model) / 1000   # nJ per inference, float32
    estimate_energy(pruned_model, dtype="int8", add_dtype="int32")
    ```
    """
    report = energy_by_layer(
        model,
        dtype=dtype,
        add_dtype=add_dtype,
        include_additions=include_additions,
        input_shape=input_shape,
    )
    return float(sum(entry["energy_pj"] for entry in report.values()))

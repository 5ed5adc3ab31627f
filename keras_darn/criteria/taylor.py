"""Taylor-series estimates of the change in loss when a unit is switched off.

*The Incredible Shrinking Neural Network*, Section 3.2, equation 3: with
`o_k` a unit's output and `E` the loss summed over the validation set,

    dE_k = -o_k * dE/do_k + 0.5 * o_k**2 * d2E/do_k**2

(the first term alone is the linear approximation, eq. 5). Each unit's
output is scaled by a gain `g_k` (`ProbedModel`), and at `g_k = 1`
`dE/dg_k = o_k * dE/do_k` and `d2E/dg_k**2 = o_k**2 * d2E/do_k**2`, so the
estimate is `-E'(1) + 0.5 * E''(1)` in the gain: the Taylor expansion of
switching the unit off (`g_k: 1 -> 0`). For a convolution the gain scales
the whole feature map, so the derivatives sum over its positions.

The second derivative is the exact diagonal of the Hessian with respect to
the units' gains: the batch is replicated once per unit of the group, and a
forward-mode tangent `e_k` on replica k over the reverse-mode gradient gives
Hessian column k there (one forward-over-backward pass; layers upstream of the
group run once), summed over the data. The paper's second-order
backpropagation (eqs. 8-10) gives the same value for the last hidden layer of
a sigmoid network with squared error; for earlier layers it drops the
off-diagonal terms of the layers above, which this computation keeps.
"""

import keras
import numpy as np
from keras import ops

from keras_darn import backend
from keras_darn.criteria.base import Criterion
from keras_darn.criteria.base import register_criterion
from keras_darn.criteria.gates import tile
from keras_darn.graph.nodes import leaf_layers
from keras_darn.validation import check_one_of
from keras_darn.validation import check_positive_int

_CLIPS = (None, "mean", "median")


def _taylor_fn(probed, key, second_order):
    cache_key = ("taylor", key, second_order)
    if cache_key not in probed._compiled:
        size = probed.group(key).size

        def first_order(x, y, gains):
            inputs = x if isinstance(x, (list, tuple)) else [x]

            def loss_of(shared):
                all_gains = dict(gains)
                all_gains[key] = shared
                return ops.sum(probed.loss_fn(y, probed.forward(x, all_gains)))

            return {
                "first": backend.gradient(loss_of, gains[key]),
                "count": ops.cast(ops.shape(inputs[0])[0], "float32"),
            }

        def second_order_fn(x, y, gains):
            # Replica k of the batch carries the same gains; the forward-mode
            # tangent of replica k is e_k, so one forward-over-backward pass
            # gives column k of the Hessian in replica k: its diagonal is the
            # second derivative of every unit. Layers upstream of the group
            # run once (`ProbedModel.forward(replicate=...)`).
            inputs = x if isinstance(x, (list, tuple)) else [x]
            variants = ops.tile(ops.expand_dims(gains[key], 0), (size, 1))
            y_true = tile(ops.convert_to_tensor(y), size)

            def loss_of(variants):
                y_pred = probed.forward(x, gains, replicate=(key, variants))
                return ops.sum(probed.loss_fn(y_true, y_pred))

            gradient, hessian_columns = backend.gradient_and_jvp(
                loss_of, variants, ops.eye(size, dtype=variants.dtype)
            )
            return {
                "first": gradient[0],
                "second": ops.diagonal(hessian_columns),
                "count": ops.cast(ops.shape(inputs[0])[0], "float32"),
            }

        probed._compiled[cache_key] = second_order_fn if second_order else first_order
    return probed._compiled[cache_key]


def taylor_terms(
    probed, x, y, second_order=True, batch_size=256, max_rows=16384, strategy=None
):
    """Derivatives of the mean loss with respect to each unit's gain.

    Args:
        probed: a `keras_darn.criteria.ProbedModel`.
        x: inputs.
        y: targets.
        second_order: also compute the exact second derivative. Defaults
            to `True`.
        batch_size: examples per batch. Defaults to `256`.
        max_rows: for the second derivative the batch is replicated once
            per unit; the batch size is capped so that examples times units
            stays within `max_rows`. Defaults to `16384`.
        strategy: a `tf.distribute.Strategy` (TensorFlow only). Defaults to
            `None`.

    Returns:
        `{key: {"first": array, "second": array}}` with, per unit k,
        `first[k] = mean over examples of o_k * dE/do_k` and
        `second[k] = mean of o_k**2 * d2E/do_k**2` (absent when
        `second_order=False`).

    Example:

    ```python
    terms = taylor_terms(ProbedModel(model), x_val, y_val)
    delta = -terms["dense"]["first"] + 0.5 * terms["dense"]["second"]
    ```
    """
    result = {}
    for group in probed.groups:
        rows = batch_size
        if second_order:
            rows = max(1, min(batch_size, int(max_rows) // group.size))
        sums = probed.accumulate(
            _taylor_fn(probed, group.key, bool(second_order)),
            x,
            y,
            rows,
            strategy,
            (probed.gain_tensors(),),
        )
        terms = {"first": sums["first"] / sums["count"]}
        if second_order:
            terms["second"] = sums["second"] / sums["count"]
        result[group.key] = terms
    return result


@register_criterion("taylor1", "TaylorFirstOrder")
class TaylorFirstOrder(Criterion):
    """First-order Taylor estimate of the loss change: `-o_k * dE/do_k`.

    The paper's linear approximation (eq. 5), averaged over the data. Units
    with the lowest (most negative) estimate are removed first.

    Args:
        batch_size: examples per batch. Defaults to `256`.

    Example:

    ```python
    scores = darn.criteria.TaylorFirstOrder()(model, x_val, y_val)
    ```
    """

    name = "taylor1"
    needs_labels = True

    def score(self, probed, x, y, strategy):
        terms = taylor_terms(
            probed, x, y, second_order=False, batch_size=self.batch_size, strategy=strategy
        )
        return {key: -t["first"] for key, t in terms.items()}


@register_criterion("taylor2", "TaylorSecondOrder")
class TaylorSecondOrder(Criterion):
    """Second-order Taylor estimate: `-o_k dE/do_k + 0.5 o_k^2 d2E/do_k^2`.

    The paper's quadratic approximation (eq. 7) with the exact diagonal
    second derivative. The paper optionally clips outliers: estimates above
    a threshold are replaced by the mean or the median of the group's
    estimates.

    Args:
        clip: `None`, `"mean"` or `"median"`. Defaults to `None`.
        clip_threshold: estimates above it are clipped. Defaults to `None`:
            the group's mean plus `clip_sigma` standard deviations (the paper
            gives no value; this is our choice).
        clip_sigma: see `clip_threshold`. Defaults to `3.0`.
        batch_size: examples per batch. Defaults to `256`.
        max_rows: cap on examples times units per pass (the batch is
            replicated once per unit). Defaults to `16384`.

    Example:

    ```python
    scores = darn.criteria.TaylorSecondOrder(clip="median")(model, x, y)
    ```
    """

    name = "taylor2"
    needs_labels = True

    def __init__(
        self, clip=None, clip_threshold=None, clip_sigma=3.0, batch_size=256, max_rows=16384
    ):
        super().__init__(batch_size)
        check_positive_int(max_rows, "max_rows")
        self.max_rows = int(max_rows)
        check_one_of(clip, "clip", _CLIPS)
        if clip_sigma is None or clip_sigma <= 0:
            raise ValueError(
                "Received an invalid value for `clip_sigma`, expected a positive number. "
                f"Received: clip_sigma={clip_sigma!r}"
            )
        self.clip = clip
        self.clip_threshold = clip_threshold
        self.clip_sigma = float(clip_sigma)

    def score(self, probed, x, y, strategy):
        recurrent = [layer for layer in leaf_layers(probed.model)
                     if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))]
        if recurrent:
            raise ValueError(
                f"Criterion 'taylor2' takes second derivatives through the model, which "
                f"TensorFlow cannot take through the loop of recurrent layer "
                f"'{recurrent[0].name}' ({type(recurrent[0]).__name__}). Use 'taylor1', "
                "'activation_variance' or the data-free 'magnitude' on this model."
            )
        terms = taylor_terms(
            probed, x, y, second_order=True, batch_size=self.batch_size,
            max_rows=self.max_rows, strategy=strategy,
        )
        scores = {}
        for key, t in terms.items():
            estimate = -t["first"] + 0.5 * t["second"]
            scores[key] = self.clip_outliers(estimate, probed.live[key])
        return scores

    def clip_outliers(self, estimate, live):
        """Replaces estimates above the threshold by the mean or median."""
        estimate = np.array(estimate, dtype=np.float64)
        values = estimate[live]
        if self.clip is None or values.size == 0:
            return estimate
        threshold = self.clip_threshold
        if threshold is None:
            threshold = values.mean() + self.clip_sigma * values.std()
        fill = values.mean() if self.clip == "mean" else np.median(values)
        estimate[live & (estimate > threshold)] = fill
        return estimate

    def get_config(self):
        return {
            **super().get_config(),
            "clip": self.clip,
            "clip_threshold": self.clip_threshold,
            "clip_sigma": self.clip_sigma,
            "max_rows": self.max_rows,
        }

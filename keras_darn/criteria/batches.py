"""Running a per-batch statistic over data, batches and replicas."""

import numpy as np
import tensorflow as tf

from keras_darn.validation import check_positive_int


def accumulate(cache, batch_fn, x, y=None, batch_size=256, strategy=None, args=()):
    """Sums `batch_fn(x_batch, y_batch, *args)` over batches and replicas.

    `batch_fn` returns a dict of tensors that add up over examples (sums,
    counts, sums of products). It is compiled with `tf.function` once per
    data layout and kept in `cache`. Under a `tf.distribute` strategy with
    several replicas, every global batch is split across the replicas and
    their dicts are summed with `strategy.reduce`.

    Args:
        cache: a dict where compiled functions are kept between calls.
        batch_fn: a callable `(x, y, *args) -> {name: tensor}`.
        x: model inputs: an array, a list of arrays for several inputs,
            or a batched `tf.data.Dataset` of `(x, y)` pairs.
        y: targets, or `None` (zeros are passed); ignored when `x` is a
            dataset. Defaults to `None`.
        batch_size: examples per (global) batch. Defaults to `256`.
        strategy: a `tf.distribute.Strategy`, or `None` for the current
            one. Defaults to `None`.
        args: extra arguments passed to every call (tensors or nests of
            tensors). Defaults to `()`.

    Returns:
        `{name: float64 array}`, the sums.
    """
    dataset = x if isinstance(x, tf.data.Dataset) else _dataset(x, y, batch_size)
    if strategy is None and tf.distribute.has_strategy():
        strategy = tf.distribute.get_strategy()
    distributed = strategy is not None and strategy.num_replicas_in_sync > 1
    args = tuple(tf.nest.map_structure(tf.convert_to_tensor, tuple(args)))
    if distributed:
        dataset = strategy.experimental_distribute_dataset(dataset)
    # One trace per data layout: the batch axis is left open, so the last,
    # smaller batch does not trace again.
    signature = (dataset.element_spec, tf.nest.map_structure(tf.TensorSpec.from_tensor, args))
    cache_key = (batch_fn, id(strategy) if distributed else None, repr(signature))
    step = cache.get(cache_key)
    if step is None:
        if distributed:

            def step(batch, extra):
                per_replica = strategy.run(batch_fn, args=tuple(batch) + tuple(extra))
                return tf.nest.map_structure(
                    lambda t: strategy.reduce("SUM", t, axis=None), per_replica
                )

        else:

            def step(batch, extra):
                return batch_fn(*batch, *extra)

        step = tf.function(step, input_signature=signature, autograph=False)
        cache[cache_key] = step
    totals = None
    for batch in dataset:
        result = tf.nest.map_structure(
            lambda t: np.asarray(t, dtype=np.float64), step(batch, args)
        )
        totals = result if totals is None else tf.nest.map_structure(
            np.add, totals, result
        )
    if totals is None:
        raise ValueError("Received no data: `x` holds no examples.")
    return totals


def make_dataset(x, y, batch_size):
    """A batched `tf.data.Dataset` of `(x, y)` (zeros when `y` is None)."""
    return _dataset(x, y, batch_size)


def _dataset(x, y, batch_size):
    check_positive_int(batch_size, "batch_size")
    xs = tuple(np.asarray(a) for a in x) if isinstance(x, (list, tuple)) else np.asarray(x)
    n = len(xs[0]) if isinstance(xs, tuple) else len(xs)
    y = np.zeros((n,), dtype="float32") if y is None else np.asarray(y)
    if len(y) != n:
        raise ValueError(
            f"Expected `x` and `y` with the same number of examples. Received: {n} and {len(y)}"
        )
    return tf.data.Dataset.from_tensor_slices((xs, y)).batch(int(batch_size))

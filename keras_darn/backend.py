"""What differs between Keras backends.

Tensor math in keras_darn is written with `keras.ops`, which runs on every
backend (and inside a `tf.function`). What `keras.ops` cannot express lives
here, and this is the one module of the criteria and methods that imports a
framework, and only the active backend's (`keras.backend.backend()`), so
that `import keras_darn` under JAX does not import TensorFlow:

- running a per-batch function over data and summing its results
  (`accumulate`): on TensorFlow compiled with `tf.function` and split
  across the replicas of a `tf.distribute` strategy, elsewhere an eager loop
  over numpy batches;
- derivatives (`gradient`, `gradient_and_jvp`, `jacobian`): TensorFlow's
  tapes, JAX's transformations; other backends raise a `ValueError`;
- distribution strategies (`strategy_of`, `scope`), which only TensorFlow
  models have.
"""

import contextlib

import keras
import numpy as np

from keras_darn.validation import check_positive_int

BACKEND = keras.backend.backend()
if BACKEND == "tensorflow":
    import tensorflow as tf
elif BACKEND == "jax":
    import jax


def strategy_of(model):
    """The `tf.distribute.Strategy` a model was built under.

    Args:
        model: a `keras.Model`.

    Returns:
        `model.distribute_strategy` on TensorFlow (the default strategy
        outside any scope), `None` on other backends.

    Example:

    ```python
    scores = criterion(model, x, strategy=backend.strategy_of(model))
    ```
    """
    return model.distribute_strategy if BACKEND == "tensorflow" else None


def scope(model):
    """A context manager under which new variables join `model`'s strategy.

    Args:
        model: a `keras.Model`.

    Returns:
        `model.distribute_strategy.scope()` on TensorFlow, a context manager
        that does nothing on other backends.

    Example:

    ```python
    with backend.scope(model):
        smaller = darn.remove_units(model, plan)
    ```
    """
    if BACKEND == "tensorflow":
        return model.distribute_strategy.scope()
    return contextlib.nullcontext()


class Batches(list):
    """A list of `(x, y)` numpy batches, what `make_batches` returns off TensorFlow."""


def make_batches(x, y, batch_size):
    """Data as batches of `(x, y)` that `accumulate` takes as its `x`.

    Args:
        x: model inputs: an array, or a list of arrays for several inputs.
        y: targets, or `None` (zeros are used).
        batch_size: examples per batch.

    Returns:
        A batched `tf.data.Dataset` on TensorFlow, a `Batches` list of numpy
        `(x, y)` pairs on other backends.

    Raises:
        ValueError: for a non-positive `batch_size`, or `x` and `y` with
            different numbers of examples.

    Example:

    ```python
    batches = make_batches(x_val, y_val, batch_size=128)
    loss, accuracy = probed.evaluate(batches, None)
    ```
    """
    check_positive_int(batch_size, "batch_size")
    xs = tuple(np.asarray(a) for a in x) if isinstance(x, (list, tuple)) else np.asarray(x)
    n = len(xs[0]) if isinstance(xs, tuple) else len(xs)
    y = np.zeros((n,), dtype="float32") if y is None else np.asarray(y)
    if len(y) != n:
        raise ValueError(
            f"Expected `x` and `y` with the same number of examples. Received: {n} and {len(y)}"
        )
    if BACKEND == "tensorflow":
        return tf.data.Dataset.from_tensor_slices((xs, y)).batch(int(batch_size))
    size = int(batch_size)
    return Batches(
        (keras.tree.map_structure(lambda a: a[start:start + size], xs), y[start:start + size])
        for start in range(0, n, size)
    )


def accumulate(cache, batch_fn, x, y=None, batch_size=256, strategy=None, args=()):
    """Sums `batch_fn(x_batch, y_batch, *args)` over batches and replicas.

    `batch_fn` returns a dict of tensors that add up over examples (sums,
    counts, sums of products). On TensorFlow it is compiled with
    `tf.function` once per data layout and kept in `cache`, and under a
    `tf.distribute` strategy with several replicas every global batch is
    split across the replicas and their dicts are summed with
    `strategy.reduce`. On other backends it runs eagerly on every batch.

    Args:
        cache: a dict where compiled functions are kept between calls.
        batch_fn: a callable `(x, y, *args) -> {name: tensor}`.
        x: model inputs: an array, a list of arrays for several inputs, what
            `make_batches` returns, or a batched `tf.data.Dataset` of
            `(x, y)` pairs.
        y: targets, or `None` (zeros are passed); ignored when `x` holds
            batches. Defaults to `None`.
        batch_size: examples per (global) batch. Defaults to `256`.
        strategy: a `tf.distribute.Strategy`, or `None` for the current
            one (TensorFlow only). Defaults to `None`.
        args: extra arguments passed to every call (tensors or nests of
            tensors). Defaults to `()`.

    Returns:
        `{name: float64 array}`, the sums.

    Raises:
        ValueError: when `x` holds no examples, or for a `strategy` on a
            backend other than TensorFlow.

    Example:

    ```python
    sums = accumulate({}, lambda x, y: {"sum": keras.ops.sum(x, axis=0)}, x)
    ```
    """
    if BACKEND == "tensorflow":
        totals = _accumulate_in_tf_function(cache, batch_fn, x, y, batch_size, strategy, args)
    else:
        totals = _accumulate_eagerly(batch_fn, x, y, batch_size, strategy, args)
    if totals is None:
        raise ValueError("Received no data: `x` holds no examples.")
    return totals


def _accumulate_in_tf_function(cache, batch_fn, x, y, batch_size, strategy, args):
    dataset = x if isinstance(x, tf.data.Dataset) else make_batches(x, y, batch_size)
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
        totals = result if totals is None else tf.nest.map_structure(np.add, totals, result)
    return totals


def _accumulate_eagerly(batch_fn, x, y, batch_size, strategy, args):
    if strategy is not None:
        raise ValueError(
            "Distribution strategies are TensorFlow's: criteria under the "
            f"'{BACKEND}' backend run on one device. Received: strategy={strategy!r}"
        )
    if isinstance(x, Batches):
        batches = x
    elif hasattr(x, "as_numpy_iterator"):  # a tf.data.Dataset given by the user
        batches = x.as_numpy_iterator()
    else:
        batches = make_batches(x, y, batch_size)
    args = keras.tree.map_structure(keras.ops.convert_to_tensor, tuple(args))
    totals = None
    for batch_x, batch_y in batches:
        batch_x = keras.tree.map_structure(keras.ops.convert_to_tensor, batch_x)
        result = batch_fn(batch_x, keras.ops.convert_to_tensor(batch_y), *args)
        result = keras.tree.map_structure(
            lambda t: np.asarray(keras.ops.convert_to_numpy(t), dtype=np.float64), result
        )
        totals = result if totals is None else keras.tree.map_structure(np.add, totals, result)
    return totals


def gradient(fn, value):
    """The gradient of a scalar function at `value`.

    Usable inside `accumulate`'s `batch_fn` (in a `tf.function` on
    TensorFlow).

    Args:
        fn: a function of one tensor returning a scalar tensor; it may call
            Keras layers, whose weights are read, not differentiated.
        value: the tensor to differentiate at.

    Returns:
        `d fn / d value`, shaped like `value`.

    Raises:
        ValueError: on a backend other than TensorFlow and JAX.

    Example:

    ```python
    gradient(lambda g: keras.ops.sum(model(x * g)), keras.ops.ones((3,)))
    ```
    """
    if BACKEND == "tensorflow":
        with tf.GradientTape() as tape:
            tape.watch(value)
            result = fn(value)
        return tape.gradient(result, value)
    if BACKEND == "jax":
        return jax.grad(fn)(value)
    raise _unsupported("gradients")


def gradient_and_jvp(fn, value, tangent):
    """The gradient of a scalar function, and its derivative along `tangent`.

    Forward mode over reverse mode: the second result is the Hessian of
    `fn` at `value` applied to `tangent` (TensorFlow's `ForwardAccumulator`
    over a `GradientTape`, JAX's `jvp` of `grad`).

    Args:
        fn: a function of one tensor returning a scalar tensor.
        value: the tensor to differentiate at.
        tangent: a tensor shaped like `value`.

    Returns:
        `(gradient, hessian_times_tangent)`, both shaped like `value`.

    Raises:
        ValueError: on a backend other than TensorFlow and JAX.

    Example:

    ```python
    # Each row of `value` a replica with tangent e_k: the Hessian's diagonal.
    _, columns = gradient_and_jvp(loss_of_rows, rows, keras.ops.eye(size))
    ```
    """
    if BACKEND == "tensorflow":
        with tf.autodiff.ForwardAccumulator(value, tangent) as accumulator:
            with tf.GradientTape() as tape:
                tape.watch(value)
                result = fn(value)
            first = tape.gradient(result, value)
        return first, accumulator.jvp(first)
    if BACKEND == "jax":
        return jax.jvp(jax.grad(fn), (value,), (tangent,))
    raise _unsupported("second derivatives")


def jacobian(fn, variable):
    """The Jacobian of a tensor-valued function by a `keras.Variable`.

    Args:
        fn: a function of no arguments returning `(output, aux)`; it reads
            `variable` (through Keras layers) to compute `output`.
        variable: a `keras.Variable`.

    Returns:
        `(jacobian, aux)`: the Jacobian of shape `output.shape +
        variable.shape`, and `fn`'s second result.

    Raises:
        ValueError: on a backend other than TensorFlow and JAX.

    Example:

    ```python
    delta, _ = jacobian(lambda: (per_example_losses(), None), dense.bias)
    ```
    """
    if BACKEND == "tensorflow":
        with tf.GradientTape() as tape:
            output, aux = fn()
        return tape.jacobian(output, variable.value), aux
    if BACKEND == "jax":

        def at(value):
            with keras.StatelessScope(state_mapping=[(variable, value)]):
                return fn()

        return jax.jacrev(at, has_aux=True)(variable.value)
    raise _unsupported("Jacobians")


def _unsupported(what):
    return ValueError(
        f"keras_darn takes {what} on the TensorFlow and JAX backends only; criteria "
        "that differentiate the loss ('taylor1', 'taylor2') and init='gradmax' are not "
        f"available on the '{BACKEND}' backend yet. Received: KERAS_BACKEND='{BACKEND}'"
    )

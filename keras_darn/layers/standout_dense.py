"""Standout (adaptive dropout) dense layer with a per-unit pruning mask.

Implements the layer of Dutta & Mitra, *A minimal gradient flow method for
adaptive node pruning* (after Ba & Frey's *Adaptive dropout*): every unit keeps
a retention probability computed from the layer's own input, is dropped with
one minus that probability during training, and is scaled by it at inference.
"""

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_darn.graph.handlers import IN
from keras_darn.graph.handlers import OUT
from keras_darn.graph.handlers import ProducerHandler
from keras_darn.graph.registry import register_layer
from keras_darn.graph.flop_counters import activation_flops
from keras_darn.graph.flop_counters import bias_flops
from keras_darn.graph.flop_counters import elements_per_example


@keras.saving.register_keras_serializable(package="keras_darn")
class StandoutDense(keras.layers.Layer):
    """Densely connected layer with Standout (adaptive dropout) and a unit mask.

    For an input `a` (last axis indexed by `i`) the layer computes, for every
    unit `j`, the retention probability

    `p_j = sigmoid(alpha * sum_i pi_ij * a_i + beta)`

    where `pi` is the layer's own kernel (`tied=True`, as in the paper) or a
    separate trainable matrix `standout_kernel` (`tied=False`). With
    `g = activation` and `z = a @ kernel + bias`:

    - training: `output_j = n_j * m_j * g(z_j)` with `m_j ~ Bernoulli(p_j)`
      drawn from a seeded `keras.random.SeedGenerator`;
    - inference: `output_j = n_j * p_j * g(z_j)`, the expectation over `m`.

    `n` is the non-trainable pruning mask `unit_mask` (ones at build): a masked
    unit outputs exactly 0 and no gradient reaches its weights. As in the
    paper (eq. 4), no gradient flows through `p` into the kernel or into the
    input. With `tied=False` the standout matrix only learns through `p`, so it
    receives the gradient of the expectation `p_j * g(z_j)` (a straight-through
    estimate in training: the forward pass uses the sampled `m_j`).

    During training calls the layer also adds `p` (summed over the batch) to
    the non-trainable accumulators `retention_sum` and `retention_count`
    (aggregated by sum across replicas), which `StandoutPruning` reads once
    per epoch to prune the units with the lowest retention.

    Args:
        units: Positive integer, number of units.
        alpha: Float, scale of the standout pre-activation. `alpha=0` gives
            plain dropout with the fixed retention `sigmoid(beta)`. Defaults
            to `1.0`.
        beta: Float, offset of the standout pre-activation. Defaults to `0.0`.
        activation: Activation `g` applied before the mask. Defaults to `None`
            (linear).
        tied: Boolean, whether `pi` is the layer's kernel (`True`, the
            paper's choice) or a separate trainable matrix. Defaults to
            `True`.
        seed: Optional integer seed of the Bernoulli draws. Defaults to
            `None` (drawn from Python's global `random`, which
            `keras.utils.set_random_seed` seeds).
        use_bias: Boolean, whether `z` has a bias. Defaults to `True`.
        kernel_initializer: Initializer of the kernel. Defaults to
            `"glorot_uniform"`.
        bias_initializer: Initializer of the bias. Defaults to `"zeros"`.
        standout_initializer: Initializer of the separate standout matrix
            (only with `tied=False`). Defaults to `"glorot_uniform"`.
        kernel_regularizer: Regularizer of the kernel. Defaults to `None`.
        bias_regularizer: Regularizer of the bias. Defaults to `None`.
        activity_regularizer: Regularizer of the output. Defaults to `None`.
        kernel_constraint: Constraint of the kernel. Defaults to `None`.
        bias_constraint: Constraint of the bias. Defaults to `None`.
        **kwargs: Base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Raises:
        ValueError: If `units` is not a positive integer, `alpha` or `beta`
            is not a finite number, or `tied` is not a boolean.

    Example:

    ```python
    from keras_darn.layers.standout_dense import StandoutDense

    layer = StandoutDense(512, alpha=1.0, beta=0.0, activation="relu")
    y = layer(x, training=True)       # sampled masks
    p = layer.retention_probability(x)  # (batch, 512)
    layer.set_unit_mask(mask)          # prune units where mask == 0
    ```
    """

    def __init__(
        self,
        units,
        alpha=1.0,
        beta=0.0,
        activation=None,
        tied=True,
        seed=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        standout_initializer="glorot_uniform",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if (
            isinstance(units, bool)
            or not isinstance(units, int)
            or units <= 0
        ):
            raise ValueError(
                "Received an invalid value for `units`, expected a positive "
                f"integer. Received: units={units}"
            )
        for arg_name, value in (("alpha", alpha), ("beta", beta)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(
                    f"Received an invalid value for `{arg_name}`, expected a "
                    f"finite float. Received: {arg_name}={value!r}"
                )
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(
                    f"Received an invalid value for `{arg_name}`, expected a "
                    f"finite float. Received: {arg_name}={value!r}"
                )
        if not isinstance(tied, bool):
            raise ValueError(
                "Received an invalid value for `tied`, expected a boolean. "
                f"Received: tied={tied!r}"
            )
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int)
        ):
            raise ValueError(
                "Received an invalid value for `seed`, expected an integer or "
                f"None. Received: seed={seed!r}"
            )
        self.units = units
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.activation = activations.get(activation)
        self.tied = tied
        self.seed = seed
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.standout_initializer = initializers.get(standout_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "The last dimension of the input to `StandoutDense` must be "
                f"defined. Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        if self.tied:
            self.standout_kernel = None
        else:
            self.standout_kernel = self.add_weight(
                name="standout_kernel",
                shape=(input_dim, self.units),
                initializer=self.standout_initializer,
            )
        self.unit_mask = self.add_weight(
            name="unit_mask",
            shape=(self.units,),
            initializer="ones",
            trainable=False,
        )
        self.retention_sum = self._add_accumulator("retention_sum", (self.units,))
        self.retention_count = self._add_accumulator("retention_count", ())
        self.input_spec = keras.layers.InputSpec(
            min_ndim=2, axes={-1: input_dim}
        )

    def _add_accumulator(self, name, shape):
        # One local copy per replica (like a metric's state): training steps
        # add to their own copy, and a read outside the replicas returns the
        # sum over replicas. `add_weight` cannot do this: its variables sync on
        # write, and Keras' `assign_add` would then sum the old value too.
        with keras.name_scope(self.name, caller=self):
            return keras.Variable(
                initializer="zeros",
                shape=shape,
                dtype="float32",
                trainable=False,
                autocast=False,
                aggregation="sum",
                synchronization="on_read",
                name=name,
            )

    def _standout_logits(self, inputs, kernel_product):
        """`alpha * sum_i pi_ij a_i + beta`, with gradients only into `pi`."""
        if self.tied:
            product = ops.stop_gradient(kernel_product)
        else:
            product = ops.matmul(
                ops.stop_gradient(inputs), self.standout_kernel
            )
        return ops.add(ops.multiply(product, self.alpha), self.beta)

    def call(self, inputs, training=None):
        kernel_product = ops.matmul(inputs, self.kernel)
        outputs = kernel_product
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        outputs = self.activation(outputs)
        retention = ops.sigmoid(self._standout_logits(inputs, kernel_product))
        if training:
            self._accumulate_retention(retention)
            uniform = keras.random.uniform(
                ops.shape(retention),
                dtype=retention.dtype,
                seed=self.seed_generator,
            )
            keep = ops.cast(ops.less(uniform, retention), retention.dtype)
            if not self.tied:
                # Forward: the sampled mask; backward: d(p * g)/d(pi).
                keep = keep + retention - ops.stop_gradient(retention)
            outputs = ops.multiply(outputs, keep)
        else:
            outputs = ops.multiply(outputs, retention)
        return ops.multiply(outputs, ops.cast(self.unit_mask, outputs.dtype))

    def _accumulate_retention(self, retention):
        retention = ops.cast(ops.stop_gradient(retention), "float32")
        flat = ops.reshape(retention, (-1, self.units))
        self.retention_sum.assign_add(ops.sum(flat, axis=0))
        self.retention_count.assign_add(
            ops.cast(ops.shape(flat)[0], "float32")
        )

    def retention_probability(self, inputs):
        """Returns the retention probabilities `p` for a batch of inputs.

        The pruning mask is not applied: a pruned unit still reports the
        probability its standout pre-activation gives.

        Args:
            inputs: Tensor of shape `(..., input_dim)`.

        Returns:
            Tensor of shape `(..., units)` with values in `[0, 1]`.
        """
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if not self.built:
            self.build(inputs.shape)
        kernel_product = ops.matmul(inputs, self.kernel)
        return ops.sigmoid(self._standout_logits(inputs, kernel_product))

    def accumulated_retention(self):
        """Returns the mean retention of every unit since the last reset.

        Returns:
            NumPy array of shape `(units,)`; zeros if nothing was accumulated.
        """
        self._check_built("accumulated_retention")
        count = float(keras.ops.convert_to_numpy(self.retention_count))
        total = keras.ops.convert_to_numpy(self.retention_sum)
        return total / count if count > 0 else total * 0.0

    def reset_retention(self):
        """Sets the retention accumulators back to zero."""
        self._check_built("reset_retention")
        self.retention_sum.assign(ops.zeros(self.retention_sum.shape, "float32"))
        self.retention_count.assign(0.0)

    def set_unit_mask(self, mask):
        """Sets the pruning mask; units where `mask` is 0 output exactly 0.

        Args:
            mask: Array-like of shape `(units,)`, 0/1 or boolean.

        Raises:
            ValueError: If the layer is not built, the shape is wrong, or a
                value is neither 0 nor 1.
        """
        self._check_built("set_unit_mask")
        mask = keras.ops.convert_to_numpy(mask).astype("float32")
        if mask.shape != (self.units,):
            raise ValueError(
                f"Received an invalid `mask` for layer '{self.name}': expected "
                f"shape ({self.units},). Received: mask.shape={mask.shape}"
            )
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError(
                f"Received an invalid `mask` for layer '{self.name}': values "
                f"must be 0 or 1. Received: mask={mask}"
            )
        self.unit_mask.assign(mask)

    def get_unit_mask(self):
        """Returns the pruning mask as a NumPy float array of shape `(units,)`."""
        self._check_built("get_unit_mask")
        return keras.ops.convert_to_numpy(self.unit_mask)

    @property
    def active_units(self):
        """Number of units not masked off."""
        return int(self.get_unit_mask().sum())

    def _check_built(self, method):
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet: call it on an input "
                f"(or call `build`) before `{method}`."
            )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        base_config = super().get_config()
        config = {
            "units": self.units,
            "alpha": self.alpha,
            "beta": self.beta,
            "activation": activations.serialize(self.activation),
            "tied": self.tied,
            "seed": self.seed,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(
                self.kernel_initializer
            ),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "standout_initializer": initializers.serialize(
                self.standout_initializer
            ),
            "kernel_regularizer": regularizers.serialize(
                self.kernel_regularizer
            ),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
        return {**base_config, **config}


def _standout_dense_flops(layer, input_shapes, output_shapes):
    # Inference: output = p * g(x @ kernel + bias) with
    # p = sigmoid(alpha * (x @ pi) + beta); a tied pi reuses x @ kernel.
    out = output_shapes[0]
    in_features = input_shapes[0][-1]
    positions = elements_per_example(out) // out[-1]
    matmul = 2 * positions * in_features * out[-1]
    retention = (0 if layer.tied else matmul) + (2 + 4 + 1) * elements_per_example(out)
    return matmul + bias_flops(layer, out) + activation_flops(layer.activation, out) + retention


# No `fold_weight` in the handler: a constant input also moves the retention
# probability, so only zero inputs are removed exactly.
register_layer(
    StandoutDense,
    handler=ProducerHandler("units", {
        "kernel": {0: IN, 1: OUT}, "bias": {0: OUT}, "standout_kernel": {0: IN, 1: OUT},
        "unit_mask": {0: OUT}, "retention_sum": {0: OUT},
    }),
    bookkeeping_weights=("unit_mask", "retention_sum", "retention_count"),
    flops=_standout_dense_flops,
)

"""Optimizers for networks that change width during training.

`AgeAwareAdam` is Adam whose bias correction counts each weight's own steps
instead of the optimizer's global step. For a network that never changes it
computes exactly Adam's updates; after a rebuild, the weights of new units
(whose moment and age slots start at 0, see `compile_like`) take the steps a
fresh Adam would give them, while the surviving weights keep their moments.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_darn")
class AgeAwareAdam(keras.optimizers.Adam):
    """Adam with a per-weight step count for the bias correction.

    Keras' `Adam` corrects the moments' bias with the global step `t`. A
    weight added by a growth at step `t0` starts with zero moments, and with
    the global `t` its first updates are several times larger than a fresh
    optimizer's (see `keras_darn.methods.growth.grow.adam_step_inflation`).
    This optimizer keeps an extra slot per variable, the number of updates
    each element has received, and uses it in place of `t`; the rebuild
    carries it like the moments and starts it at 0 for new weights. When all
    weights are as old as the optimizer it is Adam, update for update. It
    costs one more slot per weight (as `amsgrad` does).

    It takes the arguments of `keras.optimizers.Adam` (`learning_rate`,
    `beta_1`, `beta_2`, `epsilon`, `amsgrad`, ...) with the same defaults.

    Example:

    ```python
    model.compile(darn.methods.growth.AgeAwareAdam(1e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2)
    grown = darn.add_units(model, {"hidden": 32})   # new weights: age 0
    grown.fit(x, y, epochs=2)                         # fresh-Adam steps for them
    ```
    """

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._ages = self.add_optimizer_variables(var_list, "age")

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        age = self._ages[index]
        m = self._momentums[index]
        v = self._velocities[index]
        self.assign_add(age, ops.ones(age.shape, age.dtype))
        beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), age)
        beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), age)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(
            v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2)
        )
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        self.assign_sub(
            variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon))
        )

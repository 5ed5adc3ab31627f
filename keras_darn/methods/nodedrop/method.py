"""NodeDrop through the front door: `darn.prepare(model, "nodedrop", ...)`."""

from keras_darn.methods.nodedrop import condition
from keras_darn.methods.nodedrop.attach import attach_nodedrop
from keras_darn.methods.nodedrop.callback import NodeDrop
from keras_darn.resizing.entry import register_method
from keras_darn.resizing.method import Method


@register_method(("nodedrop", {}), ("nodedrop_bn", {"require_bn": True}))
class NodeDropMethod(Method):
    """Removes the units NodeDrop proves dead, during `fit`.

    Jensen, Harer & Chin, *NodeDrop*: a unit whose inputs lie in [0, 1]
    and whose activation is 0 for v <= 0 is dead for every input when
    `sum(max(w, 0)) + b <= 0`; a penalty `lam * (sum(max(w, 0)) + |b + c|)`
    drives units there, and dead units are switched off during training
    without changing any output. NodeDrop-BN (Dense/Conv2D ->
    BatchNormalization -> ReLU) units are dead when
    `|gamma| * sqrt(m) + beta <= 0`, m being the batch size.

    `prepare` returns a copy of the model with the penalty on every layer
    NodeDrop covers (those layers prunable) and a `NodeDrop` callback.
    There is no amount to aim for: the penalty `lam` sets how far the model
    shrinks, and the target takes no amount (`exclude` is not supported).
    `"nodedrop_bn"` is the same method that also checks the model has
    NodeDrop-BN units.

    Args:
        lam: penalty weight lambda, >= 0 (the paper: 1e-5 with
            cross-entropy). Defaults to `1e-5`.
        c: positive target distance of the biases below 0. Defaults to
            `1.0`.
        input_range: range of the model inputs, `(0, 1)` for images scaled
            to [0, 1]; without it layers reading the raw input are not
            covered. Defaults to `None`.
        batch_size: the training batch size m (per replica); required for
            NodeDrop-BN units. Defaults to `None`.
        check_every: `"epoch"` or a number N of training steps: a check
            after every step that is a multiple of N, steps counted from
            the start of Keras' epoch 0. Defaults to `"epoch"`.
        weaker: use the weaker condition `sum(|w|) + b <= 0`. Defaults to
            `False`.
        check_data: a small batch of inputs on which each drop's effect at
            inference is measured. Defaults to `None`.
        verbose: 1 prints each drop. Defaults to `0`.
        require_bn: refuse models without NodeDrop-BN units (set by the
            name `"nodedrop_bn"`). Defaults to `False`.

    Example:

    ```python
    model, callback = darn.prepare(model, "nodedrop", lam=1e-4, input_range=(0, 1))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, callbacks=[callback])
    small = callback.finish().model
    ```
    """

    prepare_amounts = ()

    def __init__(self, lam=1e-5, c=1.0, input_range=None, batch_size=None, check_every="epoch",
                 weaker=False, check_data=None, verbose=0, require_bn=False):
        # NodeDrop validates its own arguments; build it once here so a bad
        # option fails at once, not when training starts.
        self.callback_options = dict(
            check_every=check_every, input_range=input_range, batch_size=batch_size,
            weaker=weaker, check_data=check_data, verbose=verbose,
        )
        NodeDrop(**self.callback_options)
        if lam < 0 or c <= 0:
            raise ValueError(
                "Received an invalid value for `lam` or `c`, expected lam >= 0 and c > 0. "
                f"Received: lam={lam!r}, c={c!r}"
            )
        self.lam = lam
        self.c = c
        self.require_bn = bool(require_bn)

    def prepare(self, model, target, validation_data=None, schedule=None):
        if target.exclude:
            raise ValueError(
                f"Method '{self.name}' covers every eligible layer; it does not take "
                f"`exclude`. Received: target={target!r}"
            )
        if schedule is not None:
            raise ValueError(
                f"Method '{self.name}' checks on its own cadence (`check_every`); it takes no "
                f"schedule. Received: schedule={schedule!r}"
            )
        options = self.callback_options
        if self.require_bn:
            eligibility = condition.nodedrop_eligibility(model, options["input_range"])
            if not any(g.nodedrop.kind == condition.KIND_NODEDROP_BN for g in eligibility.groups):
                raise ValueError(
                    f"Method '{self.name}' needs NodeDrop-BN units (Dense/Conv2D -> "
                    "BatchNormalization -> ReLU); the model has none. Use 'nodedrop'. "
                    "Eligibility:\n" + eligibility.summary()
                )
        new_model = attach_nodedrop(
            model, lam=self.lam, c=self.c, batch_size=options["batch_size"],
            input_range=options["input_range"],
        )
        return new_model, NodeDrop(**options)

    def get_config(self):
        return {"lam": self.lam, "c": self.c, "require_bn": self.require_bn,
                **{k: v for k, v in self.callback_options.items() if k != "check_data"}}

"""GradMax initialisation of new units (Evci et al. 2022).

*GradMax: Growing Neural Networks using Gradient Information* (Utku Evci,
Bart van Merriënboer, Thomas Unterthiner, Max Vladymyrov, Fabian Pedregosa,
ICLR 2022) grows a layer with units whose incoming weights are zero, so
the network's function is kept, and whose outgoing weights maximise the
gradient norm of those incoming weights: with `X` the grown layer's inputs
and `D` the loss gradients at the next layer's pre-activations, the
outgoing weights of the new units are the top left singular vectors of
`D^T X`, scaled to the mean norm of the existing units' outgoing weights.

TensorFlow's ReLU has a zero derivative at 0, so units with exactly zero
incoming weights would never learn. Here their incoming weights are the
first gradient step instead: the (sign-flipped) GradMax gradient direction,
scaled to `incoming_norm` times the mean norm of the existing units'
incoming weights (`0.01` by default). The outputs then change by a term of
that order, not exactly zero.

Supported: a Dense layer whose units reach exactly one Dense layer with a
bias, through activation layers only (no normalisation in between), and
whose activations map 0 to 0 (ReLU, tanh, linear, ...).
"""

import keras
import numpy as np

from keras_darn import backend
from keras_darn.criteria.per_example import per_example_loss
from keras_darn.graph.activations import activation_chain
from keras_darn.graph.activations import layer_width
from keras_darn.graph.nodes import functional_of
from keras_darn.graph.nodes import inbound_nodes

DEFAULT_INCOMING_NORM = 0.01


def apply_gradmax(old_model, new_model, plan, gradient_data, incoming_norm=None, rng=None,
                  batch_size=256):
    """Sets the new units of `new_model` (a zeros_out rebuild) by GradMax.

    Args:
        old_model: the model before growing, compiled (its loss is used).
        new_model: the rebuilt model; the new units of each planned layer
            come after its existing ones.
        plan: `{layer_name: number of new units}`.
        gradient_data: `(x, y)`, the examples the gradients are taken on
            (a few hundred).
        incoming_norm: the new incoming weights' norm as a multiple of the
            mean norm of the existing units'. Defaults to `None` (0.01).
        rng: a `numpy.random.Generator` for directions beyond the rank.
        batch_size: examples per gradient batch. Defaults to `256`.

    Raises:
        ValueError: no data or loss, or a layer GradMax does not support.
    """
    if not (isinstance(gradient_data, tuple) and len(gradient_data) == 2
            and gradient_data[1] is not None):
        raise ValueError(
            "init='gradmax' takes gradients of the loss: give `gradient_data=(x, y)`. "
            f"Received: gradient_data={type(gradient_data).__name__}"
        )
    loss = getattr(old_model, "loss", None)
    if loss is None:
        raise ValueError(
            f"init='gradmax' needs the loss of a compiled model: compile model "
            f"'{old_model.name}' first."
        )
    multiple = DEFAULT_INCOMING_NORM if incoming_norm is None else incoming_norm
    if isinstance(multiple, bool) or not isinstance(multiple, (int, float)) or multiple <= 0:
        raise ValueError(
            f"Expected a positive `incoming_norm`. Received: incoming_norm={incoming_norm!r}"
        )
    rng = rng or np.random.default_rng()
    functional = functional_of(new_model)
    old_widths = {name: layer_width(old_model, name) for name in plan}
    consumers = {name: _consumer(functional, new_model.get_layer(name)) for name in plan}
    for name in plan:  # zero incoming weights: the new units output 0
        layer = new_model.get_layer(name)
        for variable in (layer.kernel, layer.bias):
            if variable is not None:
                value = keras.ops.convert_to_numpy(variable)
                value[..., old_widths[name]:] = 0.0
                variable.assign(value)
    fn = per_example_loss(loss)
    for name, count in plan.items():
        layer, consumer, old = new_model.get_layer(name), consumers[name], old_widths[name]
        correlation = _gradient_input_correlation(
            functional, layer, consumer, gradient_data, fn, batch_size
        )  # (consumer units, layer inputs)
        u, _, _ = np.linalg.svd(correlation, full_matrices=True)
        directions = u[:, :count].T  # (count, consumer units)
        if len(directions) < count:
            extra = rng.normal(size=(count - len(directions), u.shape[0]))
            extra /= np.linalg.norm(extra, axis=1, keepdims=True)
            directions = np.concatenate([directions, extra])
        kernel = keras.ops.convert_to_numpy(consumer.kernel)
        out_scale = float(np.linalg.norm(kernel[:old], axis=1).mean())
        kernel[old:old + count] = directions * out_scale
        consumer.kernel.assign(kernel)
        incoming = keras.ops.convert_to_numpy(layer.kernel)
        in_scale = multiple * float(np.linalg.norm(incoming[:, :old], axis=0).mean())
        step = -(correlation.T @ directions.T)  # (inputs, count): minus the gradient
        norms = np.maximum(np.linalg.norm(step, axis=0, keepdims=True), 1e-12)
        incoming[:, old:old + count] = step / norms * in_scale
        layer.kernel.assign(incoming)
    return new_model


def _consumer(functional, layer):
    if not isinstance(layer, keras.layers.Dense) or len(inbound_nodes(layer)) != 1:
        raise ValueError(
            f"init='gradmax' grows Dense layers called once. Received: layer '{layer.name}' "
            f"of type {type(layer).__name__}"
        )
    _, chain, users = activation_chain(functional, layer)
    activations = [layer.activation] + [
        getattr(c, "activation", None) or c for c in chain
    ]
    weighted = [c.name for c in chain if c.weights]
    consumer = users[0][0] if len(users) == 1 else None
    if (
        weighted
        or not isinstance(consumer, keras.layers.Dense)
        or consumer.bias is None
        or len(inbound_nodes(consumer)) != 1
    ):
        raise ValueError(
            f"init='gradmax' needs layer '{layer.name}' to feed exactly one Dense layer with "
            "a bias, through activation layers only. Received: "
            f"users={[u[0].name for u in users]}, layers with weights between={weighted}"
        )
    zero = keras.ops.zeros((1, 1))
    for activation in activations:
        if float(np.abs(keras.ops.convert_to_numpy(activation(zero))).max()) > 1e-7:
            raise ValueError(
                f"init='gradmax' needs activations with f(0) = 0 after layer '{layer.name}'. "
                f"Received: {activation!r}"
            )
    return consumer


def _gradient_input_correlation(functional, layer, consumer, data, fn, batch_size):
    """`sum_b delta_b x_b^T`: loss gradients at the consumer's pre-activations
    (per example, as gradients of each example's loss by the consumer's bias)
    against the layer's inputs."""
    x, y = data
    layer_input = inbound_nodes(layer)[0].input_tensors[0]
    inputs = functional.inputs[0] if len(functional.inputs) == 1 else functional.inputs
    probe = keras.Model(inputs, [layer_input, functional.outputs[0]])
    count = len(keras.tree.flatten(x)[0])
    total = 0.0
    for start in range(0, count, batch_size):
        batch = keras.tree.map_structure(lambda a: a[start:start + batch_size], x)
        y_batch = y[start:start + batch_size]

        def losses_and_inputs():
            layer_in, y_pred = probe(batch, training=False)
            return fn(y_batch, y_pred), layer_in

        # (batch, consumer units): each example's loss by the consumer's bias.
        delta, layer_in = backend.jacobian(losses_and_inputs, consumer.bias)
        delta = keras.ops.convert_to_numpy(delta)
        layer_in = keras.ops.convert_to_numpy(layer_in).astype(np.float64)
        total = total + delta.T @ layer_in
    return np.asarray(total, dtype=np.float64)

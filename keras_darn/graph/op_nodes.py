"""Unit handlers of Keras 3 op nodes (`x * 2.0`, `keras.ops.relu(x)`, ...)
and of `Lambda` layers: the nodes of a functional graph that are code.

A functional graph built with `keras.ops` (or with Python arithmetic on
symbolic tensors) holds operations that are no layers. They move units the
way their layer twins do:

- element-wise ops of one tensor and scalars (`x * 2.0`, `x + 3.0`,
  `keras.ops.clip(x, 0, 6)`) and activation ops (`keras.ops.relu`,
  `keras.ops.hard_silu`) pass channel `c` to channel `c`;
- element-wise ops of several tensors (`keras.ops.add(a, b)`, `a * b`)
  couple their inputs' units like `Add` and `Multiply`;
- reductions (`keras.ops.mean(x, axis=(1, 2))`) pass units like global
  pooling when the channel axis is kept, and mix them when it is reduced;
- `keras.ops.reshape`, `expand_dims`, `squeeze`, `transpose` and
  `concatenate` follow `Reshape`, `Permute` and `Concatenate`;
- every other op fixes the units around it, with a reason naming the op.

A `Lambda` layer fixes the units around it (what its function does to
channels cannot be known) and is carried into a rebuilt model as it is.

One dispatching handler is registered for `keras.Operation`, the base class
of every op and layer: a layer type with a handler of its own never reaches
it, and a layer type without one is fixed as before.
"""

import re

import keras
import numpy as np

from keras_darn.graph import nodes
from keras_darn.graph import registry
from keras_darn.graph.handlers import ConcatenateHandler
from keras_darn.graph.handlers import LayerHandler
from keras_darn.graph.handlers import MergeHandler
from keras_darn.graph.handlers import ReshapeHandler

_UNARY = (
    # keras.ops.nn activations.
    "nn.Relu nn.Relu6 nn.Sigmoid nn.SparseSigmoid nn.Softplus nn.Softsign nn.SoftShrink "
    "nn.SparsePlus nn.Silu nn.Squareplus nn.LogSigmoid nn.LeakyRelu nn.HardSigmoid "
    "nn.HardSilu nn.Elu nn.Selu nn.Gelu nn.Celu nn.TanhShrink nn.HardTanh nn.HardShrink "
    "nn.Threshold "
    # keras.ops.numpy element-wise functions.
    "numpy.Absolute numpy.Fabs numpy.Arccos numpy.Arccosh numpy.Arcsin numpy.Arcsinh "
    "numpy.Arctan numpy.Arctanh numpy.Cbrt numpy.Ceil numpy.Clip numpy.Copy numpy.Cos "
    "numpy.Cosh numpy.Deg2rad numpy.Rad2deg numpy.Exp numpy.Exp2 numpy.Expm1 numpy.Floor "
    "numpy.Log numpy.Log10 numpy.Log1p numpy.Log2 numpy.NanToNum numpy.Negative "
    "numpy.Reciprocal numpy.Round numpy.Sign numpy.Sin numpy.Sinh numpy.Sqrt numpy.Square "
    "numpy.Tan numpy.Tanh numpy.Trunc numpy.Isfinite numpy.Isinf numpy.Isnan "
    "numpy.LogicalNot numpy.ZerosLike numpy.OnesLike "
    # keras.ops.core.
    "core.Cast core.StopGradient"
).split()

_NARY = (
    "numpy.Add numpy.Subtract numpy.Multiply numpy.Divide numpy.TrueDivide "
    "numpy.DivideNoNan numpy.FloorDivide numpy.Power numpy.Maximum numpy.Minimum "
    "numpy.Fmax numpy.Fmin numpy.Mod numpy.Fmod numpy.Arctan2 numpy.Hypot "
    "numpy.Logaddexp numpy.Logaddexp2 numpy.Heaviside numpy.Equal numpy.NotEqual "
    "numpy.Greater numpy.GreaterEqual numpy.Less numpy.LessEqual numpy.LogicalAnd "
    "numpy.LogicalOr numpy.LogicalXor numpy.Where"
).split()

_REDUCTIONS = (
    "numpy.Mean numpy.Sum numpy.Max numpy.Min numpy.Amax numpy.Amin numpy.Prod "
    "numpy.Std numpy.Var numpy.Any numpy.All numpy.Median numpy.Argmax numpy.Argmin "
    "numpy.Nanmean numpy.Nansum numpy.Nanmax numpy.Nanmin numpy.Nanstd numpy.Nanvar "
    "numpy.Ptp numpy.CountNonzero math.Logsumexp"
).split()

# Ops acting along one `axis` (default -1): units pass when it is another axis.
_ALONG_AXIS = (
    "nn.Softmax nn.LogSoftmax nn.Sparsemax numpy.Cumsum numpy.Cumprod numpy.Sort "
    "numpy.Argsort numpy.Flip numpy.Roll numpy.Repeat"
).split()

_DATA_FORMAT_SPATIAL = "image.Resize".split()


def op_type(operation):
    """`"module.ClassName"` of a `keras.ops` operation, e.g. `"numpy.Multiply"`."""
    cls = type(operation)
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def op_function(operation):
    """The `keras.ops` function an op node comes from, for messages
    (`keras.ops.expand_dims` for `ExpandDims`)."""
    return "keras.ops." + re.sub(r"(?<!^)(?=[A-Z])", "_", type(operation).__name__).lower()


def is_operation(layer):
    """Whether a graph node's operation is a `keras.ops` op, not a layer."""
    return not isinstance(layer, keras.layers.Layer)


def _fix_all(inputs, output_shapes, trace, reason):
    for channels in inputs:
        trace.fix(channels, reason)
    return [trace.fixed_channels(shape[-1] if shape else 1, reason) for shape in output_shapes]


def _last_axis_touched(axes, rank):
    """Whether `axes` (an int, a sequence or None) includes the last of `rank` axes."""
    if axes is None:
        return True
    axes = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    return any(int(a) % rank == rank - 1 for a in axes) if rank else True


class ElementwiseOpHandler(MergeHandler):
    """An element-wise op: one tensor passes units, several couple them.

    A constant array operand (anything but a scalar) that reaches the channel
    axis ties every channel to its own constant, so the units are fixed.
    """

    def __init__(self):
        super().__init__(combine=None)

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        for value in getattr(trace, "constant_arguments", ()):
            shape = np.shape(value)
            if len(shape) and shape[-1] != 1:
                reason = (
                    f"op '{layer.name}' ({op_function(layer)}) combines its input with a "
                    f"constant of shape {tuple(shape)}, one value per channel"
                )
                return _fix_all(inputs, output_shapes, trace, reason)
        if len(inputs) == 1:
            return [inputs[0] for _ in output_shapes]
        return super().propagate(layer, inputs, input_shapes, output_shapes, trace)


class ReductionOpHandler(LayerHandler):
    """`keras.ops.mean`/`sum`/`max`/...: like global pooling, unless the
    channel axis is reduced."""

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        rank = len(input_shapes[0])
        axis = getattr(layer, "axis", None)
        if _last_axis_touched(axis, rank):
            reason = f"op '{layer.name}' ({op_function(layer)}) reduces over the channel axis"
            return _fix_all(inputs, output_shapes, trace, reason)
        return [inputs[0] for _ in output_shapes]


class AlongAxisOpHandler(LayerHandler):
    """Softmax, cumulative sums, sorting, flips: units pass unless the op
    works along the channel axis."""

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        rank = len(input_shapes[0])
        axis = getattr(layer, "axis", -1)
        if _last_axis_touched(axis, rank) or input_shapes[0][-1:] != output_shapes[0][-1:]:
            reason = f"op '{layer.name}' ({op_function(layer)}) works along the channel axis"
            return _fix_all(inputs, output_shapes, trace, reason)
        return [inputs[0] for _ in output_shapes]


class AxesOpHandler(LayerHandler):
    """`expand_dims`, `squeeze`, `transpose`, `moveaxis`, spatial resizing:
    units pass when the channel axis stays last with its size."""

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        in_shape, out_shape = input_shapes[0], output_shapes[0]
        if self._keeps_channels(layer, in_shape, out_shape):
            return [inputs[0] for _ in output_shapes]
        reason = (
            f"op '{layer.name}' ({op_function(layer)}, {tuple(in_shape[1:])} -> "
            f"{tuple(out_shape[1:])}) moves the channel axis"
        )
        return _fix_all(inputs, output_shapes, trace, reason)

    def _keeps_channels(self, layer, in_shape, out_shape):
        if not in_shape or not out_shape or in_shape[-1] != out_shape[-1]:
            return False
        kind = op_type(layer)
        if kind == "numpy.ExpandDims":
            return not _last_axis_touched(layer.axis, len(out_shape))
        if kind == "numpy.Squeeze":
            return layer.axis is not None and not _last_axis_touched(layer.axis, len(in_shape))
        if kind == "numpy.Transpose":
            axes = layer.axes
            return axes is not None and int(axes[-1]) % len(in_shape) == len(in_shape) - 1
        if kind == "numpy.Moveaxis":
            return not _last_axis_touched(layer.source, len(in_shape)) and not (
                _last_axis_touched(layer.destination, len(out_shape))
            )
        if kind in _DATA_FORMAT_SPATIAL:
            return getattr(layer, "data_format", "channels_last") == "channels_last"
        return False


class ReshapeOpHandler(ReshapeHandler):
    """`keras.ops.reshape`: the rules of `Reshape`; the channel entry of
    `newshape` follows the new width."""

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        in_shape, out_shape = input_shapes[0], output_shapes[0]
        if in_shape[-1] == out_shape[-1] or (len(out_shape) == 2 and len(in_shape) > 2):
            return super().propagate(layer, inputs, input_shapes, output_shapes, trace)
        reason = (
            f"op '{layer.name}' ({op_function(layer)}, {tuple(in_shape[1:])} -> "
            f"{tuple(out_shape[1:])}) mixes the channel axis"
        )
        return _fix_all(inputs, output_shapes, trace, reason)

    def adapt_config(self, layer, config, input_width):
        target = list(config.get("newshape", ()))
        input_shape = nodes.first_input_shape(layer)
        if target and input_shape and target[-1] == input_shape[-1]:
            target[-1] = input_width
            config = {**config, "newshape": tuple(target)}
        return config


class OperationHandler(LayerHandler):
    """Dispatches an op node to the handler of its op type.

    Layers and ops without a handler fix their units, the reason naming
    the layer type or the op.
    """

    def __init__(self):
        elementwise = ElementwiseOpHandler()
        self._handlers = {name: elementwise for name in _UNARY + _NARY}
        self._handlers.update({name: ReductionOpHandler() for name in _REDUCTIONS})
        self._handlers.update({name: AlongAxisOpHandler() for name in _ALONG_AXIS})
        axes = AxesOpHandler()
        for name in ("numpy.ExpandDims", "numpy.Squeeze", "numpy.Transpose", "numpy.Moveaxis"):
            self._handlers[name] = axes
        for name in _DATA_FORMAT_SPATIAL:
            self._handlers[name] = axes
        self._handlers["numpy.Reshape"] = ReshapeOpHandler()
        self._handlers["numpy.Concatenate"] = ConcatenateHandler()

    def handler_for(self, layer):
        """The handler of an op node, or None for layers and unknown ops."""
        if not is_operation(layer):
            return None
        return self._handlers.get(op_type(layer))

    def propagate(self, layer, inputs, input_shapes, output_shapes, trace):
        handler = self.handler_for(layer)
        if handler is None:
            return super().propagate(layer, inputs, input_shapes, output_shapes, trace)
        return handler.propagate(layer, inputs, input_shapes, output_shapes, trace)

    def fixed_reason(self, layer):
        if not is_operation(layer):
            return super().fixed_reason(layer)
        return (
            f"op '{layer.name}' ({op_function(layer)}) has no unit handler; "
            "keras_darn passes units through element-wise ops, reductions, reshapes "
            "and concatenations of `keras.ops` only"
        )

    def adapt_config(self, layer, config, input_width):
        handler = self.handler_for(layer)
        return config if handler is None else handler.adapt_config(layer, config, input_width)

    def constants(self, layer, input_constants, input_shapes, output_shapes):
        handler = self.handler_for(layer)
        if handler is None or isinstance(handler, ElementwiseOpHandler):
            # Element-wise ops are evaluated on their node (see `node_constants`).
            return None
        if isinstance(handler, (ReductionOpHandler, AlongAxisOpHandler)):
            return None
        return handler.constants(layer, input_constants, input_shapes, output_shapes)

    def carry(self, layer, inputs):
        """A fresh copy of the op for the rebuilt model (its `newshape`
        following the new width); None for a layer (cloned from its config)."""
        if not is_operation(layer):
            return None
        try:
            config = layer.get_config()
        except NotImplementedError:
            return nodes.fresh_operation(layer)
        if inputs is not None:
            config = self.adapt_config(layer, config, len(inputs))
        return type(layer).from_config(config)


def node_constants(layer, node, input_constants, input_shapes):
    """Output constants of an op node that passes units, evaluated on the node.

    Every input channel holding a known constant (NaN: not constant) is fed
    through the op with the node's own other arguments: on a probe of the
    input's full shape (one example) where it is known, else, for
    element-wise ops, on a probe with one position. An output channel is
    constant where all inputs it reads are and the op's output is the same
    at every position.
    """
    handler = OPERATION_HANDLER.handler_for(layer)
    passing = (ElementwiseOpHandler, ReductionOpHandler, AlongAxisOpHandler, AxesOpHandler)
    if not isinstance(handler, passing) or not input_constants:
        return None
    width = max(len(c) for c in input_constants)
    known = np.ones(width, dtype=bool)
    full = all(None not in shape[1:] for shape in input_shapes)
    if not full and not isinstance(handler, ElementwiseOpHandler):
        return None
    probes = []
    for constant, shape in zip(input_constants, input_shapes):
        constant = np.asarray(constant, dtype=np.float64)
        known &= np.broadcast_to(~np.isnan(constant), (width,))
        value = np.where(np.isnan(constant), 0.0, constant).astype("float32")
        probe_shape = (1,) + tuple(shape[1:]) if full else (1,) * (len(shape) - 1) + (len(value),)
        probes.append(np.broadcast_to(value, probe_shape).copy())
    if not known.any():
        return np.full(width, np.nan)
    try:
        out = keras.ops.convert_to_numpy(nodes.call_node(node, probes))
    except Exception:  # noqa: BLE001  (an op that cannot run on a probe: not constant)
        return np.full(width, np.nan)
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 0 or out.shape[-1] != width:
        return np.full(width, np.nan)
    out = out.reshape(-1, width)
    steady = np.all(out == out[:1], axis=0)
    return np.where(known & steady, out[0], np.nan)


class LambdaHandler(LayerHandler):
    """`Lambda` layers are opaque: their units are fixed, with a reason.

    A rebuild carries a Lambda as it is, with the same Python function, so
    its config is never deserialized (which Keras' safe mode refuses); only
    a plan that changes a group touching the Lambda is refused.
    """

    def fixed_reason(self, layer):
        return (
            f"the group reaches Lambda layer '{layer.name}', whose effect on channels "
            "keras_darn cannot know; replace it with a built-in or registered layer "
            "(a Lambda outside the changed groups is carried as it is)"
        )

    def carry(self, layer, inputs):
        """A new Lambda with the same function, arguments and name.

        Raises:
            ValueError: if the Lambda's input channels changed.
        """
        if inputs is not None:
            width = layer.input.shape[-1] if len(layer.input.shape) > 1 else 1
            if len(inputs) != width or not np.array_equal(inputs.origin, np.arange(width)):
                raise ValueError(
                    f"The plan changes the input channels of Lambda layer '{layer.name}'; "
                    "keras_darn cannot know how a Lambda uses them. Replace it with a "
                    "built-in or registered layer, or leave its group unchanged."
                )
        return type(layer)(
            layer.function,
            output_shape=layer._output_shape,
            mask=layer.mask,
            arguments=dict(layer.arguments),
            name=layer.name,
            dtype=layer.dtype_policy,
        )


def zeroing_op(operation):
    """Whether an op node is `keras.ops.relu` or `keras.ops.relu6`, exactly 0 for
    every v <= 0 (the `zeroes_nonpositive` rule of op nodes)."""
    return (
        is_operation(operation)
        and type(operation).__module__.startswith("keras.")
        and op_type(operation) in ("nn.Relu", "nn.Relu6")
    )


OPERATION_HANDLER = OperationHandler()
# Registered for `keras.Operation` itself (no layer class), so that every
# lookup of `registry.get_handler` finds it for op nodes.
registry._REGISTRY[keras.Operation] = registry.LayerDescription(
    handler=OPERATION_HANDLER, zeroes_nonpositive=zeroing_op
)

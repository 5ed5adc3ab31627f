"""Unit handlers of the layer types Keras ships (registered on import)."""

import keras
import numpy as np

from keras_darn.graph.handlers import IN
from keras_darn.graph.handlers import IN_X_M
from keras_darn.graph.handlers import OUT
from keras_darn.graph.handlers import ConcatenateHandler
from keras_darn.graph.handlers import DepthwiseHandler
from keras_darn.graph.handlers import FlattenHandler
from keras_darn.graph.handlers import GroupedConvHandler
from keras_darn.graph.handlers import MergeHandler
from keras_darn.graph.handlers import NormalizationHandler
from keras_darn.graph.handlers import PassThroughHandler
from keras_darn.graph.handlers import ProducerHandler
from keras_darn.graph.handlers import ReshapeHandler
from keras_darn.graph.handlers import product
from keras_darn.graph.op_nodes import LambdaHandler
from keras_darn.graph.registry import register_layer

DENSE_AXES = {"kernel": {-2: IN, -1: OUT}, "bias": {0: OUT}}


def _register_handler(layer_class, handler):
    register_layer(layer_class, handler=handler)


def _register():
    layers = keras.layers
    dense_axes = DENSE_AXES
    _register_handler(layers.Dense, ProducerHandler("units", dense_axes, fold_weight="kernel"))
    for conv in (layers.Conv1D, layers.Conv2D, layers.Conv3D):
        _register_handler(conv, GroupedConvHandler("filters", dense_axes, fold_weight="kernel"))
    transpose_axes = {"kernel": {-1: IN, -2: OUT}, "bias": {0: OUT}}
    for conv in (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose):
        _register_handler(conv, ProducerHandler("filters", transpose_axes))
    separable_axes = {
        "depthwise_kernel": {-2: IN},
        "pointwise_kernel": {-2: IN_X_M, -1: OUT},
        "bias": {0: OUT},
    }
    for conv in (layers.SeparableConv1D, layers.SeparableConv2D):
        _register_handler(conv, ProducerHandler("filters", separable_axes))
    _register_handler(
        layers.Embedding,
        ProducerHandler("output_dim", {"embeddings": {1: OUT}}, consumes_channels=False),
    )
    for depthwise in (layers.DepthwiseConv1D, layers.DepthwiseConv2D):
        _register_handler(depthwise, DepthwiseHandler())
    _register_handler(
        layers.BatchNormalization,
        NormalizationHandler(("gamma", "beta", "moving_mean", "moving_variance"), "call"),
    )
    _register_handler(layers.LayerNormalization, NormalizationHandler(("gamma", "beta"), "none"))
    elementwise = (
        layers.Activation, layers.ReLU, layers.LeakyReLU, layers.ELU,
        layers.Dropout, layers.GaussianNoise, layers.GaussianDropout, layers.AlphaDropout,
        layers.SpatialDropout1D, layers.SpatialDropout2D, layers.SpatialDropout3D,
        layers.Rescaling, layers.Identity, layers.ActivityRegularization,
    )
    for layer_class in elementwise:
        _register_handler(layer_class, PassThroughHandler())
    spatial = (
        layers.MaxPooling1D, layers.MaxPooling2D, layers.MaxPooling3D,
        layers.AveragePooling1D, layers.AveragePooling2D, layers.AveragePooling3D,
        layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D, layers.GlobalAveragePooling3D,
        layers.GlobalMaxPooling1D, layers.GlobalMaxPooling2D, layers.GlobalMaxPooling3D,
        layers.UpSampling1D, layers.UpSampling2D, layers.UpSampling3D,
        layers.Cropping1D, layers.Cropping2D, layers.Cropping3D,
    )
    for layer_class in spatial:
        _register_handler(layer_class, PassThroughHandler(constant_rule="identity"))
    for layer_class in (layers.ZeroPadding1D, layers.ZeroPadding2D, layers.ZeroPadding3D):
        _register_handler(layer_class, PassThroughHandler(constant_rule="zero_only"))
    _register_handler(layers.Add, MergeHandler(lambda s: np.sum(s, axis=0)))
    _register_handler(layers.Subtract, MergeHandler(lambda s: s[0] - s[1]))
    _register_handler(layers.Multiply, MergeHandler(product))
    _register_handler(layers.Average, MergeHandler(lambda s: np.mean(s, axis=0)))
    _register_handler(layers.Maximum, MergeHandler(lambda s: np.max(s, axis=0)))
    _register_handler(layers.Minimum, MergeHandler(lambda s: np.min(s, axis=0)))
    _register_handler(layers.Concatenate, ConcatenateHandler())
    _register_handler(layers.Flatten, FlattenHandler())
    _register_handler(layers.Reshape, ReshapeHandler())
    _register_handler(layers.Lambda, LambdaHandler())



_register()

# Recurrent layers, wrappers and attention register their own handlers.
from keras_darn.graph import application_layers  # noqa: E402,F401  (GroupNormalization, LayerScale, ...)
from keras_darn.graph import attention  # noqa: E402,F401
from keras_darn.graph import keras_hub_layers  # noqa: E402,F401  (keras-hub itself loads lazily)
from keras_darn.graph import recurrent  # noqa: E402,F401

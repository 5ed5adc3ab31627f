"""Layers and activations of keras_darn (re-exports only).

Prunable layers carry non-trainable per-unit masks that callbacks switch
during `fit`; the activations keep outputs in `[0, 1]` for NodeDrop.
"""

from keras_darn.layers.clamped_relu import ClampedReLU
from keras_darn.layers.clamped_relu import clamped_relu
from keras_darn.layers.conversion import from_prunable
from keras_darn.layers.conversion import to_prunable
from keras_darn.layers.prunable_conv2d import PrunableConv2D
from keras_darn.layers.prunable_dense import PrunableDense
from keras_darn.layers.soft_clamped_relu import SoftClampedReLU
from keras_darn.layers.soft_clamped_relu import soft_clamped_relu
from keras_darn.layers.standout_dense import StandoutDense
from keras_darn.layers.unit_mask_mixin import UnitMaskMixin

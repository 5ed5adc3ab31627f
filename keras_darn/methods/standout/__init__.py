"""Standout pruning (re-exports only).

Dutta & Mitra, *A minimal gradient flow method for adaptive node pruning*:
hidden layers are `keras_darn.layers.StandoutDense` (adaptive dropout after Ba
& Frey, *Adaptive dropout for training deep neural networks*), whose units
carry a retention probability computed from the layer's input; during `fit`,
`StandoutPruning` masks the units with the lowest mean retention on a
geometric schedule (`ratio <- ratio + gamma * (1 - ratio)`) until a target
width, and `keras_darn.shrink` removes them. Registered name: `"standout"`
(`Standout`), through `darn.prepare`.
"""

from keras_darn.methods.standout.callback import StandoutPruning
from keras_darn.methods.standout.callback import standout_units_to_remove
from keras_darn.methods.standout.method import Standout

"""Callbacks that change units during `model.fit` (re-exports only)."""

from keras_darn.callbacks.criterion_pruning import CriterionPruning
from keras_darn.callbacks.criterion_pruning import pruning_fraction
from keras_darn.callbacks.growth import GrowthCallback
from keras_darn.callbacks.growth import GrowthSchedule
from keras_darn.callbacks.growth import ProportionalGrowth
from keras_darn.callbacks.nodedrop import NodeDrop
from keras_darn.callbacks.standout_pruning import StandoutPruning
from keras_darn.callbacks.standout_pruning import standout_pruning_ratio
from keras_darn.callbacks.standout_pruning import standout_pruning_schedule
from keras_darn.callbacks.standout_pruning import standout_units_to_remove

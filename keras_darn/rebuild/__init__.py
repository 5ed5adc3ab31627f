"""Rebuilding models with removed, added or inserted units (re-exports only)."""

from keras_darn.rebuild.batch_norm import recalibrate_batch_norm
from keras_darn.rebuild.operations import add_units
from keras_darn.rebuild.operations import insert_layer
from keras_darn.rebuild.operations import remove_units
from keras_darn.rebuild.operations import shrink
from keras_darn.rebuild.operations import unfold_blocks
from keras_darn.rebuild.rebuilder import Rebuilder
from keras_darn.rebuild.training_state import StepOffsetSchedule
from keras_darn.rebuild.training_state import compile_fresh
from keras_darn.rebuild.training_state import compile_like
from keras_darn.rebuild.unit_masks import UnitMasks
from keras_darn.rebuild.unit_masks import masks_of

"""Coupled unit groups of a Keras graph (re-exports only)."""

from keras_darn.graph.groups import UnitGroup
from keras_darn.graph.groups import unit_groups
from keras_darn.graph.handlers import LayerHandler
from keras_darn.graph.handlers import ProducerHandler
from keras_darn.graph.handlers import PassThroughHandler
from keras_darn.graph.handlers import register_handler
from keras_darn.graph.unit_graph import GraphError
from keras_darn.graph.unit_graph import UnitGraph

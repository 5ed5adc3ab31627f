"""Coupled unit groups of a Keras graph, and what the core knows of each layer type.

`unit_groups(model)` lists the groups of units that must change together;
`register_layer` describes a custom layer type to the core (re-exports only).
"""

from keras_darn.graph import keras_layers  # noqa: F401  (registers Keras' layer types)
from keras_darn.graph import op_nodes  # noqa: F401  (registers the keras.ops op nodes)
from keras_darn.graph import output_bounds  # noqa: F401  (registers the layers' output bounds)
from keras_darn.graph import sequence_flops  # noqa: F401  (registers attention and recurrent FLOPs)
from keras_darn.graph.composite import CompositeHandler
from keras_darn.graph.groups import UnitGroup
from keras_darn.graph.groups import unit_groups
from keras_darn.graph.handlers import IN
from keras_darn.graph.handlers import IN_X_M
from keras_darn.graph.handlers import OUT
from keras_darn.graph.handlers import LayerHandler
from keras_darn.graph.handlers import PassThroughHandler
from keras_darn.graph.handlers import ProducerHandler
from keras_darn.graph.nodes import GraphError
from keras_darn.graph.registry import describe
from keras_darn.graph.registry import register_layer
from keras_darn.graph.unit_axes import UnitAxis
from keras_darn.graph.unit_graph import UnitGraph

"""keras_darn: find the right width for every layer of a Keras model.

Import as `import keras_darn as darn`. This module only re-exports the public
contract; see the subpackages for the implementations.
"""

from keras_darn import criteria
from keras_darn import datasets
from keras_darn import export
from keras_darn import graph
from keras_darn import layers
from keras_darn import methods
from keras_darn import metrics
from keras_darn import plots
from keras_darn import rebuild
from keras_darn.graph import unit_groups
from keras_darn.metrics import count_flops
from keras_darn.metrics import count_params
from keras_darn.rebuild import Rebuilder
from keras_darn.rebuild import add_units
from keras_darn.rebuild import insert_layer
from keras_darn.rebuild import remove_units
from keras_darn.rebuild import shrink

__version__ = "0.1.0"

"""keras_darn: find the right width for every layer of a Keras model.

Import as `import keras_darn as darn`. This module only re-exports the public
contract; see the subpackages for the implementations.
"""

__version__ = "0.1.0"

"""The methods of keras_darn, one subpackage each (re-exports only).

Importing a method's subpackage registers it with the front door
(`keras_darn.prepare` / `keras_darn.resize`); `names()` lists them all, and
`register` makes a new one known, from any package.
"""

from keras_darn.methods import connection
from keras_darn.methods import darn
from keras_darn.methods import growth
from keras_darn.methods import nodedrop
from keras_darn.methods import pruning
from keras_darn.methods import standout
from keras_darn.resizing.entry import get_method as get
from keras_darn.resizing.entry import method_names as names
from keras_darn.resizing.entry import register_method as register
from keras_darn.resizing.method import Method

"""The front door: one way in for every method (re-exports only).

`prepare(model, method, target)` -> `model.fit(..., callbacks=[callback])`
-> `callback.finish()` for methods that act during `fit`;
`resize(model, method, target, ...)` for methods that act between fits.
Both take a `Target`, a `Schedule`, and give a `Result`.
"""

from keras_darn.resizing import schedules
from keras_darn.resizing.distillation import Distillation
from keras_darn.resizing.entry import get_method
from keras_darn.resizing.entry import method_names
from keras_darn.resizing.entry import prepare
from keras_darn.resizing.entry import register_method
from keras_darn.resizing.entry import resize
from keras_darn.resizing.method import Method
from keras_darn.resizing.method import MethodCallback
from keras_darn.resizing.results import Result
from keras_darn.resizing.results import figures
from keras_darn.resizing.schedules import Schedule
from keras_darn.resizing.targets import Target

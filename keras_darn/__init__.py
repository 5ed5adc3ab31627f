"""keras_darn: find the right width for every layer of a Keras model.

Import as `import keras_darn as darn`. One way in for every method:

```python
model, callback = darn.prepare(model, "magnitude", darn.Target(fraction=0.5))
model.compile("adam", "sparse_categorical_crossentropy")
model.fit(x, y, epochs=3, callbacks=[callback])
small = callback.finish().model
```

and `darn.resize(model, method, target, ...)` for methods that act between
fits. This module only re-exports; see the subpackages for the code.
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
from keras_darn.resizing import Distillation
from keras_darn.resizing import Result
from keras_darn.resizing import Schedule
from keras_darn.resizing import Target
from keras_darn.resizing import prepare
from keras_darn.resizing import resize
from keras_darn.resizing import schedules

__version__ = "0.1.0"

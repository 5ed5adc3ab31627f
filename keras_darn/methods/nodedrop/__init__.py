"""NodeDrop: remove units proven dead, during training (re-exports only).

Jensen, Harer & Chin, *NodeDrop*: the dead-unit condition, its penalty
(`regularizers`), NodeDrop-BN, the `NodeDrop` callback, and
`attach_nodedrop`, which puts the penalty on every eligible layer. Through
the front door: `darn.prepare(model, "nodedrop", lam=..., input_range=...)`.
"""

from keras_darn.methods.nodedrop.attach import attach_nodedrop
from keras_darn.methods.nodedrop.attach import detach_nodedrop
from keras_darn.methods.nodedrop.callback import NodeDrop
from keras_darn.methods.nodedrop.condition import nodedrop_dead_units
from keras_darn.methods.nodedrop.eligibility import nodedrop_eligibility
from keras_darn.methods.nodedrop.method import NodeDropMethod
from keras_darn.methods.nodedrop.regularizers import NodeDropBNRegularizer
from keras_darn.methods.nodedrop.regularizers import NodeDropRegularizer

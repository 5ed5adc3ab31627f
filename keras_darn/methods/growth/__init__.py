"""Growth: adding units while training, and DARN's add-and-remove loop.

Growth widens layers between epochs with new units that keep the network's
function (zero outgoing weights; Net2WiderNet from *Net2Net: Accelerating
Learning via Knowledge Transfer* by Tianqi Chen, Ian Goodfellow and
Jonathon Shlens; GradMax from *GradMax: Growing Neural Networks using
Gradient Information* by Utku Evci, Bart van Merriënboer, Thomas
Unterthiner, Max Vladymyrov and Fabian Pedregosa), deciding where to grow by
the activation statistics of *Dynamically Adding and Removing Neurons from
Neural Networks* (Aasta Gandhi and Rohit Bandaru) or by the effective rank
of the activations (Maile et al., *When, where and how to add new neurons
to ANNs*); `darn_unified` is the loop of that DARN paper that both removes
dead and redundant units and grows. Run them through the front door,
`darn.resize(model, "growth" | "zeros_out" | "net2net" | "gradmax" |
"unified", darn.Target(...), x=x, y=y, epochs=..., schedule=...)`, or with
`fit_with_growth` / `darn_unified` directly. `AgeAwareAdam` is Adam whose
bias correction counts each weight's own steps, for networks that grow.
"""

from keras_darn.methods.growth.callback import GrowthCallback
from keras_darn.methods.growth.grow import grow_units
from keras_darn.methods.growth.method import Growth
from keras_darn.methods.growth.method import Unified
from keras_darn.methods.growth.optimizers import AgeAwareAdam
from keras_darn.methods.growth.training import fit_with_growth
from keras_darn.methods.growth.unified import darn_unified

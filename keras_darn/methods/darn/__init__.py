"""DARN's Algorithm 1, Dynamic Neuron Removal (re-exports only).

Gandhi & Bandaru, *Dynamically Adding and Removing Neurons from Neural
Networks*: a trained network is pruned at score thresholds of growing
aggression (relative mean absolute activation, variance, or one unit of
every highly correlated pair, optionally folded into its partner), each
step retrained up to a few times and accepted while the validation accuracy
stays within a sacrifice of the starting one. `darn.resize(model, "darn",
darn.Target(max_accuracy_drop=0.015), x=, y=, validation_data=)` runs it
(`DARN`); `dynamic_neuron_removal` and `prune_by_threshold` are the driver
and its single pruning step.
"""

from keras_darn.methods.darn.driver import accuracy
from keras_darn.methods.darn.driver import dynamic_neuron_removal
from keras_darn.methods.darn.driver import prune_by_threshold
from keras_darn.methods.darn.method import DARN
